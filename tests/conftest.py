"""Shared pytest plugins: the real PostgreSQL and the real S3-compatible server (SeaweedFS) used by the tests.

Log records are scrubbed of credentials here as in ``switchboard serve`` (:func:`switchboard.log_scrub.install`), so
captured logs in reports never show a token either."""

from switchboard import log_scrub

pytest_plugins = ["tests.pg_plugin", "tests.s3_plugin"]

log_scrub.install()
