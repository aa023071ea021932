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
