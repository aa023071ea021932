"""What baskets contribute to `reconcile`: each compose or decompose is one entry under the
operation's uuid, and the postings it must have. apps.accounts.reconciliation matches them
against the ledger."""

from __future__ import annotations

from collections.abc import Iterator

from apps.accounts.reconciliation import ExpectedLeg, entry_source_register
from apps.baskets.events import BasketComposed, BasketDecomposed
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
