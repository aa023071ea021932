"""The basket's value in USD (a missing rate is an error, never a zero), its hourly history,
and rebalancing (dynamic baskets with a value above zero only)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from unittest import mock

import pytest

from apps.assets.models import ExchangeRate
from apps.assets.services import asset_define, exchange_rate_deactivate
from apps.baskets.aggregates import Basket
from apps.baskets.events import BasketDefined
from apps.baskets.models import BasketCompositionChange, BasketEvent, BasketValue
from apps.baskets.selectors import basket_get, basket_unit_value, basket_value_history
from apps.baskets.services import (
    basket_define,
    basket_rebalance,
    basket_value_record,
    basket_values_record,
    baskets_rebalance_due,
)
from apps.baskets.tasks import rebalance_due_baskets_task, record_basket_values_task
from apps.core.errors import BasketNotDynamic, BasketValueNotPositive, ExchangeRateNotFound

pytestmark = pytest.mark.django_db

SYSTEM = {"type": "system", "id": "system"}


def _without_gold_rates() -> None:
    """Withdraw every rate between gold and the dollar: XAU can no longer be valued."""
    for rate in ExchangeRate.objects.filter(from_asset="XAU", to_asset="USD") | (
        ExchangeRate.objects.filter(from_asset="USD", to_asset="XAU")
    ):
        exchange_rate_deactivate(rate_id=rate.id, reason="test")


def _define(code: str, type: str, components: list[tuple[str, str, str, str]]):
    asset_define(code=code, name=f"{code} basket", type="basket", precision=2)
    return basket_define(
        code=code,
        name=f"{code} basket",
        type=type,
        rebalance_frequency="monthly" if type == "dynamic" else "never",
        components=[
            {"asset_code": a, "weight": w, "min_weight": lo, "max_weight": hi}
            for a, w, lo, hi in components
        ],
    )


# --- value -----------------------------------------------------------------------------------


def test_the_value_is_the_sum_of_each_quantity_times_its_rate(bank):
    valuation = basket_unit_value("GCU")
    # Defined at 1 USD a unit: 0.40 USD, 0.30 USD of euros (0.2777... EUR), ... 0.02 USD of gold.
    assert valuation.value == Decimal(1)
    assert valuation.currency == "USD"
    parts = {part.asset_code: part for part in valuation.components}
    assert parts["EUR"].quantity == Decimal("0.277777777777777777777778")  # 0.30 / 1.08 EUR
    assert parts["XAU"].quantity == Decimal("0.000075471698113207547170")  # 0.02 / 2650 oz
    for part in valuation.components:
        assert abs(part.contribution - part.weight / 100) < Decimal("1e-20")


def test_a_missing_rate_is_an_error_never_a_zero(bank):
    _without_gold_rates()
    with pytest.raises(ExchangeRateNotFound) as refused:
        basket_unit_value("GCU")
    assert refused.value.details == {"from": "XAU", "to": "USD"}


def test_a_component_weighing_nothing_needs_no_rate(bank):
    _define("ZB", "dynamic", [("USD", "100", "50", "100"), ("XAU", "0", "0", "50")])
    _without_gold_rates()
    assert basket_unit_value("ZB").value == Decimal(1)


def test_values_are_recorded_as_history(bank, now):
    basket_value_record(code="GCU", now=now - dt.timedelta(hours=1))
    recorded = basket_value_record(code="GCU", now=now)
    assert recorded.value == Decimal(1)
    assert recorded.components["XAU"] == {
        "weight": "2.00",
        "quantity": str(basket_unit_value("GCU").components[-1].quantity),
        "rate": "2650.000000000000000000",
    }
    history = basket_value_history("GCU")
    assert [point.calculated_at for point in history] == [now, now - dt.timedelta(hours=1)]
    assert list(basket_value_history("GCU", since=now)) == [recorded]


def test_the_hourly_job_records_nothing_for_a_basket_it_cannot_value(bank):
    _define("ZB", "dynamic", [("USD", "100", "50", "100"), ("XAU", "0", "0", "50")])
    _without_gold_rates()
    assert basket_values_record() == {
        "recorded": ["ZB"],
        "failed": {"GCU": "EXCHANGE_RATE_NOT_FOUND"},
    }
    assert not BasketValue.objects.filter(basket_id="GCU").exists()


def test_the_celery_task_records_values(bank):
    assert record_basket_values_task.apply().get() == {"recorded": ["GCU"], "failed": {}}
    assert BasketValue.objects.get().value == Decimal(1)


# --- rebalancing -----------------------------------------------------------------------------


def test_components_30_70_with_bounds_40_60_rebalance_to_40_60():
    basket = Basket(uuid.uuid4())
    basket.apply(  # a stored definition whose weights lie outside today's bounds
        BasketDefined(
            code="BSK",
            name="Bounds",
            type="dynamic",
            rebalance_frequency="monthly",
            components=[
                {"asset_code": "AAA", "weight": "30.00", "min_weight": "40", "max_weight": "60"},
                {"asset_code": "BBB", "weight": "70.00", "min_weight": "40", "max_weight": "60"},
            ],
            reserve_account=uuid.uuid4(),
            by=SYSTEM,
        )
    )
    now = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    adjustments = basket.rebalance(value=Decimal("1.5"), now=now, by=SYSTEM)
    assert [(a["asset_code"], a["new_weight"], a["adjustment"]) for a in adjustments] == [
        ("AAA", "40.00", "10.00"),
        ("BBB", "60.00", "-10.00"),
    ]
    assert basket.weights == {"AAA": Decimal("40.00"), "BBB": Decimal("60.00")}
    assert basket.last_rebalanced_at == now.isoformat()
    with pytest.raises(BasketValueNotPositive):
        basket.rebalance(value=Decimal(0), now=now, by=SYSTEM)


def test_rebalancing_records_the_event_and_the_history(bank):
    rebalanced = basket_rebalance(code="GCU")
    assert rebalanced.last_rebalanced_at is not None
    assert rebalanced.last_rebalance["value"] == "1.000000000000000000"
    assert {a["adjustment"] for a in rebalanced.last_rebalance["adjustments"]} == {"0.00"}
    event = BasketEvent.objects.get(event_type="baskets.BasketRebalanced")
    assert event.event_data["value"] == "1.000000000000000000"
    change = BasketCompositionChange.objects.filter(kind="rebalanced").get()
    assert change.weights["USD"] == "40.00" and change.value == Decimal(1)
    fixed = BasketCompositionChange.objects.filter(kind="quantities").first()
    assert fixed.reason == "rebalanced" and fixed.value == Decimal(1)


def test_only_dynamic_baskets_are_rebalanced(bank):
    _define("FX2", "fixed", [("USD", "50", "50", "50"), ("EUR", "50", "50", "50")])
    with pytest.raises(BasketNotDynamic):
        basket_rebalance(code="FX2")
    assert basket_get("FX2").last_rebalanced_at is None


def test_a_basket_that_cannot_be_valued_is_not_rebalanced(bank):
    _without_gold_rates()
    with pytest.raises(ExchangeRateNotFound):
        basket_rebalance(code="GCU")
    assert not BasketEvent.objects.filter(event_type="baskets.BasketRebalanced").exists()


def test_the_daily_job_rebalances_each_basket_once_per_period(bank, now):
    assert baskets_rebalance_due(now=now) == {"rebalanced": ["GCU"], "failed": {}}
    assert baskets_rebalance_due(now=now + dt.timedelta(hours=1)) == {
        "rebalanced": [],
        "failed": {},
    }
    next_month = (now.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    assert baskets_rebalance_due(now=next_month)["rebalanced"] == ["GCU"]
    two_months_on = next_month + dt.timedelta(days=40)
    with mock.patch("django.utils.timezone.now", return_value=two_months_on):
        assert rebalance_due_baskets_task.apply().get()["rebalanced"] == ["GCU"]
    assert basket_get("GCU").last_rebalanced_at == two_months_on
