"""What baskets contribute to `reconcile`: each compose or decompose is one entry under the
operation's uuid, each fixing of quantities that moved the reserve one entry under its
`entry_uuid`, and the postings they must have. apps.accounts.reconciliation matches them
against the ledger."""

from __future__ import annotations

from collections.abc import Iterator

from apps.accounts.reconciliation import ExpectedLeg, entry_source_register
from apps.baskets.events import BasketComposed, BasketDecomposed, BasketQuantitiesFixed
from apps.baskets.models import BasketEvent
from apps.core.events import decode


def operation_legs(operation: BasketComposed | BasketDecomposed) -> list[ExpectedLeg]:
    """Compose: each component goes from the account to the reserve and the basket units from
    the reserve to the account. Decompose: the same with every sign turned round."""
    sign = 1 if isinstance(operation, BasketComposed) else -1
    account, reserve = operation.account_uuid, operation.reserve_account
    legs = []
    for component in operation.components:
        asset_code, quantity = component["asset_code"], component["amount"]
        if quantity:  # a zero leg posts nothing
            legs.append(ExpectedLeg(account, asset_code, -sign * quantity))
            legs.append(ExpectedLeg(reserve, asset_code, sign * quantity))
    legs.append(ExpectedLeg(reserve, operation.basket_code, -sign * operation.amount))
    legs.append(ExpectedLeg(account, operation.basket_code, sign * operation.amount))
    return legs


def _operations(batch_size: int) -> Iterator[tuple[str, BasketComposed | BasketDecomposed]]:
    rows = (
        BasketEvent.objects.filter(
            event_type__in=(BasketComposed.event_type, BasketDecomposed.event_type)
        )
        .order_by("aggregate_uuid", "aggregate_version")
        .values_list("aggregate_uuid", "event_type", "event_version", "event_data")
    )
    for operation_uuid, *event in rows.iterator(chunk_size=batch_size):
        yield str(operation_uuid), decode(*event)


entry_source_register(name="baskets.operation", entries=_operations, legs=operation_legs)


def reserve_legs(fixed: BasketQuantitiesFixed) -> list[ExpectedLeg]:
    """Each component's move into the reserve (positive) or out of it, against the FX position."""
    legs = []
    for component in fixed.components:
        if component["reserve_move"]:
            move = component["reserve_move"]
            legs.append(ExpectedLeg(fixed.reserve_account, component["asset_code"], move))
            legs.append(ExpectedLeg(fixed.fx_account, component["asset_code"], -move))
    return legs


def _reserve_moves(batch_size: int) -> Iterator[tuple[str, BasketQuantitiesFixed]]:
    """In entry text order. Sorted in memory: a basket fixes its quantities once per rebalance
    or composition change (a few a month), so there are few of them whatever the ledger's size."""
    rows = (
        BasketEvent.objects.filter(event_type=BasketQuantitiesFixed.event_type)
        .order_by("id")
        .values_list("event_type", "event_version", "event_data")
    )
    moved = [decode(*event) for event in rows.iterator(chunk_size=batch_size)]
    moved = [fixed for fixed in moved if fixed.entry_uuid is not None]
    for fixed in sorted(moved, key=lambda fixed: str(fixed.entry_uuid)):
        yield str(fixed.entry_uuid), fixed


entry_source_register(name="baskets.reserve_rebalance", entries=_reserve_moves, legs=reserve_legs)
