"""Read side of baskets and bank allocation: compositions, values, history, allocations."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from apps.assets.models import RATE_PLACES
from apps.assets.selectors import asset_precisions, exchange_rate_get, value_at_mid
from apps.baskets.aggregates import (
    CENT,
    HUNDRED,
    component_amounts,
    distribution,
    is_diversified,
    legacy_quantities,
    unit_value,
)
from apps.baskets.models import (
    BankAllocationEntry,
    BasketAsset,
    BasketComponent,
    BasketCompositionChange,
    BasketOperation,
    BasketValue,
    PartnerBank,
)
from apps.core.errors import BasketInactive, NotFound

VALUE_CURRENCY = "USD"
_VALUE_PLACES = Decimal(1).scaleb(-RATE_PLACES)

# The split of a user who never chose one: 40/30/30 over three banks, the first primary.
DEFAULT_ALLOCATION: tuple[tuple[str, str, bool], ...] = (
    ("PAYSERA", "40.00", True),
    ("DEUTSCHE", "30.00", False),
    ("SANTANDER", "30.00", False),
)


# --- baskets -------------------------------------------------------------------------------------


def basket_list(*, is_active: bool | None = None) -> QuerySet[BasketAsset]:
    baskets = BasketAsset.objects.prefetch_related("components").order_by("code")
    if is_active is not None:
        baskets = baskets.filter(is_active=is_active)
    return baskets


def basket_get(code: str) -> BasketAsset:
    basket = BasketAsset.objects.prefetch_related("components").filter(code=code).first()
    if basket is None:
        raise NotFound("No such basket.", details={"basket_code": code})
    return basket


def basket_get_active(code: str) -> BasketAsset:
    basket = basket_get(code)
    if not basket.is_active:
        raise BasketInactive(details={"basket_code": code})
    return basket


def basket_components(code: str) -> list[BasketComponent]:
    return list(BasketComponent.objects.filter(basket_id=code).order_by("position"))


@dataclass(frozen=True)
class ComponentValue:
    asset_code: str
    weight: Decimal  # the voted weight, a percentage
    quantity: Decimal  # minor units of the asset per minor unit of the basket
    rate: Decimal  # USD per unit of the asset (mid)
    contribution: Decimal  # quantity x rate: USD per basket unit
    share: Decimal  # contribution / value x 100: the component's share of the value, percent


@dataclass(frozen=True)
class BasketValuation:
    code: str
    value: Decimal  # USD per basket unit
    currency: str
    calculated_at: dt.datetime
    components: tuple[ComponentValue, ...]


def basket_quantities(code: str) -> dict[str, Decimal]:
    """Each component's fixed quantity per basket minor unit (component minor units), as the
    read model holds it; a basket fixed before quantities were recorded holds weight / 100
    of each major unit."""
    components = basket_components(code)
    if all(c.quantity for c in components):
        return {c.asset_code: Decimal(c.quantity) for c in components}
    precisions = asset_precisions()
    return legacy_quantities(
        [{"asset_code": c.asset_code, "weight": c.weight} for c in components],
        basket_precision=precisions[code],
        precisions=precisions,
    )


def basket_compose_cost(code: str, amount: int) -> dict[str, int]:
    """What composing `amount` basket minor units takes of each component (minor units)."""
    quantities = basket_quantities(code)
    weights = {c.asset_code: c.weight for c in basket_components(code)}
    legs = component_amounts(amount=amount, quantities=quantities, weights=weights, kind="compose")
    return {asset: units for asset, units, _ in legs}


def basket_mid_prices(codes: Iterable[str], *, at: dt.datetime) -> dict[str, Decimal]:
    """The mid rate in USD of each asset `at` (read past the cache, so a rate recorded earlier
    in the same transaction counts)."""
    return {code: exchange_rate_get(code, VALUE_CURRENCY, at=at).rate for code in codes}


def basket_unit_value(
    code: str, *, at: dt.datetime | None = None, prices: Mapping[str, Decimal] | None = None
) -> BasketValuation:
    """The price of one basket unit in USD: the value of its current composition, each
    component's fixed quantity times its mid rate (or `prices`, USD per major unit). The one
    price of a basket: its exchange rates, its valuation and the quantities of compose and
    decompose all come from the same composition.

    A missing rate raises EXCHANGE_RATE_NOT_FOUND: a basket is never valued as if a component
    were worth nothing. A component held at zero needs no rate.
    """
    calculated_at = at or timezone.now()
    weights = {c.asset_code: c.weight for c in basket_components(code)}
    quantities = {asset: q for asset, q in basket_quantities(code).items() if q}
    if prices is None:
        prices = basket_mid_prices(quantities, at=calculated_at)
    precisions = asset_precisions()
    value = unit_value(
        quantities, prices=prices, basket_precision=precisions[code], precisions=precisions
    )
    parts = []
    with localcontext() as ctx:
        ctx.prec = 60
        for asset, quantity in quantities.items():
            contribution = quantity.scaleb(precisions[code] - precisions[asset]) * prices[asset]
            share = contribution * HUNDRED / value if value else Decimal(0)
            parts.append(
                ComponentValue(
                    asset,
                    weights[asset],
                    quantity,
                    prices[asset],
                    contribution,
                    share.quantize(CENT, rounding=ROUND_HALF_EVEN),
                )
            )
        value = value.quantize(_VALUE_PLACES, rounding=ROUND_HALF_EVEN)
    return BasketValuation(code, value, VALUE_CURRENCY, calculated_at, tuple(parts))


def basket_value_history(
    code: str, *, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> QuerySet[BasketValue]:
    """Recorded values of one basket, newest first."""
    values = BasketValue.objects.filter(basket_id=code)
    if since is not None:
        values = values.filter(calculated_at__gte=since)
    if until is not None:
        values = values.filter(calculated_at__lt=until)
    return values.order_by("-calculated_at", "-id")


def basket_composition_history(code: str) -> QuerySet[BasketCompositionChange]:
    return BasketCompositionChange.objects.filter(basket_id=code).order_by("-id")


def basket_operation_get(operation_uuid: uuid.UUID) -> BasketOperation:
    operation = BasketOperation.objects.filter(uuid=operation_uuid).first()
    if operation is None:
        raise NotFound("No such basket operation.", details={"uuid": str(operation_uuid)})
    return operation


def basket_operation_list(*, account_uuid: uuid.UUID) -> QuerySet[BasketOperation]:
    return BasketOperation.objects.filter(account_id=account_uuid).order_by("-created_at", "uuid")


# --- bank allocation -----------------------------------------------------------------------------


def partner_bank_list(*, is_active: bool | None = True) -> QuerySet[PartnerBank]:
    banks = PartnerBank.objects.order_by("position", "code")
    if is_active is not None:
        banks = banks.filter(is_active=is_active)
    return banks


@dataclass(frozen=True)
class Allocation:
    entries: list[dict[str, Any]]  # [{"bank_code", "percentage" (Decimal), "is_primary"}]
    is_default: bool

    @property
    def diversified(self) -> bool:
        return is_diversified(self.entries)


def bank_allocation_get(user_uuid: uuid.UUID) -> Allocation:
    """The user's split across partner banks, or the default one when none was chosen."""
    rows = BankAllocationEntry.objects.filter(user_uuid=user_uuid).order_by("position")
    entries = [
        {"bank_code": r.bank_code, "percentage": r.percentage, "is_primary": r.is_primary}
        for r in rows
    ]
    if entries:
        return Allocation(entries, is_default=False)
    default = [
        {"bank_code": code, "percentage": Decimal(share), "is_primary": primary}
        for code, share, primary in DEFAULT_ALLOCATION
    ]
    return Allocation(default, is_default=True)


def bank_distribution_preview(
    user_uuid: uuid.UUID, *, amount: int, asset_code: str = "EUR"
) -> dict[str, Any]:
    """How `amount` minor units of `asset_code` would be split across the user's banks, with a
    warning for each share above its bank's deposit-insurance limit (compared in the limit's
    currency at the current rate)."""
    allocation = bank_allocation_get(user_uuid)
    banks = {bank.code: bank for bank in PartnerBank.objects.all()}
    shares = distribution(amount, allocation.entries)
    warnings = []
    for bank_code, share in shares:
        bank = banks.get(bank_code)
        if bank is None or share <= 0:
            continue
        insured = share
        if asset_code != bank.insurance_currency:
            # a valuation, not a payout: at the mid
            insured = value_at_mid(share, asset_code, bank.insurance_currency)
        if insured > bank.insurance_limit:
            warnings.append(
                {
                    "bank_code": bank_code,
                    "amount": share,
                    "insured_amount": insured,
                    "insurance_limit": bank.insurance_limit,
                    "insurance_currency": bank.insurance_currency,
                    "message": f"{bank_code}'s share exceeds its deposit-insurance limit.",
                }
            )
    return {
        "amount": amount,
        "asset_code": asset_code,
        "distribution": [{"bank_code": code, "amount": share} for code, share in shares],
        "warnings": warnings,
    }
