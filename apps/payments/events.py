"""Transfer events: one journal entry each; its postings are MoneyAdded/MoneySubtracted."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from apps.core.events import DomainEvent, EventData, event, upcaster


@event("payments.TransferCompleted", version=2)
class TransferCompleted(DomainEvent):
    kind: str  # transfer | deposit | withdrawal | conversion
    from_account: uuid.UUID
    to_account: uuid.UUID
    from_asset: str
    to_asset: str
    amount: int  # debited from from_account, in from_asset minor units
    to_amount: int  # credited to to_account, in to_asset minor units
    rate: Decimal | None
    reference: str
    actor: dict[str, Any]
    reason: str  # why staff moved it (an adjustment, a transfer out of a customer's account)


@upcaster("payments.TransferCompleted", from_version=1)
def _transfer_completed_v1(data: EventData) -> EventData:
    # Version 1 kept no reason: customers' own movements have none.
    return {**data, "reason": ""}


@event("payments.TransferReversed")
class TransferReversed(DomainEvent):
    reversal_uuid: uuid.UUID  # the entry_uuid of the compensating postings
    reason: str
    forced: bool
    by: dict[str, Any]


@event("payments.MovementRequested", version=2)
class MovementRequested(DomainEvent):
    """A staff member asked to move a customer's money (a ledger-only deposit or withdrawal, or a
    transfer out of the account) above the threshold: it needs a second pair of eyes."""

    kind: str  # deposit | withdrawal | transfer
    account: uuid.UUID  # the account paid into or out of; a transfer's source
    asset_code: str
    amount: int
    reference: str
    reason: str
    maker: dict[str, Any]
    to_account: uuid.UUID | None  # a transfer's destination


@upcaster("payments.MovementRequested", from_version=1)
def _movement_requested_v1(data: EventData) -> EventData:
    # Version 1 requests were deposits and withdrawals only.
    return {**data, "to_account": None}


@event("payments.MovementApproved")
class MovementApproved(DomainEvent):
    checker: dict[str, Any]
    transfer_uuid: uuid.UUID


@event("payments.MovementRejected")
class MovementRejected(DomainEvent):
    checker: dict[str, Any]
    reason: str
