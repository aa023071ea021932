"""Transfer events: one journal entry each; its postings are MoneyAdded/MoneySubtracted."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from apps.core.events import DomainEvent, event


@event("payments.TransferCompleted")
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


@event("payments.TransferReversed")
class TransferReversed(DomainEvent):
    reversal_uuid: uuid.UUID  # the entry_uuid of the compensating postings
    reason: str
    forced: bool
    by: dict[str, Any]


@event("payments.MovementRequested")
class MovementRequested(DomainEvent):
    """A staff member asked for a manual deposit or withdrawal that needs a second pair of eyes."""

    kind: str  # deposit | withdrawal
    account: uuid.UUID
    asset_code: str
    amount: int
    reference: str
    reason: str
    maker: dict[str, Any]


@event("payments.MovementApproved")
class MovementApproved(DomainEvent):
    checker: dict[str, Any]
    transfer_uuid: uuid.UUID


@event("payments.MovementRejected")
class MovementRejected(DomainEvent):
    checker: dict[str, Any]
    reason: str
