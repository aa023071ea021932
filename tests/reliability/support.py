"""Helpers of the reliability tests: what the database holds, and proof the ledger is whole."""

from __future__ import annotations

from io import StringIO

from django.apps import apps
from django.core.management import call_command

from apps.accounts.models import AccountBalance
from apps.accounts.reconciliation import ledger_reconcile
from apps.core.models import AggregateStream


def database_state() -> dict:
    """Rows per table, every stream head and every balance: equal before and after a write that
    failed means the write left nothing behind, in any table."""
    counts = {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
    }
    return {
        "counts": counts,
        "streams": dict(AggregateStream.objects.values_list("uuid", "version")),
        "balances": sorted(
            AccountBalance.objects.values_list("account_id", "asset_code", "balance", "version")
        ),
    }


def assert_ledger_whole() -> None:
    """`reconcile` is clean and `manage.py verify_events` passes (it exits 1 on a broken link)."""
    report = ledger_reconcile()
    assert report.clean, [d.as_dict() for d in report.discrepancies]
    out = StringIO()
    call_command("verify_events", stdout=out, stderr=out)
    assert "All event chains verify." in out.getvalue(), out.getvalue()
