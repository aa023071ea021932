"""After-commit side effects of baskets: the money-movement metrics of compose and decompose.

Reactors run only once the transaction that stored the event has committed, so a rolled-back or
retried operation counts nothing.
"""

from __future__ import annotations

from apps.baskets.events import BasketComposed, BasketDecomposed
from apps.core.observability import money_moved_minor_units_total, money_movements_total
from apps.core.projection import EventRecord, reactor


@reactor(BasketComposed, BasketDecomposed)
def count_basket_operation(evt: BasketComposed | BasketDecomposed, record: EventRecord) -> None:
    """kind: basket_compose | basket_decompose; amount in basket units (minor units)."""
    kind = "basket_compose" if isinstance(evt, BasketComposed) else "basket_decompose"
    money_movements_total.labels(kind=kind, asset=evt.basket_code).inc()
    money_moved_minor_units_total.labels(kind=kind, asset=evt.basket_code).inc(evt.amount)
