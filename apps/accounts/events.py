"""Account events. Names and fields are a contract with every stored row."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from apps.core.events import DomainEvent, event, upcaster


@event("accounts.AccountCreated")
class AccountCreated(DomainEvent):
    name: str
    owner_uuid: uuid.UUID | None
    kind: str  # customer | system
    system_code: str | None


@event("accounts.AccountFrozen")
class AccountFrozen(DomainEvent):
    reason: str
    by: dict[str, Any]


@event("accounts.AccountUnfrozen")
class AccountUnfrozen(DomainEvent):
    reason: str
    by: dict[str, Any]


@event("accounts.AccountClosed", version=2)
class AccountClosed(DomainEvent):
    by: dict[str, Any]
    reason: str


@upcaster("accounts.AccountClosed", from_version=1)
def _account_closed_v1_to_v2(data):
    # Version 1 recorded no reason.
    return {**data, "reason": ""}


@event("accounts.MoneyAdded")
class MoneyAdded(DomainEvent):
    """A credit posting of one journal entry (`entry_uuid`, the transfer it belongs to)."""

    asset_code: str
    amount: int
    balance_after: int
    entry_uuid: uuid.UUID
    kind: str  # deposit | withdrawal | transfer | conversion | reversal | fee
    counterparty: uuid.UUID | None
    reference: str
    rate: Decimal | None


@event("accounts.MoneySubtracted")
class MoneySubtracted(DomainEvent):
    """A debit posting of one journal entry."""

    asset_code: str
    amount: int
    balance_after: int
    entry_uuid: uuid.UUID
    kind: str
    counterparty: uuid.UUID | None
    reference: str
    rate: Decimal | None


MONEY_EVENTS = (MoneyAdded, MoneySubtracted)
