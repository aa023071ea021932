"""The Transfer aggregate: a completed journal entry that may be reversed once."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from apps.core.aggregates import AggregateRoot, applies
from apps.core.errors import TransferAlreadyReversed, TransferNotReversible
from apps.payments.events import TransferCompleted, TransferReversed

KINDS = ("transfer", "deposit", "withdrawal", "conversion")


class Transfer(AggregateRoot):
    aggregate_type = "payments.Transfer"

    def __init__(self, aggregate_uuid: uuid.UUID):
        super().__init__(aggregate_uuid)
        self.status = "new"
        self.kind = ""
        self.from_account = ""
        self.to_account = ""
        self.from_asset = ""
        self.to_asset = ""
        self.amount = 0
        self.to_amount = 0
        self.rate: str | None = None

    def complete(
        self,
        *,
        kind: str,
        from_account: uuid.UUID,
        to_account: uuid.UUID,
        from_asset: str,
        to_asset: str,
        amount: int,
        to_amount: int,
        rate: Decimal | None,
        reference: str,
        actor: dict[str, Any],
    ) -> None:
        self.record(
            TransferCompleted(
                kind=kind,
                from_account=from_account,
                to_account=to_account,
                from_asset=from_asset,
                to_asset=to_asset,
                amount=amount,
                to_amount=to_amount,
                rate=rate,
                reference=reference,
                actor=actor,
            )
        )

    def reverse(self, *, reversal_uuid: uuid.UUID, reason: str, forced: bool, by: dict) -> None:
        if self.status == "reversed":
            raise TransferAlreadyReversed(details={"transfer": str(self.uuid)})
        if self.status != "completed":
            raise TransferNotReversible(details={"transfer": str(self.uuid)})
        self.record(
            TransferReversed(reversal_uuid=reversal_uuid, reason=reason, forced=forced, by=by)
        )

    @applies(TransferCompleted)
    def _completed(self, evt: TransferCompleted) -> None:
        self.status = "completed"
        self.kind = evt.kind
        self.from_account = str(evt.from_account)
        self.to_account = str(evt.to_account)
        self.from_asset = evt.from_asset
        self.to_asset = evt.to_asset
        self.amount = evt.amount
        self.to_amount = evt.to_amount
        self.rate = None if evt.rate is None else str(evt.rate)

    @applies(TransferReversed)
    def _reversed(self, evt: TransferReversed) -> None:
        self.status = "reversed"
