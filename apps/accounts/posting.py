"""The posting kernel: the only way money moves between accounts.

A journal entry is a list of legs (account, asset, signed amount) with a kind, a reference and a
rate. Posting it checks that every asset's legs sum to zero, that every amount is within its
asset's bounds, applies each account's rules (frozen, closed, no customer overdraft) through the
Account aggregate, and records the postings as the accounts' events. Every account of an entry
is locked through `accounts_lock`, the one place that owns the lock order, so no service takes
account locks of its own and no two entries can wait on each other in a cycle.

Services build entries (payments, baskets, custodians, and the sub-products), post them with
`entry_post` (or `entries_post` for a batch in one transaction) and save them together with the
aggregate that describes the entry (a Transfer, a BasketOperation, ...).
"""

from __future__ import annotations

import enum
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings

from apps.accounts.aggregates import Account, Posting
from apps.core import store
from apps.core.aggregates import AggregateRoot
from apps.core.errors import (
    AggregateNotFound,
    AmountTooLarge,
    InvalidInput,
    NotFound,
    UnbalancedEntry,
)
from apps.core.events import DomainEvent
from apps.core.projection import EventRecord


class Mode(enum.Enum):
    """How far an entry may bend the account rules.

    NORMAL: every rule. RETURNING: money going back to where it came from (a payout the bank
    returned, a workflow's compensation): it must land, so it passes a freeze, but it never takes
    a customer below zero. FORCED: a staff member's forced reversal: passes a freeze and may take
    a customer below zero.
    """

    NORMAL = "normal"
    RETURNING = "returning"
    FORCED = "forced"


@dataclass(frozen=True)
class Leg:
    """One account's share of an entry: a positive amount credits it, a negative one debits it."""

    account: uuid.UUID
    asset_code: str
    amount: int
    counterparty: uuid.UUID | None = None
    kind: str | None = None  # the posting's kind where it differs from the entry's (FX legs)
    reference: str | None = None


@dataclass(frozen=True)
class JournalEntry:
    uuid: uuid.UUID
    kind: str
    legs: tuple[Leg, ...]
    reference: str = ""
    rate: Decimal | None = None
    mode: Mode = Mode.NORMAL
    accounts: frozenset[uuid.UUID] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "accounts", frozenset(leg.account for leg in self.legs))


def transfer_legs(
    source: uuid.UUID, target: uuid.UUID, asset_code: str, amount: int, **extra
) -> tuple[Leg, Leg]:
    """The two legs of `amount` moving from `source` to `target`."""
    return (
        Leg(source, asset_code, -amount, counterparty=target, **extra),
        Leg(target, asset_code, amount, counterparty=source, **extra),
    )


# --- bounds ----------------------------------------------------------------------------------


def amount_bounds(asset_code: str) -> tuple[int, int]:
    """(maximum per operation, maximum balance) of the asset, in its minor units.

    Far below 2^63, so no balance, sum or turnover of a day can overflow a 64-bit column.
    """
    limits = settings.ASSET_AMOUNT_LIMITS
    own = limits.get(asset_code, {})
    default = limits["default"]
    return (
        own.get("per_operation", default["per_operation"]),
        own.get("per_balance", default["per_balance"]),
    )


def positive_amount(amount: object) -> int:
    """A customer-given amount: an integer of minor units above zero (VALIDATION_ERROR)."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidInput(details={"amount": ["must be an integer of minor units"]})
    if amount <= 0:
        raise InvalidInput(details={"amount": ["must be greater than zero"]})
    return amount


def amount_check(asset_code: str, amount: int) -> int:
    """Refuse an amount over the asset's maximum per operation (AMOUNT_TOO_LARGE)."""
    per_operation, _ = amount_bounds(asset_code)
    if abs(amount) > per_operation:
        raise AmountTooLarge(
            details={"asset_code": asset_code, "amount": amount, "maximum": per_operation}
        )
    return amount


def _check_balance_bound(account: Account, asset_code: str) -> None:
    _, per_balance = amount_bounds(asset_code)
    balance = account.balance(asset_code)
    if abs(balance) > per_balance:
        raise AmountTooLarge(
            "The balance would exceed the asset's maximum.",
            details={
                "account": str(account.uuid),
                "asset_code": asset_code,
                "maximum_balance": per_balance,
            },
        )


# --- the kernel ------------------------------------------------------------------------------


def accounts_lock(uuids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Account]:
    """Lock and load accounts in uuid order (the one lock order); unknown is NOT_FOUND."""
    ordered = sorted(set(uuids))
    try:
        return dict(zip(ordered, store.load(Account, *ordered), strict=True))
    except AggregateNotFound as exc:
        raise NotFound("No such account.", details=exc.details) from None


def _check_balanced(entry: JournalEntry) -> None:
    totals: dict[str, int] = defaultdict(int)
    for leg in entry.legs:
        if not isinstance(leg.amount, int) or isinstance(leg.amount, bool):
            raise UnbalancedEntry(details={"entry": str(entry.uuid), "leg": repr(leg)})
        totals[leg.asset_code] += leg.amount
    unbalanced = {asset: total for asset, total in totals.items() if total}
    if unbalanced:
        raise UnbalancedEntry(details={"entry": str(entry.uuid), "residue": unbalanced})


def _passes_freeze(mode: Mode, leg: Leg) -> bool:
    return mode is Mode.FORCED or (mode is Mode.RETURNING and leg.amount > 0)


def entry_apply(entry: JournalEntry, accounts: dict[uuid.UUID, Account]) -> None:
    """Post the entry on accounts loaded (and locked) by `accounts_lock`.

    Debits go first, so an account that pays and receives in one entry can't spend what the
    entry is only about to give it. Zero legs (a component too small to round to one unit) post
    nothing.
    """
    _check_balanced(entry)
    legs = sorted((leg for leg in entry.legs if leg.amount), key=lambda leg: leg.amount > 0)
    for leg in legs:  # every account's standing and every bound before any balance
        amount_check(leg.asset_code, leg.amount)
        accounts[leg.account].ensure_can_post(allow_frozen=_passes_freeze(entry.mode, leg))
    for leg in legs:
        account = accounts[leg.account]
        posting = Posting(
            leg.asset_code,
            abs(leg.amount),
            entry.uuid,
            leg.kind or entry.kind,
            leg.counterparty,
            entry.reference if leg.reference is None else leg.reference,
            entry.rate,
        )
        if leg.amount < 0:
            account.debit(posting, forced=entry.mode is Mode.FORCED)
        else:
            account.credit(posting, forced=_passes_freeze(entry.mode, leg))
        _check_balance_bound(account, leg.asset_code)


def entries_post(
    entries: list[JournalEntry], *descriptors: AggregateRoot
) -> list[tuple[DomainEvent, EventRecord]]:
    """Lock every account of the entries at once, post them in order, and save the accounts with
    the aggregates that describe the entries, in the caller's transaction."""
    accounts = accounts_lock(a for entry in entries for a in entry.accounts)
    for entry in entries:
        entry_apply(entry, accounts)
    return store.save(*accounts.values(), *descriptors)


def entry_post(
    entry: JournalEntry, *descriptors: AggregateRoot
) -> list[tuple[DomainEvent, EventRecord]]:
    return entries_post([entry], *descriptors)
