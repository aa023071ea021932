"""The GCU has one price and its weights are value shares (Money integrity, findings 3 and 5).

Each unit holds a fixed quantity of each component, fixed at each rebalance so that value shares
equal the voted weights with the value of a unit unchanged; the basket's exchange rate, its
valuation and compose/decompose all use that composition; compose rounds up and decompose down,
so no sequence of operations ends with more value at mid than it started with, and the reserve
always holds what the outstanding units contain.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.accounts.models import AccountBalance
from apps.accounts.reconciliation import ledger_reconcile
from apps.accounts.selectors import balances_by_asset
from apps.accounts.services import system_account_uuid
from apps.assets.providers import DemoRateProvider
from apps.assets.selectors import asset_precisions, exchange_rate_get
from apps.assets.services import asset_define, exchange_rates_refresh
from apps.baskets.aggregates import Basket, reserve_account_code
from apps.baskets.models import BasketComponent, BasketCompositionChange, BasketEvent
from apps.baskets.selectors import basket_compose_cost, basket_quantities, basket_unit_value
from apps.baskets.services import (
    basket_compose,
    basket_composition_schedule,
    basket_decompose,
    basket_period_start,
    basket_rates_record,
    basket_rebalance,
)
from apps.core import store
from apps.core.errors import DomainError, InvalidInput
from apps.core.replay import rebuild_projections
from apps.payments.services import conversion_create

pytestmark = pytest.mark.django_db

GCU = "GCU"
WEIGHTS = {"USD": 40, "EUR": 30, "GBP": 15, "CHF": 10, "JPY": 3, "XAU": 2}
# Within every bound: USD 20-50, EUR 20-40, GBP 5-25, CHF 5-20, JPY 0-10, XAU 0-10.
NEW_WEIGHTS = {"USD": "20", "EUR": "30", "GBP": "20", "CHF": "10", "JPY": "10", "XAU": "10"}


def _usd(asset_code: str) -> Decimal:
    return exchange_rate_get(asset_code, "USD", at=dt.datetime.now(dt.UTC)).rate


def _mid_value(holdings: dict[str, int]) -> Decimal:
    """The exact USD value at mid of minor-unit holdings (the GCU at its own rate)."""
    precisions = asset_precisions()
    values = (Decimal(n).scaleb(-precisions[code]) * _usd(code) for code, n in holdings.items())
    return sum(values, Decimal(0))


def _reserve(code: str = GCU) -> dict[str, int]:
    return balances_by_asset(system_account_uuid(reserve_account_code(code)))


def _assert_reserve_covers_outstanding(code: str = GCU) -> None:
    """Never negative in any component, and at least what the outstanding units contain."""
    reserve = _reserve(code)
    outstanding = -reserve.get(code, 0)
    for asset_code, quantity in basket_quantities(code).items():
        assert reserve.get(asset_code, 0) >= 0
        assert reserve.get(asset_code, 0) >= quantity * outstanding, asset_code


class _GoldMoves(DemoRateProvider):
    """The demo market with gold moved by `factor` against everything."""

    def __init__(self, factor: str):
        super().__init__()
        self.factor = Decimal(factor)

    def usd_values(self):
        return {**super().usd_values(), "XAU": super().usd_values()["XAU"] * self.factor}


def _move_gold(factor: str) -> None:
    """Within the rate band, so it is in force at once; the refresh requotes the GCU."""
    exchange_rates_refresh(provider=_GoldMoves(factor))


def _requote_baskets() -> None:
    basket_rates_record(code=GCU)


# --- one price -------------------------------------------------------------------------------


def test_a_unit_is_worth_its_initial_dollar_and_each_weight_is_a_value_share(bank):
    valuation = basket_unit_value(GCU)
    assert abs(valuation.value - 1) < Decimal("1e-15")
    shares = {part.asset_code: part.share for part in valuation.components}
    assert shares == {code: Decimal(weight) for code, weight in WEIGHTS.items()}
    # Gold is 2% of the value, not the 98% that weights on unit quantities made it.
    gold = next(part for part in valuation.components if part.asset_code == "XAU")
    assert abs(gold.contribution - Decimal("0.02")) < Decimal("1e-15")


def test_the_gcu_rate_is_the_basket_unit_value(bank):
    assert abs(_usd(GCU) - basket_unit_value(GCU).value) < Decimal("1e-15")
    exchange_rates_refresh(provider=DemoRateProvider(seed=7))  # every market rate moves
    value = basket_unit_value(GCU).value
    assert value != 1
    assert abs(_usd(GCU) - value) < Decimal("1e-15")
    eur = exchange_rate_get(GCU, "EUR").rate
    assert abs(eur - value / _usd("EUR")) < Decimal("1e-12")


# --- rounding never pays the customer --------------------------------------------------------


def test_compose_then_split_decompose_cycles_never_gain(bank, fund, user):
    """The attack: compose, then decompose in pieces so that each piece's rounding pays out a
    little more than the whole would; the old half-even rounding gained about $2.66 every
    three calls. Now compose rounds up and decompose down: every cycle loses or breaks even."""
    account = fund(user, {code: 10 * cost for code, cost in basket_compose_cost(GCU, 3_00).items()})
    start = _mid_value(balances_by_asset(account.uuid))
    previous = start
    for _ in range(10):
        basket_compose(account_uuid=account.uuid, basket_code=GCU, amount=3_00)
        for piece in (1_01, 1_01, 98):
            basket_decompose(account_uuid=account.uuid, basket_code=GCU, amount=piece)
        now = _mid_value(balances_by_asset(account.uuid))
        assert now <= previous
        previous = now
    assert previous < start
    _assert_reserve_covers_outstanding()


operation = st.tuples(st.sampled_from(["compose", "decompose"]), st.integers(1, 40_000))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(operation, min_size=1, max_size=12))
def test_no_sequence_of_compose_and_decompose_ends_with_more_value(bank, fund, user, steps):
    costs = basket_compose_cost(GCU, 40_000)
    account = fund(user, {code: 3 * cost for code, cost in costs.items()})
    start = _mid_value(balances_by_asset(account.uuid))
    for kind, amount in steps:
        run = basket_compose if kind == "compose" else basket_decompose
        try:
            run(account_uuid=account.uuid, basket_code=GCU, amount=amount)
        except DomainError:  # not enough of something, or too small: refused, nothing moved
            continue
        _assert_reserve_covers_outstanding()
    assert _mid_value(balances_by_asset(account.uuid)) <= start


# --- rebalancing: value shares, holders' value, the reserve ------------------------------------


def _holders(fund, make_user, count: int = 3) -> list:
    accounts = []
    for index in range(count):
        amount = (index + 1) * 123_45
        account = fund(make_user(), basket_compose_cost(GCU, amount), name="GCU holder")
        basket_compose(account_uuid=account.uuid, basket_code=GCU, amount=amount)
        accounts.append(account)
    return accounts


def _change_composition(now) -> None:
    today = dt.datetime.now(dt.UTC)
    basket_composition_schedule(code=GCU, weights=NEW_WEIGHTS, effective_on=today.date(), now=now)
    assert basket_period_start(code=GCU, now=today)["applied"]


def test_after_a_composition_change_10000_dollars_through_gcu_give_back_at_most_10000(
    bank, fund, make_user, now
):
    """The finding: the rate came from fixed demo weights while decompose paid the live
    composition, so $10,000 converted to GCU and decomposed gave $49,236 and the reserve went
    negative in every component."""
    _holders(fund, make_user)
    _change_composition(now)
    _assert_reserve_covers_outstanding()
    _requote_baskets()
    # GCU is not converted into at all: units bought from the FX position at the GCU's rate
    # would be backed by nothing in the reserve.
    attacker = fund(make_user(), {"USD": 10_000_00})
    with pytest.raises(InvalidInput):
        conversion_create(
            account_uuid=attacker.uuid, from_asset="USD", to_asset=GCU, amount=10_000_00
        )
    assert balances_by_asset(attacker.uuid) == {"USD": 10_000_00}
    # Through compose: $10,000 of components composed and taken apart give back no more.
    composer = fund(make_user(), basket_compose_cost(GCU, 10_000_00))
    start = _mid_value(balances_by_asset(composer.uuid))
    basket_compose(account_uuid=composer.uuid, basket_code=GCU, amount=10_000_00)
    basket_decompose(account_uuid=composer.uuid, basket_code=GCU, amount=10_000_00)
    assert _mid_value(balances_by_asset(composer.uuid)) <= start
    _assert_reserve_covers_outstanding()
    report = ledger_reconcile()
    assert report.clean, report.as_dict()


def test_right_after_a_rebalance_value_shares_equal_the_voted_weights(bank):
    _move_gold("1.08")  # gold's share drifts above its 2%
    drifted = {p.asset_code: p.share for p in basket_unit_value(GCU).components}
    assert drifted["XAU"] > 2
    basket_rebalance(code=GCU)
    shares = {p.asset_code: p.share for p in basket_unit_value(GCU).components}
    assert shares == {code: Decimal(weight) for code, weight in WEIGHTS.items()}


def test_holders_keep_their_value_across_a_rebalance_and_a_composition_change(
    bank, fund, make_user, now
):
    holders = _holders(fund, make_user)
    _move_gold("0.95")
    _requote_baskets()
    before = basket_unit_value(GCU).value
    held = [_mid_value({GCU: balances_by_asset(a.uuid)[GCU]}) for a in holders]
    basket_rebalance(code=GCU)
    _change_composition(now)
    assert abs(basket_unit_value(GCU).value - before) < Decimal("1e-15")
    shares = {p.asset_code: p.share for p in basket_unit_value(GCU).components}
    assert shares == {code: Decimal(weight) for code, weight in NEW_WEIGHTS.items()}
    _assert_reserve_covers_outstanding()
    # Each holder can take the units apart: what they get is worth what they held, less at
    # most a minor unit of each component rounded down.
    for account, value in zip(holders, held, strict=True):
        basket_decompose(
            account_uuid=account.uuid, basket_code=GCU, amount=balances_by_asset(account.uuid)[GCU]
        )
        got = _mid_value({k: v for k, v in balances_by_asset(account.uuid).items() if k != GCU})
        assert value - Decimal("3") < got <= value  # a milli-ounce of gold is $2.65
    assert -_reserve()[GCU] == 0
    _assert_reserve_covers_outstanding()


def test_the_rebalance_moves_the_reserve_through_the_fx_position_in_one_entry(
    bank, fund, make_user, now
):
    _holders(fund, make_user)
    reserve_before = _reserve()
    _change_composition(now)
    fixings = BasketEvent.objects.filter(event_type="baskets.BasketQuantitiesFixed").order_by("id")
    changed, rebalanced = (f.event_data for f in list(fixings)[-2:])
    assert (changed["reason"], rebalanced["reason"]) == ("composition changed", "rebalanced")
    assert rebalanced["entry_uuid"] is None  # the same prices a moment later: nothing to move
    moves = {c["asset_code"]: c["reserve_move"] for c in changed["components"]}
    assert moves["XAU"] > 0 and moves["USD"] < 0  # more gold, fewer dollars per unit
    reserve_after = _reserve()
    for code, move in moves.items():
        assert reserve_after.get(code, 0) == reserve_before.get(code, 0) + move
    report = ledger_reconcile()
    assert report.clean, report.as_dict()


def test_a_basket_fixed_before_quantities_existed_keeps_its_value_at_its_first_rebalance(
    bank, fund, user
):
    """Stored baskets defined before this change have no quantities on their events: a unit
    holds weight / 100 of each component's unit, as it was issued; the first rebalance turns
    that into value shares at the same value per unit."""
    asset_define(code="OLD", name="Old basket", type="basket", precision=2)
    legacy = Basket.for_code("OLD")
    legacy.define(
        code="OLD",
        name="Old basket",
        type="dynamic",
        rebalance_frequency="monthly",
        components=[
            {"asset_code": "USD", "weight": "60", "min_weight": "0", "max_weight": "100"},
            {"asset_code": "XAU", "weight": "40", "min_weight": "0", "max_weight": "100"},
        ],
        reserve_account=system_account_uuid(reserve_account_code("OLD")),
        by={"type": "system", "id": "test"},
    )
    store.command(store.save)(legacy)  # as stored by the old code: no quantities recorded
    assert BasketComponent.objects.filter(basket_id="OLD", quantity="").count() == 2
    # 0.60 USD + 0.40 oz of gold per unit
    assert basket_unit_value("OLD").value == Decimal("0.6") + Decimal("0.4") * _usd("XAU")
    account = fund(user, {"USD": 60, "XAU": 400})
    basket_compose(account_uuid=account.uuid, basket_code="OLD", amount=1_00)
    value = basket_unit_value("OLD").value
    basket_rebalance(code="OLD")
    assert abs(basket_unit_value("OLD").value - value) < Decimal("1e-15")
    shares = {p.asset_code: p.share for p in basket_unit_value("OLD").components}
    assert shares == {"USD": Decimal("60.00"), "XAU": Decimal("40.00")}
    assert all(BasketComponent.objects.values_list("quantity", flat=True))
    _assert_reserve_covers_outstanding("OLD")
    basket_decompose(account_uuid=account.uuid, basket_code="OLD", amount=1_00)
    report = ledger_reconcile()
    assert report.clean, report.as_dict()


def test_read_models_equal_a_replay_after_rebalances(bank, fund, make_user, now):
    _holders(fund, make_user)
    _move_gold("1.05")
    basket_rebalance(code=GCU)
    _change_composition(now)
    components = list(BasketComponent.objects.order_by("id").values())
    history = list(BasketCompositionChange.objects.order_by("id").values())
    balances = sorted(AccountBalance.objects.values_list("account_id", "asset_code", "balance"))
    rebuild_projections("baskets")
    rebuild_projections("accounts")
    rebuilt = list(BasketComponent.objects.order_by("id").values())
    assert [{**c, "id": None} for c in rebuilt] == [{**c, "id": None} for c in components]
    assert list(BasketCompositionChange.objects.order_by("id").values()) == history
    assert sorted(AccountBalance.objects.values_list("account_id", "asset_code", "balance")) == (
        balances
    )
