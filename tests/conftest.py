"""Shared pytest plugins: the real PostgreSQL and the real S3-compatible server (SeaweedFS) used by the tests."""

pytest_plugins = ["tests.pg_plugin", "tests.s3_plugin"]
