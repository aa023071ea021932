"""Conversions never pay the customer, and the rates in force cannot be arbitraged or
fat-fingered: each test replays an attack that worked on the old code."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.apps import apps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.assets.aggregates import ExchangeRateNotPending, RateDecisionNeedsStaff
from apps.assets.apps import REFERENCE_ASSETS
from apps.assets.models import ExchangeRate
from apps.assets.providers import DemoRateProvider, Quote
from apps.assets.rates import ExchangeRateArbitrage
from apps.assets.selectors import convert, exchange_rate_get, value_at_mid
from apps.assets.services import (
    exchange_rate_approve,
    exchange_rate_deactivate,
    exchange_rate_record,
    exchange_rate_reject,
    exchange_rates_refresh,
)
from apps.core.context import command_context
from apps.core.errors import MakerCannotDecide

pytestmark = pytest.mark.django_db

D = Decimal
HOUR = dt.timedelta(hours=1)
ALICE = {"type": "staff", "id": "alice"}
BOB = {"type": "staff", "id": "bob"}
# The market assets: a basket's rates come from its composition (tests/baskets/test_one_price.py).
DEMO_CODES = [code for code, _, kind, *_ in REFERENCE_ASSETS if kind != "basket"]


@pytest.fixture
def demo_rates(db):
    """The reference assets and the demo provider's rates, as `load_reference_data` seeds them."""
    apps.get_app_config("assets").seed_reference_data()
    assert ExchangeRate.objects.count() == len(DEMO_CODES) * (len(DEMO_CODES) - 1)


def usd_value_at_mid(amount: int, code: str) -> Decimal:
    """The exact value at the mid, in dollars (no rounding to hide a gain in)."""
    precision = dict((c, p) for c, _, _, p, _ in REFERENCE_ASSETS)[code]
    return D(amount).scaleb(-precision) * exchange_rate_get(code, "USD").rate


def round_trip(amount: int, start: str, via: str) -> int:
    there = convert(amount, start, via).converted_amount
    return convert(there, via, start).converted_amount


# --- rounding never pays the customer ------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "via", "amount"),
    [
        ("USD", "XAU", 133),  # 1.33 USD -> 1 milli-ounce -> 2.65 USD on the old code
        ("USD", "XAU", 1_000_000),
        ("JPY", "USD", 1),  # 1 yen -> 1 cent -> 1 yen
        ("USD", "JPY", 1),
        ("USD", "BTC", 1),
        ("BTC", "USD", 1),
        ("GBP", "USD", 1),
        ("USD", "GBP", 133),
    ],
)
def test_fifty_round_trips_never_gain(demo_rates, start, via, amount):
    """50 round trips of 133 cents through gold made $67.33 on the old code."""
    balance = amount
    for _ in range(50):
        back = round_trip(balance, start, via)
        assert back <= balance
        assert back < balance or back == 0  # each trip pays the spread twice
        balance = back
    assert balance < amount or balance == 0


def test_one_yen_buys_nothing_but_is_worth_a_cent(demo_rates):
    assert convert(1, "JPY", "USD").converted_amount == 0
    assert value_at_mid(1, "JPY", "USD") == 1  # 0.67 cent at the mid, for valuation only


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    start=st.sampled_from(DEMO_CODES),
    amount=st.integers(min_value=0, max_value=10**15),
    chain=st.lists(st.sampled_from(DEMO_CODES), min_size=1, max_size=6),
)
def test_no_chain_of_conversions_ends_with_more_mid_value(demo_rates, start, amount, chain):
    code, balance = start, amount
    before = usd_value_at_mid(amount, start)
    for target in chain:
        balance = convert(balance, code, target).converted_amount
        code = target
    assert usd_value_at_mid(balance, code) <= before


# --- a rate defines its reverse; directions recorded together must not gain --------------------


def test_a_rate_recorded_alone_defines_its_reverse(record_rate):
    """USD/EUR 0.95 next to a standing EUR/USD 1.08: 20 round trips turned $1,000,000 into
    $1,292,628. Now the new rate also defines EUR/USD, and each round trip loses the spread."""
    record_rate("EUR", "USD", "1.08", ago=2 * HOUR)
    record_rate("USD", "EUR", "0.95", ago=HOUR)
    balance = 100_000_000
    for _ in range(20):
        balance = round_trip(balance, "USD", "EUR")
    assert balance < 100_000_000
    assert convert(10000, "EUR", "USD").rate <= 1 / D("0.95")


def test_two_directions_recorded_together_that_gain_are_refused(record_rate):
    record_rate("EUR", "USD", "1.08", ago=HOUR)
    with pytest.raises(ExchangeRateArbitrage) as caught:
        exchange_rate_record(from_code="USD", to_code="EUR", rate=D("0.95"), reverse_rate=D("1.08"))
    assert caught.value.code == "EXCHANGE_RATE_ARBITRAGE"
    assert caught.value.details["cycle"] == ["USD", "EUR", "USD"]
    assert 1 < D(caught.value.details["product"]) < D("0.95") * D("1.08")  # at the bids
    assert ExchangeRate.objects.count() == 1


def test_two_directions_recorded_together_are_both_used(record_rate):
    record_rate("EUR", "USD", "1.08", ago=HOUR)
    row = exchange_rate_record(
        from_code="USD", to_code="EUR", rate=D("0.92"), reverse_rate=D("1.07")
    )
    assert (row.status, row.reverse_rate) == ("accepted", D("1.07"))
    quote = exchange_rate_get("EUR", "USD")
    assert (quote.derivation, quote.rate) == ("paired", D("1.07"))
    assert round_trip(1_000_000, "USD", "EUR") < 1_000_000


# --- no cycle of rates in force gains ------------------------------------------------------------


def test_a_rate_closing_a_gaining_cycle_through_three_assets_is_refused(record_rate):
    record_rate("USD", "EUR", "0.92")
    record_rate("EUR", "GBP", "0.85")
    # 1 USD -> 0.92 EUR -> 0.782 GBP -> 1.0557 USD at the mids: more than the three spreads
    with pytest.raises(ExchangeRateArbitrage) as caught:
        record_rate("GBP", "USD", "1.35")
    cycle = caught.value.details["cycle"]
    assert cycle[0] == cycle[-1] and set(cycle) == {"USD", "EUR", "GBP"}
    assert D(caught.value.details["product"]) > 1
    assert not ExchangeRate.objects.filter(from_asset="GBP").exists()

    record_rate("GBP", "USD", "1.28")  # 0.92 * 0.85 * 1.28 = 1.001: the spreads eat it
    start = 1_000_000
    balance = start
    for target, source in (("EUR", "USD"), ("GBP", "EUR"), ("USD", "GBP")):
        balance = convert(balance, source, target).converted_amount
    assert balance < start


def test_withdrawing_a_rate_may_not_revive_one_that_gains(record_rate):
    record_rate("USD", "EUR", "0.85", ago=3 * HOUR)
    correct = record_rate("USD", "EUR", "0.92", ago=2 * HOUR)
    record_rate("EUR", "GBP", "0.85", ago=HOUR)
    record_rate("GBP", "USD", "1.28", ago=HOUR)
    with pytest.raises(ExchangeRateArbitrage):
        exchange_rate_deactivate(rate_id=correct.id, reason="back to the old rate")
    assert ExchangeRate.objects.get(id=correct.id).is_active


def test_a_provider_batch_that_gains_is_refused_whole(record_rate):
    record_rate("USD", "EUR", "0.92")
    record_rate("EUR", "GBP", "0.85")

    class SkewedProvider:
        name = "skewed"

        def fetch(self):
            return [Quote("GBP", "USD", D("1.35")), Quote("USD", "JPY", D("150"))]

    with pytest.raises(ExchangeRateArbitrage):
        exchange_rates_refresh(provider=SkewedProvider())
    assert ExchangeRate.objects.count() == 2


def test_the_demo_provider_moving_every_rate_at_once_is_accepted(
    demo_rates, django_capture_on_commit_callbacks
):
    """A market move checked one quote at a time would meet the stale others: the batch is
    checked as a whole."""
    before = exchange_rate_get("BTC", "USD").rate
    with django_capture_on_commit_callbacks(execute=True):
        assert exchange_rates_refresh(provider=DemoRateProvider(seed=7)) == 8 * 7
    assert exchange_rate_get("BTC", "USD").rate != before


# --- the band: a fat-fingered rate waits for a second staff member ------------------------------


@pytest.fixture
def gbp_rate(record_rate):
    with command_context(actor=ALICE):
        return record_rate("USD", "GBP", "0.787", ago=HOUR)


def test_a_rate_far_from_its_reference_waits_for_another_staff_member(
    gbp_rate, django_capture_on_commit_callbacks
):
    """USD/GBP 7.5 (852% off its 24-hour average) went live from the console on save."""
    with command_context(actor=ALICE):
        row = exchange_rate_record(from_code="USD", to_code="GBP", rate=D("7.5"))
    assert (row.status, row.recorded_by) == ("pending", "staff:alice")
    assert convert(10000, "USD", "GBP").converted_amount < 7870  # still at 0.787

    with command_context(actor=ALICE), pytest.raises(MakerCannotDecide):
        exchange_rate_approve(rate_id=row.id)
    shell = {"type": "command", "id": "shell"}
    with command_context(actor=shell), pytest.raises(RateDecisionNeedsStaff):
        exchange_rate_approve(rate_id=row.id)
    assert ExchangeRate.objects.get(id=row.id).status == "pending"

    with command_context(actor=BOB), django_capture_on_commit_callbacks(execute=True):
        approved = exchange_rate_approve(rate_id=row.id)
    assert (approved.status, approved.decided_by) == ("accepted", "staff:bob")
    assert approved.valid_at >= row.valid_at
    assert convert(10000, "USD", "GBP").converted_amount == int(D(75000) * D("0.9975"))
    with command_context(actor=BOB), pytest.raises(ExchangeRateNotPending):
        exchange_rate_approve(rate_id=row.id)


def test_a_rejected_rate_is_never_used(gbp_rate):
    with command_context(actor=ALICE):
        row = exchange_rate_record(from_code="USD", to_code="GBP", rate=D("7.5"))
    with command_context(actor=BOB):
        rejected = exchange_rate_reject(rate_id=row.id, reason="a typo for 0.75")
        assert rejected.status == "rejected"
        with pytest.raises(ExchangeRateNotPending):
            exchange_rate_approve(rate_id=row.id)
    assert exchange_rate_get("USD", "GBP").rate == D("0.787")


def test_the_reference_counts_the_reverse_direction(gbp_rate):
    """A first GBP/USD rate is not the first rate between the two: USD/GBP defines it."""
    row = exchange_rate_record(from_code="GBP", to_code="USD", rate=D("0.133"))
    assert row.status == "pending"
    assert exchange_rate_get("GBP", "USD").rate == round(1 / D("0.787"), 14)


def test_a_provider_quote_beyond_the_band_waits_too(gbp_rate):
    class FatFingeredProvider:
        name = "fat"

        def fetch(self):
            return [Quote("USD", "GBP", D("7.5"))]

    assert exchange_rates_refresh(provider=FatFingeredProvider()) == 1
    assert ExchangeRate.objects.get(rate=D("7.5")).status == "pending"
    assert exchange_rate_get("USD", "GBP").rate == D("0.787")


def test_the_band_is_configurable(gbp_rate, settings):
    settings.EXCHANGE_RATE_BAND_PCT = D("1")
    row = exchange_rate_record(from_code="USD", to_code="GBP", rate=D("0.80"))  # 1.65% off
    assert row.status == "pending"


def test_approval_rechecks_the_cycles_in_force_then(gbp_rate, record_rate):
    with command_context(actor=ALICE):
        row = exchange_rate_record(from_code="USD", to_code="GBP", rate=D("7.5"))
    assert row.status == "pending"  # USD and GBP alone: no cycle yet
    record_rate("USD", "EUR", "0.92")
    record_rate("EUR", "GBP", "0.85")  # 0.92 * 0.85 = 0.782, next to 0.787
    with command_context(actor=BOB), pytest.raises(ExchangeRateArbitrage):
        exchange_rate_approve(rate_id=row.id)
    assert ExchangeRate.objects.get(id=row.id).status == "pending"
