"""Helpers shared by the workflow and custodian tests: a clock to move time, eager tasks."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

CLOCKS = (
    "apps.workflows.services._now",
    "apps.custodians.mock_bank._now",
    "apps.custodians.services._now",
    "apps.custodians.resilience._clock",
)


class Clock:
    """Stands in for every clock of the runtime and the mock bank; moves only when told."""

    def __init__(self) -> None:
        self.now = timezone.now().replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now


def install_clock(monkeypatch) -> Clock:
    clock = Clock()
    for target in CLOCKS:
        monkeypatch.setattr(target, clock)
    return clock


def set_eager(eager: bool) -> bool:
    """Run Celery tasks in-process (True) or send them to the broker; returns the old mode."""
    from finaegis.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = eager
    return previous
