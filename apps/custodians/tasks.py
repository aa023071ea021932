"""Celery tasks of custodians: thin wrappers around the services, recorded as job runs."""

from __future__ import annotations

from celery import shared_task

from apps.custodians.services import custodian_balances_sync, custodian_reconcile
from apps.workflows.tasks import run_recorded_job


def _summary(checks) -> tuple[bool, dict]:
    """Succeeded when every custodian answered and, for a reconciliation, agreed."""
    rows = {
        check.custodian: {
            "ok": check.ok,
            "clean": check.reconciliation.clean if check.reconciliation else None,
            "error": check.error,
        }
        for check in checks
    }
    succeeded = all(row["ok"] and row["clean"] is not False for row in rows.values())
    return succeeded, {"custodians": rows}


@shared_task(name="custodians.sync_balances", bind=True)
def sync_custodian_balances_task(self) -> dict:
    return run_recorded_job(
        self, "custodians.sync_balances", lambda: _summary(custodian_balances_sync())
    )


@shared_task(name="custodians.reconcile", bind=True)
def reconcile_custodians_task(self) -> dict:
    return run_recorded_job(self, "custodians.reconcile", lambda: _summary(custodian_reconcile()))
