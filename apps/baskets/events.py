"""Basket and bank-allocation events. Names and fields are a contract with every stored row.

Weights and percentages travel as two-decimal strings inside their lists ("40.00").
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from apps.core.events import DomainEvent, event


@event("baskets.BasketDefined")
class BasketDefined(DomainEvent):
    code: str
    name: str
    type: str  # fixed | dynamic
    rebalance_frequency: str  # daily | weekly | monthly | quarterly | never
    components: list[Any]  # [{"asset_code", "weight", "min_weight", "max_weight"}]
    reserve_account: uuid.UUID  # the system account that holds the components of issued units
    by: dict[str, Any]


@event("baskets.BasketActivated")
class BasketActivated(DomainEvent):
    reason: str
    at: dt.datetime
    by: dict[str, Any]


@event("baskets.BasketDeactivated")
class BasketDeactivated(DomainEvent):
    reason: str
    at: dt.datetime
    by: dict[str, Any]


@event("baskets.BasketCompositionScheduled")
class BasketCompositionScheduled(DomainEvent):
    """A composition decided (by a vote) to take effect on a later day."""

    components: list[Any]  # [{"asset_code", "weight"}]
    effective_on: dt.date
    poll_uuid: uuid.UUID | None
    at: dt.datetime
    by: dict[str, Any]


@event("baskets.BasketCompositionChanged")
class BasketCompositionChanged(DomainEvent):
    components: list[Any]  # [{"asset_code", "old_weight", "new_weight"}]
    reason: str
    poll_uuid: uuid.UUID | None
    at: dt.datetime
    by: dict[str, Any]


@event("baskets.BasketRebalanced")
class BasketRebalanced(DomainEvent):
    adjustments: list[Any]  # [{"asset_code", "old_weight", "new_weight", "adjustment"}]
    value: Decimal  # USD per basket unit when it was rebalanced
    at: dt.datetime
    by: dict[str, Any]


@event("baskets.BasketQuantitiesFixed")
class BasketQuantitiesFixed(DomainEvent):
    """Each component's fixed quantity per basket unit, recomputed from the weights at the mid
    prices of the moment so that value shares equal the weights, the value of a unit unchanged
    (or its initial value). When outstanding units needed other amounts, the entry
    `entry_uuid` moved each component's `reserve_move` between the reserve (positive: into it)
    and the FX position; None when nothing moved."""

    # [{"asset_code", "weight", "price" (USD, or None at weight 0), "old_quantity" (None when
    # new), "new_quantity" (component minor units per basket minor unit), "reserve_move"}]
    components: list[Any]
    unit_value: Decimal  # USD per major basket unit, the same before and after
    outstanding: int  # basket minor units issued when it was fixed
    reserve_account: uuid.UUID
    fx_account: uuid.UUID
    entry_uuid: uuid.UUID | None
    reason: str
    at: dt.datetime
    by: dict[str, Any]


@event("baskets.BasketComposed")
class BasketComposed(DomainEvent):
    """Components moved from the account to the reserve, basket units issued to the account.
    The postings (accounts.MoneyAdded/MoneySubtracted) carry this operation's uuid as entry."""

    account_uuid: uuid.UUID
    basket_code: str
    amount: int  # basket units, minor units of the basket asset
    # [{"asset_code", "amount", "weight"}], and since quantities are fixed "quantity" (per
    # basket minor unit); amounts rounded up (compose) or down (decompose) for the bank
    components: list[Any]
    reserve_account: uuid.UUID
    by: dict[str, Any]


@event("baskets.BasketDecomposed")
class BasketDecomposed(DomainEvent):
    account_uuid: uuid.UUID
    basket_code: str
    amount: int
    components: list[Any]
    reserve_account: uuid.UUID
    by: dict[str, Any]


@event("baskets.BankAllocationSet")
class BankAllocationSet(DomainEvent):
    user_uuid: uuid.UUID
    allocations: list[Any]  # [{"bank_code", "percentage", "is_primary"}] in distribution order
    by: dict[str, Any]
