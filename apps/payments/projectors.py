"""payments events -> Transfer read model."""

from __future__ import annotations

from decimal import Context, Decimal
from typing import Any

from django.db import router

from apps.core import sql
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


_RATE_PLACES = Decimal(10) ** -Transfer._meta.get_field("rate").decimal_places


def _completed_values(evt: TransferCompleted, record: EventRecord) -> dict[str, Any]:
    """The columns of a completed transfer's row (by attname), the rate rounded to the column's
    places as the database would round it."""
    rate = None if evt.rate is None else evt.rate.quantize(_RATE_PLACES, context=Context(prec=60))
    return {
        "uuid": record.aggregate_uuid,
        "kind": evt.kind,
        "status": Transfer.Status.COMPLETED,
        "from_account_id": evt.from_account,
        "to_account_id": evt.to_account,
        "from_asset": evt.from_asset,
        "to_asset": evt.to_asset,
        "amount": evt.amount,
        "to_amount": evt.to_amount,
        "rate": rate,
        "reference": evt.reference,
        "actor": evt.actor,
        "reason": evt.reason[:500],
        "created_at": record.created_at,
        "reversal_reason": "",
        "reversal_forced": False,
    }


def completed_transfer(evt: TransferCompleted, record: EventRecord) -> Transfer:
    """The read-model row of a completed transfer, exactly as the projector stores it.

    The service hands this to its caller instead of reading the row back, which would cost a
    query per transfer.
    """
    transfer = Transfer(**_completed_values(evt, record))
    transfer._state.adding = False  # it is (or is about to be) in the table
    transfer._state.db = router.db_for_write(Transfer)
    return transfer


@payments_projector.on_batch(TransferCompleted)
def _completed(completions: list[tuple[TransferCompleted, EventRecord]]) -> None:
    rows = [_completed_values(*pair) for pair in completions]
    sql.insert_rows(Transfer, list(rows[0]), [list(row.values()) for row in rows])


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
        to_account_id=evt.to_account,
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
