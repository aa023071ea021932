"""The Transfer aggregate: a completed journal entry that may be reversed once."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from apps.core.aggregates import AggregateRoot, applies
from apps.core.errors import (
    InvalidInput,
    MakerCannotDecide,
    MovementAlreadyDecided,
    SameAccount,
    TransferAlreadyReversed,
    TransferNotReversible,
)
from apps.payments.events import (
    MovementApproved,
    MovementRejected,
    MovementRequested,
    TransferCompleted,
    TransferReversed,
)

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
        reason: str = "",
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
                reason=reason,
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


MOVEMENT_KINDS = ("deposit", "withdrawal", "transfer")


class MovementRequest(AggregateRoot):
    """Maker-checker: staff moving a customer's money (a ledger-only deposit or withdrawal, a
    transfer out of the account) above the threshold waits for another staff member's decision;
    the maker can never decide his own request."""

    aggregate_type = "payments.MovementRequest"

    def __init__(self, aggregate_uuid: uuid.UUID):
        super().__init__(aggregate_uuid)
        self.status = "new"
        self.kind = ""
        self.account = ""
        self.asset_code = ""
        self.amount = 0
        self.reference = ""
        self.reason = ""
        self.maker_id = ""
        self.to_account: str | None = None

    def request(
        self,
        *,
        kind: str,
        account: uuid.UUID,
        asset_code: str,
        amount: int,
        reference: str,
        reason: str,
        maker: dict[str, Any],
        to_account: uuid.UUID | None = None,
    ) -> None:
        check_movement(kind=kind, reason=reason, account=account, to_account=to_account)
        self.record(
            MovementRequested(
                kind=kind,
                account=account,
                asset_code=asset_code,
                amount=amount,
                reference=reference,
                reason=reason,
                maker=maker,
                to_account=to_account,
            )
        )

    def ensure_decidable_by(self, checker: dict[str, Any]) -> None:
        if self.status != "pending":
            raise MovementAlreadyDecided(details={"request": str(self.uuid), "status": self.status})
        if checker.get("id") == self.maker_id:
            raise MakerCannotDecide(details={"request": str(self.uuid)})

    def approve(self, *, checker: dict[str, Any], transfer_uuid: uuid.UUID) -> None:
        self.ensure_decidable_by(checker)
        self.record(MovementApproved(checker=checker, transfer_uuid=transfer_uuid))

    def reject(self, *, checker: dict[str, Any], reason: str) -> None:
        self.ensure_decidable_by(checker)
        if not reason.strip():
            raise InvalidInput(details={"reason": ["a reason is required"]})
        self.record(MovementRejected(checker=checker, reason=reason))

    @applies(MovementRequested)
    def _requested(self, evt: MovementRequested) -> None:
        self.status = "pending"
        self.kind = evt.kind
        self.account = str(evt.account)
        self.asset_code = evt.asset_code
        self.amount = evt.amount
        self.reference = evt.reference
        self.reason = evt.reason
        self.maker_id = str(evt.maker.get("id", ""))
        self.to_account = str(evt.to_account) if evt.to_account else None

    @applies(MovementApproved)
    def _approved(self, evt: MovementApproved) -> None:
        self.status = "approved"

    @applies(MovementRejected)
    def _rejected(self, evt: MovementRejected) -> None:
        self.status = "rejected"


def check_movement(
    *, kind: str, reason: str, account: uuid.UUID, to_account: uuid.UUID | None
) -> None:
    """The rules of a staff movement of a customer's money, booked at once or requested."""
    if kind not in MOVEMENT_KINDS:
        raise InvalidInput(details={"kind": [f"must be one of {', '.join(MOVEMENT_KINDS)}"]})
    if not reason.strip():
        raise InvalidInput(details={"reason": ["a reason is required"]})
    if (kind == "transfer") != (to_account is not None):
        raise InvalidInput(details={"to_account": ["a transfer, and only a transfer, has one"]})
    if to_account == account:
        raise SameAccount(details={"account": str(account)})
