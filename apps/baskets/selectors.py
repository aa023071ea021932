"""Read side of baskets and bank allocation: compositions, values, history, allocations."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from apps.assets.models import RATE_PLACES
from apps.assets.selectors import convert, exchange_rate_get
from apps.baskets.aggregates import HUNDRED, distribution, is_diversified
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
    weight: Decimal
    rate: Decimal  # USD per unit of the asset
    contribution: Decimal  # rate x weight / 100: USD per basket unit


@dataclass(frozen=True)
class BasketValuation:
    code: str
    value: Decimal  # USD per basket unit
    currency: str
    calculated_at: dt.datetime
    components: tuple[ComponentValue, ...]


def basket_value(code: str, *, at: dt.datetime | None = None) -> BasketValuation:
    """The value of one basket unit in USD: the sum of each component's USD rate x weight / 100.

    A missing rate raises EXCHANGE_RATE_NOT_FOUND: a basket is never valued as if a component
    were worth nothing. A component weighing 0% needs no rate.
    """
    calculated_at = at or timezone.now()
    parts = []
    with localcontext() as ctx:
        ctx.prec = 60
        for component in basket_components(code):
            if not component.weight:
                continue
            rate = exchange_rate_get(component.asset_code, VALUE_CURRENCY, at=at).rate
            parts.append(
                ComponentValue(
                    component.asset_code,
                    component.weight,
                    rate,
                    rate * component.weight / HUNDRED,
                )
            )
        total = sum((part.contribution for part in parts), Decimal(0))
        value = total.quantize(_VALUE_PLACES, rounding=ROUND_HALF_EVEN)
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
            insured = convert(share, asset_code, bank.insurance_currency).converted_amount
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
