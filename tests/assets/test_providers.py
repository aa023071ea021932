"""Rate providers: the demo provider's coverage and determinism, the manual one, the setting."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from django.test import override_settings

from apps.assets.apps import REFERENCE_ASSETS
from apps.assets.providers import (
    DemoRateProvider,
    ManualRateProvider,
    Quote,
    RateProvider,
    rate_provider,
)
from apps.assets.selectors import exchange_rate_get
from apps.assets.services import exchange_rates_refresh

D = Decimal
# The market assets; no basket (a basket's price is its composition: apps.baskets).
REFERENCE_CODES = [code for code, _, kind, *_ in REFERENCE_ASSETS if kind != "basket"]


def test_the_demo_provider_quotes_every_ordered_pair_of_distinct_reference_assets():
    quotes = DemoRateProvider().fetch()
    pairs = [(q.from_code, q.to_code) for q in quotes]
    assert len(pairs) == len(set(pairs))
    assert set(pairs) == set(itertools.permutations(REFERENCE_CODES, 2))
    assert len(pairs) == 8 * 7


def test_the_demo_provider_is_deterministic():
    assert DemoRateProvider().fetch() == DemoRateProvider().fetch()
    provider = DemoRateProvider()
    assert provider.fetch() == provider.fetch()
    assert DemoRateProvider(seed=7).fetch() == DemoRateProvider(seed=7).fetch()
    assert DemoRateProvider(seed=7).fetch() != DemoRateProvider().fetch()


def test_a_seeded_jitter_stays_small():
    plain = {(q.from_code, q.to_code): q.rate for q in DemoRateProvider().fetch()}
    for quote in DemoRateProvider(seed=3).fetch():
        ratio = quote.rate / plain[(quote.from_code, quote.to_code)]
        assert D("0.99") < ratio < D("1.01")


def test_demo_quotes_are_decimals_with_a_small_spread_around_the_mid():
    for quote in DemoRateProvider().fetch():
        assert isinstance(quote, Quote)
        assert quote.source == "api"
        for value in (quote.rate, quote.bid, quote.ask):
            assert type(value) is Decimal
            assert value > 0
            assert value.as_tuple().exponent >= -18
        assert quote.bid <= quote.rate <= quote.ask
        assert quote.ask - quote.bid <= quote.rate * D("0.006")


def test_demo_rates_follow_the_usd_values():
    rates = {(q.from_code, q.to_code): q.rate for q in DemoRateProvider().fetch()}
    assert rates[("EUR", "USD")] == D("1.08")
    assert rates[("USD", "EUR")] == D("0.925925925926")
    assert rates[("GBP", "USD")] == D("1.27")
    assert rates[("USD", "JPY")] == D("149.253731343")
    assert rates[("XAU", "USD")] == D("2650")
    assert rates[("BTC", "USD")] == D("97000")
    assert rates[("ETH", "BTC")] == D("0.0350515463918")


def test_the_demo_provider_quotes_no_basket():
    # The GCU's one price is the value of its composition (apps.baskets basket_unit_value),
    # never fixed demo weights: the refresh quotes it from the rates it records.
    assert "GCU" not in DemoRateProvider().usd_values()
    assert all("GCU" not in (q.from_code, q.to_code) for q in DemoRateProvider().fetch())


def test_the_manual_provider_fetches_nothing():
    assert ManualRateProvider().fetch() == []
    assert isinstance(ManualRateProvider(), RateProvider)
    assert isinstance(DemoRateProvider(), RateProvider)


def test_the_provider_comes_from_the_setting():
    assert isinstance(rate_provider(), DemoRateProvider)
    with override_settings(EXCHANGE_RATE_PROVIDER="apps.assets.providers.ManualRateProvider"):
        assert isinstance(rate_provider(), ManualRateProvider)
    assert isinstance(rate_provider("apps.assets.providers.ManualRateProvider"), ManualRateProvider)


@pytest.mark.django_db
def test_refresh_records_the_configured_providers_rates(assets):
    # The `assets` fixture defines USD EUR GBP JPY BTC XAU; quotes for the others are skipped.
    count = exchange_rates_refresh()
    assert count == 6 * 5
    assert exchange_rate_get("EUR", "USD").rate == D("1.08")
    with override_settings(EXCHANGE_RATE_PROVIDER="apps.assets.providers.ManualRateProvider"):
        assert exchange_rates_refresh() == 0


@pytest.mark.django_db
def test_refresh_takes_a_provider_object(assets):
    class OneQuote:
        name = "one"

        def fetch(self):
            return [Quote("USD", "EUR", D("0.9"), source="oracle")]

    assert exchange_rates_refresh(provider=OneQuote()) == 1
    quote = exchange_rate_get("USD", "EUR")
    assert (quote.rate, quote.source) == (D("0.9"), "oracle")
