"""Suite-wide fixtures and the `postgres` marker policy.

Tests marked `postgres` need a real PostgreSQL server (row locks, triggers, threads). On the
embedded SQLite default they are skipped; with REQUIRE_POSTGRES=1 (CI) running them on anything
else is an error, so a misconfigured CI cannot pass by skipping them.
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Cache drops run after commit, which a rolled-back test never reaches: start clean."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def eager_tasks():
    """Celery tasks (a custodian workflow's steps) run in the test's process, also where
    REDIS_URL would send them to a broker with no worker listening."""
    from tests.workflows.support import set_eager

    previous = set_eager(True)
    yield
    set_eager(previous)


def _on_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def pytest_configure(config):
    if os.environ.get("REQUIRE_POSTGRES") == "1" and not _on_postgres():
        raise pytest.UsageError("REQUIRE_POSTGRES=1 but DATABASE_URL does not point at PostgreSQL")
    if _on_postgres():
        _flush_past_the_truncate_triggers()


def _flush_past_the_truncate_triggers():
    """A transactional test's teardown empties the database with TRUNCATE, which the event
    tables' triggers reject; the test role is a superuser, so the flush's own transaction
    switches user triggers off (an application role cannot)."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    flush = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        flush(self, ["SET LOCAL session_replication_role = replica", *sql_list])

    DatabaseOperations.execute_sql_flush = execute_sql_flush


def pytest_collection_modifyitems(config, items):
    if _on_postgres():
        return
    needs_postgres = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(needs_postgres)
