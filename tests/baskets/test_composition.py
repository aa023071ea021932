"""The GCU as seeded, the composition rules, rebalancing arithmetic and the vote's average."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from apps.baskets.aggregates import (
    BasketAlreadyDefined,
    composition_from_vote,
    normalised_components,
    period_start,
    rebalance_due,
    rebalanced_weights,
)
from apps.baskets.selectors import basket_get
from apps.baskets.services import GCU, basket_define
from apps.core.errors import InvalidComposition, InvalidInput
from apps.core.seeding import seed_reference_data

pytestmark = pytest.mark.django_db

D = Decimal


def _components(*rows):
    return [
        {"asset_code": code, "weight": str(w), "min_weight": str(lo), "max_weight": str(hi)}
        for code, w, lo, hi in rows
    ]


def test_gcu_is_seeded_with_its_weights_and_bounds(bank):
    gcu = basket_get("GCU")
    assert (gcu.name, gcu.type, gcu.rebalance_frequency, gcu.is_active) == (
        "Global Currency Unit",
        "dynamic",
        "monthly",
        True,
    )
    assert [
        (c.asset_code, c.weight, c.min_weight, c.max_weight)
        for c in gcu.components.order_by("position")
    ] == [
        ("USD", D("40"), D("20"), D("50")),
        ("EUR", D("30"), D("20"), D("40")),
        ("GBP", D("15"), D("5"), D("25")),
        ("CHF", D("10"), D("5"), D("20")),
        ("JPY", D("3"), D("0"), D("10")),
        ("XAU", D("2"), D("0"), D("10")),
    ]
    assert gcu.last_rebalanced_at is None


def test_reference_data_loads_again_without_change(bank):
    before = basket_get("GCU").updated_at
    seed_reference_data()
    assert basket_define(**GCU).updated_at == before


def test_a_different_definition_of_an_existing_basket_is_refused(bank):
    with pytest.raises(BasketAlreadyDefined) as refused:
        basket_define(**(GCU | {"name": "Another unit"}))
    assert refused.value.code == "BASKET_ALREADY_DEFINED"


def test_only_an_asset_of_type_basket_can_be_defined_as_one(bank):
    with pytest.raises(InvalidInput):
        basket_define(**(GCU | {"code": "EUR"}))
    itself = {"asset_code": "GCU", "weight": "2", "min_weight": "0", "max_weight": "10"}
    with pytest.raises(InvalidComposition):
        basket_define(**(GCU | {"components": [*GCU["components"][:5], itself]}))


@pytest.mark.parametrize(
    "rows",
    [
        (("USD", "60", "0", "100"), ("EUR", "39.98", "0", "100")),  # sums to 99.98
        (("USD", "60", "0", "100"), ("EUR", "40.02", "0", "100")),  # sums to 100.02
        (("USD", "60", "61", "100"), ("EUR", "40", "0", "100")),  # below its minimum
        (("USD", "60", "0", "100"), ("USD", "40", "0", "100")),  # twice
        (("USD", "50", "0", "50"), ("EUR", "50", "0", "45")),  # above its maximum
        (("USD", "60.001", "0", "100"), ("EUR", "39.999", "0", "100")),  # three decimals
    ],
)
def test_compositions_that_break_the_rules_are_refused(rows):
    with pytest.raises(InvalidComposition):
        normalised_components(_components(*rows), "BSK")


def test_weights_sum_to_100_within_a_hundredth():
    near = _components(("USD", "60", "0", "100"), ("EUR", "39.99", "0", "100"))
    assert [c["weight"] for c in normalised_components(near, "BSK")] == ["60.00", "39.99"]


def test_components_30_70_with_bounds_40_60_rebalance_to_40_60():
    rows = _components(("USD", "30", "40", "60"), ("EUR", "70", "40", "60"))
    assert rebalanced_weights(rows) == {"USD": D("40.00"), "EUR": D("60.00")}


def test_rebalancing_normalises_within_the_bounds():
    # clamped: 50 + 40 + 5 = 95; the missing 5 goes by room up to the maxima (0, 10, 20)
    rows = _components(("A", "60", "20", "50"), ("B", "40", "20", "50"), ("C", "0", "5", "25"))
    assert rebalanced_weights(rows) == {"A": D("50.00"), "B": D("41.67"), "C": D("8.33")}
    # clamped: 30 + 30 + 60 = 120; the excess 20 goes by room down to the minima (10, 10, 40)
    rows = _components(("A", "30", "20", "40"), ("B", "30", "20", "40"), ("C", "40", "20", "60"))
    rows[2]["weight"] = "60"
    assert rebalanced_weights(rows) == {"A": D("26.67"), "B": D("26.67"), "C": D("46.66")}
    assert sum(rebalanced_weights(rows).values()) == 100


def test_a_composition_within_bounds_rebalances_to_itself():
    weights = rebalanced_weights(normalised_components(GCU["components"], "GCU"))
    assert {code: str(weight) for code, weight in weights.items()} == {
        "USD": "40.00",
        "EUR": "30.00",
        "GBP": "15.00",
        "CHF": "10.00",
        "JPY": "3.00",
        "XAU": "2.00",
    }


OPTIONS = [
    {"id": "USD", "min_weight": "20.00", "max_weight": "50.00", "default_weight": "40.00"},
    {"id": "EUR", "min_weight": "20.00", "max_weight": "40.00", "default_weight": "30.00"},
    {"id": "GBP", "min_weight": "5.00", "max_weight": "40.00", "default_weight": "30.00"},
]


def test_the_vote_average_is_power_weighted_and_rounded_with_the_drift_to_the_largest():
    # votes: power 1 -> 50/20/30, power 2 -> 30/35/35; a total is power x percent / 100
    # (1.1, 0.9, 1.0), so the averages are 36.666.., 30 and 33.333..
    totals = {"USD": "1.1", "EUR": "0.9", "GBP": "1"}
    weights = composition_from_vote(totals=totals, total_power=3, options=OPTIONS)
    # 36.67 + 30.00 + 33.33 = 100.00 already
    assert weights == {"USD": D("36.67"), "EUR": D("30.00"), "GBP": D("33.33")}
    # three equal thirds round to 33.33 each: the 0.01 of drift goes to the largest (USD first)
    totals = {"USD": "1", "EUR": "1", "GBP": "1"}
    weights = composition_from_vote(totals=totals, total_power=3, options=OPTIONS)
    assert weights == {"USD": D("33.34"), "EUR": D("33.33"), "GBP": D("33.33")}


def test_the_defaults_when_nobody_voted():
    weights = composition_from_vote(totals={}, total_power=0, options=OPTIONS)
    assert weights == {"USD": D("40.00"), "EUR": D("30.00"), "GBP": D("30.00")}


def test_rebalancing_periods():
    now = dt.datetime(2027, 5, 19, 15, 30, tzinfo=dt.UTC)  # a Wednesday
    assert period_start("daily", now) == dt.datetime(2027, 5, 19, tzinfo=dt.UTC)
    assert period_start("weekly", now) == dt.datetime(2027, 5, 17, tzinfo=dt.UTC)
    assert period_start("monthly", now) == dt.datetime(2027, 5, 1, tzinfo=dt.UTC)
    assert period_start("quarterly", now) == dt.datetime(2027, 4, 1, tzinfo=dt.UTC)
    assert period_start("never", now) is None
    assert rebalance_due("monthly", None, now)
    assert rebalance_due("monthly", dt.datetime(2027, 4, 30, 23, tzinfo=dt.UTC), now)
    assert not rebalance_due("monthly", dt.datetime(2027, 5, 1, 0, 1, tzinfo=dt.UTC), now)
    assert not rebalance_due("never", None, now)
