"""Shared pytest plugins: the real PostgreSQL used by store and end-to-end tests."""

pytest_plugins = ["tests.pg_plugin"]
