"""After-commit side effects of payments: the money-movement metrics.

Reactors run only once the transaction that stored the event has committed, so a rolled-back or
retried transfer counts nothing.
"""

from __future__ import annotations

import logging

from apps.core.observability import money_moved_minor_units_total, money_movements_total
from apps.core.projection import EventRecord, reactor
from apps.payments.events import TransferCompleted, TransferReversed
from apps.payments.models import Transfer

logger = logging.getLogger(__name__)


def _count(kind: str, asset: str, amount: int) -> None:
    money_movements_total.labels(kind=kind, asset=asset).inc()
    money_moved_minor_units_total.labels(kind=kind, asset=asset).inc(amount)


@reactor(TransferCompleted)
def count_completed_movement(evt: TransferCompleted, record: EventRecord) -> None:
    """kind: transfer | deposit | withdrawal | conversion; amount in from_asset minor units."""
    _count(evt.kind, evt.from_asset, evt.amount)


@reactor(TransferReversed)
def count_reversal(evt: TransferReversed, record: EventRecord) -> None:
    """A reversal gives back the original amount in the original from_asset."""
    original = (
        Transfer.objects.filter(uuid=record.aggregate_uuid)
        .values_list("from_asset", "amount")
        .first()
    )
    if original is None:
        logger.warning("reversed transfer %s has no read model row", record.aggregate_uuid)
        return
    asset, amount = original
    _count("reversal", asset, amount)
