"""accounts events -> Account, AccountBalance, Turnover (inside the write transaction)."""

from __future__ import annotations

from collections import defaultdict

from apps.accounts.events import (
    AccountClosed,
    AccountCreated,
    AccountFrozen,
    AccountUnfrozen,
    MoneyAdded,
    MoneySubtracted,
)
from apps.accounts.models import Account, AccountBalance, Turnover
from apps.core import sql
from apps.core.projection import EventRecord, Projector

accounts_projector = Projector("accounts", read_models=(Turnover, AccountBalance, Account))


def _touch(record: EventRecord, **changes) -> None:
    Account.objects.filter(uuid=record.aggregate_uuid).update(
        version=record.aggregate_version, updated_at=record.created_at, **changes
    )


@accounts_projector.on(AccountCreated)
def _created(evt: AccountCreated, record: EventRecord) -> None:
    Account.objects.create(
        uuid=record.aggregate_uuid,
        name=evt.name,
        owner_id=evt.owner_uuid,
        kind=evt.kind,
        system_code=evt.system_code,
        version=record.aggregate_version,
        created_at=record.created_at,
        updated_at=record.created_at,
    )


@accounts_projector.on(AccountFrozen)
def _frozen(evt: AccountFrozen, record: EventRecord) -> None:
    _touch(record, frozen=True, frozen_reason=evt.reason[:500])


@accounts_projector.on(AccountUnfrozen)
def _unfrozen(evt: AccountUnfrozen, record: EventRecord) -> None:
    _touch(record, frozen=False, frozen_reason="")


@accounts_projector.on(AccountClosed)
def _closed(evt: AccountClosed, record: EventRecord) -> None:
    _touch(record, closed=True)


@accounts_projector.on_batch(MoneyAdded, MoneySubtracted)
def _moved(moves: list[tuple[MoneyAdded | MoneySubtracted, EventRecord]]) -> None:
    balances: dict[tuple, tuple[int, int]] = {}
    turnovers: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    overdrawn = set()
    for evt, record in moves:
        key = (record.aggregate_uuid, evt.asset_code)
        balances[key] = (evt.balance_after, record.aggregate_version)  # the run is in order
        day_total = turnovers[(*key, record.created_at.date())]
        day_total[0 if isinstance(evt, MoneyAdded) else 1] += evt.amount
        day_total[2] += 1
        if evt.balance_after < 0:
            overdrawn.add(record.aggregate_uuid)
    _upsert_balances(sorted(balances.items(), key=_by_key))
    _add_turnovers(sorted(turnovers.items(), key=_by_key))
    if overdrawn:
        # Only a staff-forced reversal can do this to a customer account.
        Account.objects.filter(uuid__in=overdrawn, kind=Account.Kind.CUSTOMER).update(flagged=True)


def _by_key(item: tuple[tuple, object]) -> tuple:
    """Rows in key order, so concurrent writers lock them in the same order; the account's
    UUID compared as its integer, which orders alike without UUID's Python-level comparisons."""
    account, *rest = item[0]
    return (account.int, *rest)


def _upsert_balances(balances: list[tuple[tuple, tuple[int, int]]]) -> None:
    balance, version = sql.column(AccountBalance, "balance"), sql.column(AccountBalance, "version")
    keys = f"{sql.column(AccountBalance, 'account')}, {sql.column(AccountBalance, 'asset_code')}"
    sql.insert_rows(
        AccountBalance,
        ("account", "asset_code", "balance", "version"),
        [(*key, *value) for key, value in balances],
        on_conflict=f"ON CONFLICT ({keys}) DO UPDATE SET {balance} = excluded.{balance}, "
        f"{version} = excluded.{version}",
    )


def _add_turnovers(turnovers: list[tuple[tuple, list[int]]]) -> None:
    names = ("account", "asset_code", "day", "credit", "debit", "count")
    keys = ", ".join(sql.column(Turnover, name) for name in names[:3])
    totals = ", ".join(
        f"{c} = {sql.table(Turnover)}.{c} + excluded.{c}"
        for c in (sql.column(Turnover, name) for name in names[3:])
    )
    sql.insert_rows(
        Turnover,
        names,
        [(*key, *value) for key, value in turnovers],
        on_conflict=f"ON CONFLICT ({keys}) DO UPDATE SET {totals}",
    )
