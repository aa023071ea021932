"""The scheduled jobs Celery beat runs, and the place where apps declare theirs.

An app declares its jobs with a `periodic_jobs()` method on its AppConfig that returns
`PeriodicJob`s, the same way it declares `seed_reference_data()`; `manage.py
setup_periodic_tasks` installs every declared job into django-celery-beat's tables, which beat's
DatabaseScheduler reads. A new app (governance: expired polls every 5 minutes; baskets: value
hourly, the monthly vote on the 20th, rebalancing on the 1st) adds its jobs there and nothing
else changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured

MANAGED_MARK = "[installed by setup_periodic_tasks]"


def cron(
    *,
    minute: str = "0",
    hour: str = "*",
    day_of_month: str = "*",
    month_of_year: str = "*",
    day_of_week: str = "*",
) -> dict[str, str]:
    """A crontab schedule in UTC (CELERY_TIMEZONE); defaults to "at minute 0 of every hour"."""
    return {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
    }


@dataclass(frozen=True)
class PeriodicJob:
    name: str  # stable: the PeriodicTask row is found (and updated) by it
    task: str  # the registered Celery task name
    description: str
    every_seconds: int | None = None
    crontab: dict[str, str] | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    # A run that waited longer than this in the queue (workers were down) is dropped: the next
    # one is due soon anyway, and a pile of stale runs would only hammer the system on restart.
    expire_seconds: int | None = None

    def __post_init__(self) -> None:
        if (self.every_seconds is None) == (self.crontab is None):
            raise ImproperlyConfigured(f"{self.name}: give exactly one of every_seconds, crontab")


def periodic_jobs() -> list[PeriodicJob]:
    """Every job the installed apps declare, in INSTALLED_APPS order."""
    jobs: list[PeriodicJob] = []
    for config in apps.get_app_configs():
        declare = getattr(config, "periodic_jobs", None)
        if declare is not None:
            jobs.extend(declare())
    names = [job.name for job in jobs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ImproperlyConfigured(f"periodic jobs declared twice: {', '.join(duplicates)}")
    return jobs
