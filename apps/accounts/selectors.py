"""Read side of accounts: accounts, balances, turnover and the history from the event store."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from guardian.models import GroupObjectPermission, UserObjectPermission

from apps.accounts.events import MoneyAdded, MoneySubtracted
from apps.accounts.models import Account, AccountBalance, AccountEvent, Turnover
from apps.accounts.services import system_account_uuid
from apps.core.errors import InvalidInput, NotFound
from apps.core.events import decode
from apps.core.money import format_minor_units

MONEY_EVENT_TYPES = (MoneyAdded.event_type, MoneySubtracted.event_type)
# History types as the API names them: a transfer is "in" or "out" by the posting's side.
HISTORY_TYPES = {
    "deposit": Q(event_data__kind="deposit"),
    "withdrawal": Q(event_data__kind="withdrawal"),
    "transfer_in": Q(event_type=MoneyAdded.event_type, event_data__kind="transfer"),
    "transfer_out": Q(event_type=MoneySubtracted.event_type, event_data__kind="transfer"),
    "conversion": Q(event_data__kind="conversion"),
    "reversal": Q(event_data__kind="reversal"),
    "fee": Q(event_data__kind="fee"),
}


# The codenames a user holds on accounts as guardian object permissions, directly or through a
# group: guardian's checker asks this with two ORM queries per account; this is one statement.
_OBJECT_PERMISSIONS_SQL = """
    SELECT o.object_pk, p.codename FROM {user_perms} o
      JOIN {permission} p ON p.id = o.permission_id
     WHERE o.user_id = %s AND o.content_type_id = %s AND o.object_pk IN ({pks})
    UNION
    SELECT o.object_pk, p.codename FROM {group_perms} o
      JOIN {permission} p ON p.id = o.permission_id
      JOIN {memberships} m ON m.group_id = o.group_id
     WHERE m.user_id = %s AND o.content_type_id = %s AND o.object_pk IN ({pks})
"""


def account_object_permissions(user, account_uuids: list[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    """For each account, the permission codenames `user` holds on it as object permissions
    (an owner's, granted when the account was opened). Inactive users hold none."""
    held: dict[uuid.UUID, set[str]] = {u: set() for u in account_uuids}
    if not account_uuids or not user.is_active:
        return held
    pks = [str(u) for u in account_uuids]
    statement = _OBJECT_PERMISSIONS_SQL.format(
        user_perms=UserObjectPermission._meta.db_table,
        group_perms=GroupObjectPermission._meta.db_table,
        permission=Permission._meta.db_table,
        memberships=user.groups.through._meta.db_table,
        pks=", ".join(["%s"] * len(pks)),
    )
    content_type = ContentType.objects.get_for_model(Account).pk
    with connection.cursor() as cursor:
        cursor.execute(statement, [user.pk, content_type, *pks, user.pk, content_type, *pks])
        for object_pk, codename in cursor.fetchall():
            held[uuid.UUID(object_pk)].add(codename)
    return held


def account_get(account_uuid: uuid.UUID) -> Account:
    account = Account.objects.filter(uuid=account_uuid).first()
    if account is None:
        raise NotFound("No such account.", details={"uuid": str(account_uuid)})
    return account


def system_account(code: str) -> Account:
    return account_get(system_account_uuid(code))


def account_list(*, owner_uuid: uuid.UUID | None = None) -> QuerySet[Account]:
    accounts = Account.objects.prefetch_related("balances")
    if owner_uuid is not None:
        accounts = accounts.filter(owner_id=owner_uuid)
    return accounts


def account_balances(account_uuid: uuid.UUID) -> list[dict]:
    """Each asset the account has held: balance in minor units and as a decimal string."""
    from apps.assets.selectors import asset_precisions

    precisions = asset_precisions()
    rows = AccountBalance.objects.filter(account_id=account_uuid).order_by("asset_code")
    return [
        {
            "asset_code": row.asset_code,
            "balance": row.balance,
            "balance_display": format_minor_units(row.balance, precisions.get(row.asset_code, 0)),
            "precision": precisions.get(row.asset_code, 0),
        }
        for row in rows
    ]


def balances_by_asset(account_uuid: uuid.UUID) -> dict[str, int]:
    return dict(
        AccountBalance.objects.filter(account_id=account_uuid).values_list("asset_code", "balance")
    )


@dataclass(frozen=True)
class HistoryEntry:
    uuid: uuid.UUID  # the journal entry (transfer) the posting belongs to
    type: str
    asset_code: str
    amount: int  # signed: negative for money out
    balance_after: int
    reference: str
    counterparty_account: uuid.UUID | None
    rate: Decimal | None
    hash: str
    created_at: dt.datetime
    version: int  # the keyset cursor: pass it back as `before_version`


def _history_type(evt: MoneyAdded | MoneySubtracted) -> str:
    if evt.kind == "transfer":
        return "transfer_in" if isinstance(evt, MoneyAdded) else "transfer_out"
    return evt.kind


def _history_rows(
    account_uuid: uuid.UUID,
    *,
    asset_code: str | None = None,
    types: list[str] | None = None,
    created_after: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
) -> QuerySet[AccountEvent]:
    unknown = sorted(set(types or ()) - set(HISTORY_TYPES))
    if unknown:
        raise InvalidInput(details={"type": [f"unknown type(s): {', '.join(unknown)}"]})
    rows = AccountEvent.objects.filter(
        aggregate_uuid=account_uuid, event_type__in=MONEY_EVENT_TYPES
    )
    if asset_code:
        rows = rows.filter(event_data__asset_code=asset_code)
    if types:
        matches = Q()
        for name in types:
            matches |= HISTORY_TYPES[name]
        rows = rows.filter(matches)
    if created_after:
        rows = rows.filter(created_at__gte=created_after)
    if created_before:
        rows = rows.filter(created_at__lt=created_before)
    return rows


def account_history(
    account_uuid: uuid.UUID,
    *,
    before_version: int | None = None,
    limit: int = 50,
    **filters,
) -> list[HistoryEntry]:
    """Money movements of one account, newest first, read from the event table.

    Filters: asset_code, types, created_after, created_before. Keyset pagination on the
    aggregate version walks the (aggregate_uuid, aggregate_version) unique index backwards, so
    a page costs the same at the millionth event as at the first.
    """
    rows = _history_rows(account_uuid, **filters)
    if before_version is not None:
        rows = rows.filter(aggregate_version__lt=before_version)
    rows = rows.order_by("-aggregate_version").values_list(
        "aggregate_version", "event_type", "event_version", "event_data", "hash", "created_at"
    )[:limit]
    entries = []
    for version, event_type, event_version, data, event_hash, created_at in rows:
        evt = decode(event_type, event_version, data)
        entries.append(
            HistoryEntry(
                uuid=evt.entry_uuid,
                type=_history_type(evt),
                asset_code=evt.asset_code,
                amount=evt.amount if isinstance(evt, MoneyAdded) else -evt.amount,
                balance_after=evt.balance_after,
                reference=evt.reference,
                counterparty_account=evt.counterparty,
                rate=evt.rate,
                hash=event_hash,
                created_at=created_at,
                version=version,
            )
        )
    return entries


def account_history_count(account_uuid: uuid.UUID, **filters) -> int:
    """How many postings match; unfiltered, the turnover rows know without reading events."""
    if not any(filters.values()):
        total = Turnover.objects.filter(account_id=account_uuid).aggregate(n=Sum("count"))["n"]
        return total or 0
    return _history_rows(account_uuid, **filters).count()


def account_turnover(account_uuid: uuid.UUID, *, period: str = "daily") -> list[dict]:
    """Credits, debits and postings per day, or per calendar month, newest first."""
    rows = Turnover.objects.filter(account_id=account_uuid)
    if period == "daily":
        return [
            {
                "period_start": row.day,
                "asset_code": row.asset_code,
                "credit": row.credit,
                "debit": row.debit,
                "count": row.count,
            }
            for row in rows.order_by("-day", "asset_code")
        ]
    if period != "monthly":
        raise InvalidInput(details={"period": ["must be daily or monthly"]})
    monthly = (
        rows.annotate(month=TruncMonth("day"))
        .values("month", "asset_code")
        .annotate(credit=Sum("credit"), debit=Sum("debit"), count=Sum("count"))
        .order_by("-month", "asset_code")
    )
    return [
        {
            "period_start": _as_date(row["month"]),
            "asset_code": row["asset_code"],
            "credit": row["credit"],
            "debit": row["debit"],
            "count": row["count"],
        }
        for row in monthly
    ]


def _as_date(value: dt.date | dt.datetime) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value
