"""What payments contribute to `reconcile`: the entries a Transfer describes and the postings
each must have. apps.accounts.reconciliation matches them against the ledger.

A completed transfer is the entry under the transfer's uuid; a reversal is the entry under its
`reversal_uuid` and posts the completed transfer's legs with their signs turned round.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import OuterRef, Subquery
from django.db.models.fields.json import KT

from apps.accounts.reconciliation import ExpectedLeg, entry_source_register, in_text_order
from apps.accounts.services import FX_POSITION, system_account_uuid
from apps.core.events import decode
from apps.payments.events import TransferCompleted, TransferReversed
from apps.payments.models import PaymentEvent


def transfer_legs(completed: TransferCompleted) -> list[ExpectedLeg]:
    """The source pays `amount` of from_asset, the target receives `to_amount` of to_asset; a
    transfer across assets has the FX position account on the other side of both."""
    legs = [
        ExpectedLeg(completed.from_account, completed.from_asset, -completed.amount),
        ExpectedLeg(completed.to_account, completed.to_asset, completed.to_amount),
    ]
    if completed.from_asset != completed.to_asset:
        fx = system_account_uuid(FX_POSITION)
        legs.append(ExpectedLeg(fx, completed.from_asset, completed.amount))
        legs.append(ExpectedLeg(fx, completed.to_asset, -completed.to_amount))
    return legs


def reversal_legs(completed: TransferCompleted | None) -> list[ExpectedLeg]:
    if completed is None:  # a reversal of nothing must post nothing
        return []
    return [leg._replace(amount=-leg.amount) for leg in transfer_legs(completed)]


def _transfers(batch_size: int) -> Iterator[tuple[str, TransferCompleted]]:
    rows = (
        PaymentEvent.objects.filter(event_type=TransferCompleted.event_type)
        .order_by("aggregate_uuid", "aggregate_version")
        .values_list("aggregate_uuid", "event_type", "event_version", "event_data")
    )
    for transfer_uuid, *event in rows.iterator(chunk_size=batch_size):
        yield str(transfer_uuid), decode(*event)


def _reversals(batch_size: int) -> Iterator[tuple[str, TransferCompleted | None]]:
    completed = PaymentEvent.objects.filter(
        aggregate_uuid=OuterRef("aggregate_uuid"), event_type=TransferCompleted.event_type
    ).order_by("aggregate_version")
    rows = (
        PaymentEvent.objects.filter(event_type=TransferReversed.event_type)
        .annotate(
            entry=KT("event_data__reversal_uuid"),
            completed_version=Subquery(completed.values("event_version")[:1]),
            completed_data=Subquery(completed.values("event_data")[:1]),
        )
        .order_by(in_text_order("entry"))
        .values_list("entry", "completed_version", "completed_data")
    )
    for entry, version, data in rows.iterator(chunk_size=batch_size):
        original = None if data is None else decode(TransferCompleted.event_type, version, data)
        yield entry, original


entry_source_register(name="payments.transfer", entries=_transfers, legs=transfer_legs)
entry_source_register(name="payments.reversal", entries=_reversals, legs=reversal_legs)
