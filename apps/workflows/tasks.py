"""Celery tasks: thin wrappers around services.

Task names are explicit and stable: beat stores them in its table, and a task may move to
another module without the schedule noticing. The kernel's scheduled jobs (exchange rates,
snapshots, ledger reconciliation, idempotency keys) live here for now because their apps have
no tasks module; each may move to its own app under the same name.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.core.management import call_command

from apps.workflows.services import (
    job_run_finish,
    job_run_start,
    workflow_advance,
    workflow_resume_stale,
)

logger = logging.getLogger(__name__)


def run_recorded_job(task, job: str, work: Callable[[], tuple[bool, dict[str, Any]]]) -> dict:
    """Run a scheduled job and keep a JobRun row of it: succeeded or failed, with a summary."""
    record = job_run_start(job=job, task_id=task.request.id or "")
    try:
        succeeded, summary = work()
    except Exception as exc:
        job_run_finish(
            job_run=record,
            succeeded=False,
            summary={"error": type(exc).__name__, "message": str(exc)[:1000]},
        )
        raise
    job_run_finish(job_run=record, succeeded=succeeded, summary=summary)
    return summary


@shared_task(name="workflows.advance")
def workflow_advance_task(run_uuid: str) -> str:
    return workflow_advance(run_uuid=uuid.UUID(run_uuid))


@shared_task(name="workflows.resume_stale", bind=True)
def resume_stale_workflows_task(self) -> dict:
    def work():
        resumed = workflow_resume_stale()
        return True, {"resumed": len(resumed)}

    return run_recorded_job(self, "workflows.resume_stale", work)


@shared_task(name="assets.refresh_exchange_rates", bind=True)
def refresh_exchange_rates_task(self) -> dict:
    from apps.assets.services import exchange_rates_refresh

    return run_recorded_job(
        self,
        "assets.refresh_exchange_rates",
        lambda: (True, {"recorded": exchange_rates_refresh()}),
    )


@shared_task(name="core.snapshot_aggregates", bind=True)
def snapshot_aggregates_task(self) -> dict:
    def work():
        # The snapshot logic lives in the command (apps.core has no service for it yet).
        call_command("snapshot_aggregates", verbosity=0)
        return True, {}

    return run_recorded_job(self, "core.snapshot_aggregates", work)


@shared_task(name="accounts.reconcile_ledger", bind=True)
def reconcile_ledger_task(self) -> dict:
    from apps.accounts.reconciliation import ledger_reconcile_recorded

    def work():
        report, run = ledger_reconcile_recorded()
        if not report.clean:
            # The one job whose failure means money may be wrong: say so loudly, with what.
            logger.error(
                "LEDGER DOES NOT RECONCILE: %d discrepancies (reconciliation run %s): %s",
                len(report.discrepancies),
                run.pk,
                [d.as_dict() for d in report.discrepancies[:20]],
            )
        return report.clean, {
            "clean": report.clean,
            "reconciliation_run": run.pk,
            "discrepancies": len(report.discrepancies),
            "accounts_checked": report.accounts_checked,
            "events_checked": report.events_checked,
        }

    return run_recorded_job(self, "accounts.reconcile_ledger", work)


@shared_task(name="core.purge_idempotency_keys", bind=True)
def purge_idempotency_keys_task(self) -> dict:
    from apps.core.idempotency import purge_expired_keys

    return run_recorded_job(
        self, "core.purge_idempotency_keys", lambda: (True, {"purged": purge_expired_keys()})
    )
