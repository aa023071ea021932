"""The ledger's proof of itself: conservation, balances equal to their events, chains intact,
read models equal to a replay. `manage.py reconcile` prints it; tests and jobs call it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from apps.accounts.models import AccountBalance, AccountEvent, ReconciliationRun
from apps.accounts.selectors import MONEY_EVENT_TYPES
from apps.core.context import current_actor
from apps.core.models import event_models
from apps.core.projection import projectors_for
from apps.core.replay import rebuild_projections
from apps.core.verification import broken_links


@dataclass
class Discrepancy:
    check: str
    subject: str
    expected: Any
    found: Any

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "subject": self.subject,
            "expected": self.expected,
            "found": self.found,
        }


@dataclass
class ReconciliationReport:
    totals_by_asset: dict[str, int] = field(default_factory=dict)
    accounts_checked: int = 0
    events_checked: int = 0
    discrepancies: list[Discrepancy] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.discrepancies

    def as_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "totals_by_asset": self.totals_by_asset,
            "accounts_checked": self.accounts_checked,
            "events_checked": self.events_checked,
            "discrepancies": [d.as_dict() for d in self.discrepancies],
        }


def _check_conservation(report: ReconciliationReport) -> None:
    """Per asset, every account's balance sums to zero: money was only ever moved."""
    totals = AccountBalance.objects.values("asset_code").annotate(total=Sum("balance"))
    for row in totals.order_by("asset_code"):
        report.totals_by_asset[row["asset_code"]] = row["total"]
        if row["total"] != 0:
            report.discrepancies.append(
                Discrepancy("conservation", row["asset_code"], 0, row["total"])
            )


def _replayed_balances(report: ReconciliationReport) -> dict[tuple[str, str], int]:
    """Balances recomputed from the postings, and every entry checked to balance per asset."""
    balances: dict[tuple[str, str], int] = defaultdict(int)
    entries: dict[tuple[str, str], int] = defaultdict(int)
    rows = (
        AccountEvent.objects.filter(event_type__in=MONEY_EVENT_TYPES)
        .order_by("aggregate_uuid", "aggregate_version")
        .values_list("aggregate_uuid", "event_type", "event_data")
        .iterator(chunk_size=5000)
    )
    for account_uuid, event_type, data in rows:
        sign = 1 if event_type == MONEY_EVENT_TYPES[0] else -1
        key = (str(account_uuid), data["asset_code"])
        balances[key] += sign * data["amount"]
        entries[(data["entry_uuid"], data["asset_code"])] += sign * data["amount"]
        if balances[key] != data["balance_after"]:
            report.discrepancies.append(
                Discrepancy(
                    "balance_after", f"{key[0]} {key[1]}", balances[key], data["balance_after"]
                )
            )
        report.events_checked += 1
    for (entry_uuid, asset_code), total in entries.items():
        if total != 0:
            report.discrepancies.append(
                Discrepancy("entry_balanced", f"{entry_uuid} {asset_code}", 0, total)
            )
    return balances


def _check_balances(report: ReconciliationReport) -> None:
    replayed = _replayed_balances(report)
    stored = {
        (str(account), asset): balance
        for account, asset, balance in AccountBalance.objects.values_list(
            "account_id", "asset_code", "balance"
        )
    }
    report.accounts_checked = len({account for account, _ in stored})
    for key in sorted(set(replayed) | set(stored)):
        if replayed.get(key, 0) != stored.get(key, 0):
            report.discrepancies.append(
                Discrepancy("balance", f"{key[0]} {key[1]}", replayed.get(key, 0), stored.get(key))
            )


def _check_chains(report: ReconciliationReport) -> None:
    for link in broken_links():
        report.discrepancies.append(Discrepancy("hash_chain", str(link), "intact", link.reason))


def _table_rows(model) -> list[tuple]:
    """The table's content, without surrogate ids (a rebuild numbers its rows anew)."""
    fields = [
        f.attname
        for f in model._meta.concrete_fields
        if not (f.primary_key and f.get_internal_type() in ("AutoField", "BigAutoField"))
    ]
    return sorted(model.objects.values_list(*fields), key=lambda row: tuple(map(str, row)))


def _check_replay(report: ReconciliationReport) -> None:
    """Rebuild every read model inside a transaction that is rolled back, and compare."""
    for model in event_models():
        app_label = model._meta.app_label
        read_models = [m for p in projectors_for(app_label) for m in p.read_models]
        live = {m: _table_rows(m) for m in read_models}
        with transaction.atomic():
            rebuild_projections(app_label)
            for read_model, rows in live.items():
                if _table_rows(read_model) != rows:
                    report.discrepancies.append(
                        Discrepancy("replay", read_model._meta.label, "equal to replay", "differs")
                    )
            transaction.set_rollback(True)


def ledger_reconcile(*, replay: bool = True) -> ReconciliationReport:
    """Run every check; on PostgreSQL in one repeatable-read snapshot so totals are consistent."""
    report = ReconciliationReport()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        _check_conservation(report)
        _check_balances(report)
        _check_chains(report)
        if replay:
            _check_replay(report)
    return report


def ledger_reconcile_recorded(
    *, replay: bool = True
) -> tuple[ReconciliationReport, ReconciliationRun]:
    """Reconcile and keep the outcome, so the console shows the last run and its findings."""
    started_at = timezone.now()
    report = ledger_reconcile(replay=replay)
    run = ReconciliationRun.objects.create(
        started_at=started_at,
        finished_at=timezone.now(),
        clean=report.clean,
        accounts_checked=report.accounts_checked,
        events_checked=report.events_checked,
        totals_by_asset=report.totals_by_asset,
        discrepancies=[d.as_dict() for d in report.discrepancies],
        actor=current_actor(),
    )
    return report, run
