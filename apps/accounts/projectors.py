"""accounts events -> Account, AccountBalance, Turnover (inside the write transaction)."""

from __future__ import annotations

from django.db.models import F

from apps.accounts.events import (
    AccountClosed,
    AccountCreated,
    AccountFrozen,
    AccountUnfrozen,
    MoneyAdded,
    MoneySubtracted,
)
from apps.accounts.models import Account, AccountBalance, Turnover
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


@accounts_projector.on(MoneyAdded, MoneySubtracted)
def _moved(evt: MoneyAdded | MoneySubtracted, record: EventRecord) -> None:
    account_uuid, version = record.aggregate_uuid, record.aggregate_version
    updated = AccountBalance.objects.filter(
        account_id=account_uuid, asset_code=evt.asset_code
    ).update(balance=evt.balance_after, version=version)
    if not updated:
        AccountBalance.objects.create(
            account_id=account_uuid,
            asset_code=evt.asset_code,
            balance=evt.balance_after,
            version=version,
        )
    credit, debit = (evt.amount, 0) if isinstance(evt, MoneyAdded) else (0, evt.amount)
    day = record.created_at.date()
    updated = Turnover.objects.filter(
        account_id=account_uuid, asset_code=evt.asset_code, day=day
    ).update(credit=F("credit") + credit, debit=F("debit") + debit, count=F("count") + 1)
    if not updated:
        Turnover.objects.create(
            account_id=account_uuid,
            asset_code=evt.asset_code,
            day=day,
            credit=credit,
            debit=debit,
            count=1,
        )
    if evt.balance_after < 0:
        # Only a staff-forced reversal can do this to a customer account.
        Account.objects.filter(uuid=account_uuid, kind=Account.Kind.CUSTOMER).update(flagged=True)
