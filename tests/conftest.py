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


def pytest_collection_modifyitems(config, items):
    if _on_postgres():
        return
    needs_postgres = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(needs_postgres)
