"""Celery tasks of governance: thin wrappers around services, under stable names."""

from __future__ import annotations

from celery import shared_task

from apps.governance.services import polls_close_expired


@shared_task(name="governance.close_expired_polls")
def close_expired_polls_task() -> dict:
    """Every 5 minutes: close the active polls whose end has passed (and run their workflows)."""
    closed = polls_close_expired()
    return {"closed": [str(poll_uuid) for poll_uuid in closed]}
