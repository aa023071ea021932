"""payments events -> Transfer read model."""

from __future__ import annotations

from apps.core.projection import EventRecord, Projector
from apps.payments.events import (
    MovementApproved,
    MovementRejected,
    MovementRequested,
    TransferCompleted,
    TransferReversed,
)
from apps.payments.models import MovementRequest, Transfer

payments_projector = Projector("payments", read_models=(MovementRequest, Transfer))


@payments_projector.on(TransferCompleted)
def _completed(evt: TransferCompleted, record: EventRecord) -> None:
    Transfer.objects.create(
        uuid=record.aggregate_uuid,
        kind=evt.kind,
        status=Transfer.Status.COMPLETED,
        from_account_id=evt.from_account,
        to_account_id=evt.to_account,
        from_asset=evt.from_asset,
        to_asset=evt.to_asset,
        amount=evt.amount,
        to_amount=evt.to_amount,
        rate=evt.rate,
        reference=evt.reference,
        actor=evt.actor,
        created_at=record.created_at,
    )


@payments_projector.on(TransferReversed)
def _reversed(evt: TransferReversed, record: EventRecord) -> None:
    Transfer.objects.filter(uuid=record.aggregate_uuid).update(
        status=Transfer.Status.REVERSED,
        reversed_at=record.created_at,
        reversal_uuid=evt.reversal_uuid,
        reversal_reason=evt.reason[:500],
        reversal_forced=evt.forced,
    )


@payments_projector.on(MovementRequested)
def _movement_requested(evt: MovementRequested, record: EventRecord) -> None:
    MovementRequest.objects.create(
        uuid=record.aggregate_uuid,
        kind=evt.kind,
        account_id=evt.account,
        asset_code=evt.asset_code,
        amount=evt.amount,
        reference=evt.reference,
        reason=evt.reason[:500],
        status=MovementRequest.Status.PENDING,
        maker=evt.maker,
        created_at=record.created_at,
    )


@payments_projector.on(MovementApproved)
def _movement_approved(evt: MovementApproved, record: EventRecord) -> None:
    MovementRequest.objects.filter(uuid=record.aggregate_uuid).update(
        status=MovementRequest.Status.APPROVED,
        checker=evt.checker,
        transfer_uuid=evt.transfer_uuid,
        decided_at=record.created_at,
    )


@payments_projector.on(MovementRejected)
def _movement_rejected(evt: MovementRejected, record: EventRecord) -> None:
    MovementRequest.objects.filter(uuid=record.aggregate_uuid).update(
        status=MovementRequest.Status.REJECTED,
        checker=evt.checker,
        decision_reason=evt.reason[:500],
        decided_at=record.created_at,
    )
