"""payments events -> Transfer read model."""

from __future__ import annotations

from apps.core.projection import EventRecord, Projector
from apps.payments.events import TransferCompleted, TransferReversed
from apps.payments.models import Transfer

payments_projector = Projector("payments", read_models=(Transfer,))


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
