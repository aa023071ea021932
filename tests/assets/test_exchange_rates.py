"""Recording exchange rates, looking them up, the cache and the deviation warning."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.assets.aggregates import rate_pair_uuid
from apps.assets.models import AssetEvent, ExchangeRate, RateDeviation
from apps.assets.selectors import RateQuote, exchange_rate_get, exchange_rate_list
from apps.assets.services import exchange_rate_deactivate, exchange_rate_record
from apps.core.errors import AssetNotFound, DomainError, ExchangeRateNotFound, InvalidInput

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)
D = Decimal


# --- recording -----------------------------------------------------------------------------------


def test_a_recorded_rate_is_an_event_and_a_read_model_row(record_rate, now):
    row = record_rate("EUR", "USD", "1.08", bid=D("1.0795"), ask=D("1.0805"), expires_in=HOUR)
    assert (row.from_asset_id, row.to_asset_id, row.rate, row.bid, row.ask) == (
        "EUR",
        "USD",
        D("1.08"),
        D("1.0795"),
        D("1.0805"),
    )
    assert (row.source, row.is_active, row.expires_at) == ("manual", True, now + HOUR)
    stored = AssetEvent.objects.get(id=row.id)
    assert stored.aggregate_uuid == rate_pair_uuid("EUR", "USD")
    assert stored.event_type == "assets.ExchangeRateRecorded"
    assert stored.event_data["rate"] == "1.080000000000000000"
    assert stored.event_data["bid"] == "1.079500000000000000"
    assert stored.event_data["source"] == "manual"


def test_rates_are_rounded_half_even_to_eighteen_places(record_rate):
    assert record_rate("EUR", "USD", "1.0000000000000000005").rate == D("1.000000000000000000")
    # The event keeps every place; SQLite's read model holds only 15 significant digits.
    row = record_rate("EUR", "USD", "1.0000000000000000015")
    assert AssetEvent.objects.get(id=row.id).event_data["rate"] == "1.000000000000000002"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rate": 1.08}, "rate"),
        ({"rate": D("0")}, "rate"),
        ({"rate": D("-1.2")}, "rate"),
        ({"rate": D("NaN")}, "rate"),
        ({"rate": "abc"}, "rate"),
        ({"rate": D("0.0000000000000000001")}, "rate"),
        ({"rate": D("1000000000000")}, "rate"),
        ({"bid": 1.07}, "bid"),
        ({"bid": D("1.09"), "ask": D("1.07")}, "bid"),
        ({"source": "guess"}, "source"),
        ({"to_code": "EUR"}, "to_code"),
        ({"valid_at": dt.datetime(2026, 1, 1)}, "valid_at"),  # naive
    ],
)
def test_invalid_rates_are_refused_with_details(assets, kwargs, field):
    arguments = {"from_code": "EUR", "to_code": "USD", "rate": D("1.08"), **kwargs}
    with pytest.raises(InvalidInput) as caught:
        exchange_rate_record(**arguments)
    assert field in caught.value.details
    assert not AssetEvent.objects.filter(event_type="assets.ExchangeRateRecorded").exists()


def test_floats_are_refused_with_a_clear_message(assets):
    with pytest.raises(InvalidInput) as caught:
        exchange_rate_record(from_code="EUR", to_code="USD", rate=1.08)
    assert "float" in caught.value.details["rate"][0]


def test_a_rate_needs_both_assets(assets):
    with pytest.raises(AssetNotFound) as caught:
        exchange_rate_record(from_code="EUR", to_code="ZZZ", rate=D("2"))
    assert caught.value.details == {"asset_code": "ZZZ"}
    with pytest.raises(AssetNotFound):
        exchange_rate_record(from_code="ZZZ", to_code="EUR", rate=D("2"))


def test_expiry_must_follow_validity(record_rate):
    with pytest.raises(InvalidInput) as caught:
        record_rate("EUR", "USD", "1.08", ago=dt.timedelta(0), expires_in=-HOUR)
    assert "expires_at" in caught.value.details


# --- lookup --------------------------------------------------------------------------------------


def test_direct_lookup(record_rate):
    row = record_rate("EUR", "USD", "1.08", bid=D("1.07"), ask=D("1.09"), expires_in=HOUR)
    quote = exchange_rate_get("EUR", "USD")
    assert isinstance(quote, RateQuote)
    assert quote == RateQuote(
        from_code="EUR",
        to_code="USD",
        rate=D("1.08"),
        bid=D("1.07"),
        ask=D("1.09"),
        source="manual",
        valid_at=row.valid_at,
        expires_at=row.expires_at,
        derivation="direct",
    )


def test_inverse_lookup_inverts_the_rate_and_swaps_bid_and_ask(record_rate):
    record_rate("GBP", "USD", "1.25", bid=D("1.24"), ask=D("1.28"))
    quote = exchange_rate_get("USD", "GBP")
    assert quote.derivation == "inverse"
    assert quote.rate == D("0.8")
    assert quote.bid == D(1) / D("1.28") == D("0.78125")
    # 1 / 1.24 at 15 significant digits, rounded up: the ask never favours the customer
    assert D(1) / D("1.24") < quote.ask < D(1) / D("1.24") + D("1e-15")
    assert quote.bid < quote.rate < quote.ask
    assert (quote.from_code, quote.to_code) == ("USD", "GBP")


def test_the_newest_rate_of_either_direction_defines_both(record_rate):
    """USD/EUR 0.95 next to an older EUR/USD 1.08 used to be quoted side by side: 0.95 * 1.08
    = 1.026, and 20 round trips turned $1,000,000 into $1,292,628."""
    record_rate("EUR", "USD", "1.08", ago=2 * HOUR)
    record_rate("USD", "EUR", "0.95", ago=HOUR)
    assert exchange_rate_get("USD", "EUR").rate == D("0.95")
    reverse = exchange_rate_get("EUR", "USD")
    assert (reverse.derivation, reverse.rate) == ("inverse", round(D(1) / D("0.95"), 14))


def test_cross_lookup_goes_through_usd(record_rate):
    record_rate("EUR", "USD", "1.08", bid=D("1.07"), ask=D("1.09"), expires_in=2 * HOUR)
    record_rate("GBP", "USD", "1.25", bid=D("1.24"), ask=D("1.28"), expires_in=HOUR)
    quote = exchange_rate_get("EUR", "GBP")
    assert quote.derivation == "cross"
    assert quote.rate == D("1.08") * D("0.8") == D("0.864")
    # bids rounded down and asks up at 28 digits: never better than the exact product
    assert D("1.07") / D("1.28") - D("1e-15") < quote.bid <= D("1.07") / D("1.28")
    assert D("1.09") / D("1.24") <= quote.ask < D("1.09") / D("1.24") + D("1e-15")
    assert quote.expires_at == ExchangeRate.objects.get(from_asset="GBP").expires_at
    reverse = exchange_rate_get("GBP", "EUR")
    assert reverse.derivation == "cross"
    assert reverse.rate == round(D("1.25") * (D(1) / D("1.08")), 14)


def test_identity_is_one_without_any_rate(assets):
    quote = exchange_rate_get("JPY", "JPY")
    assert (quote.rate, quote.bid, quote.ask, quote.derivation) == (D(1), D(1), D(1), "identity")


def test_no_rate_is_exchange_rate_not_found(record_rate):
    record_rate("EUR", "USD", "1.08")
    with pytest.raises(ExchangeRateNotFound) as caught:
        exchange_rate_get("JPY", "EUR")  # JPY has no leg to USD
    assert caught.value.code == "EXCHANGE_RATE_NOT_FOUND"
    assert caught.value.details == {"from": "JPY", "to": "EUR"}
    with pytest.raises(ExchangeRateNotFound):
        exchange_rate_get("N/A code", "USD")


def test_an_expired_rate_leaves_its_pair_without_a_rate(record_rate):
    """Time never revives an older rate: it was not checked against the rates recorded since."""
    record_rate("EUR", "USD", "1.05", ago=3 * HOUR)
    record_rate("EUR", "USD", "1.09", ago=2 * HOUR, expires_in=-HOUR)
    with pytest.raises(ExchangeRateNotFound):
        exchange_rate_get("EUR", "USD")
    assert exchange_rate_get("EUR", "USD", at=timezone.now() - 2.5 * HOUR).rate == D("1.05")
    record_rate("GBP", "USD", "1.25", ago=2 * HOUR, expires_in=-HOUR)
    with pytest.raises(ExchangeRateNotFound):
        exchange_rate_get("GBP", "USD")


def test_a_rate_not_yet_valid_is_ignored_until_its_time(record_rate, now):
    record_rate("EUR", "USD", "1.08", ago=HOUR)
    record_rate("EUR", "USD", "1.10", ago=-HOUR)
    assert exchange_rate_get("EUR", "USD").rate == D("1.08")
    assert exchange_rate_get("EUR", "USD", at=now + 2 * HOUR).rate == D("1.10")
    assert exchange_rate_get("EUR", "USD", at=now - 30 * dt.timedelta(minutes=1)).rate == D("1.08")
    with pytest.raises(ExchangeRateNotFound):
        exchange_rate_get("EUR", "USD", at=now - 2 * HOUR)


def test_an_inactive_rate_is_ignored(record_rate, django_capture_on_commit_callbacks):
    older = record_rate("EUR", "USD", "1.05", ago=2 * HOUR)
    newer = record_rate("EUR", "USD", "1.50", ago=HOUR)
    deactivated = exchange_rate_deactivate(rate_id=newer.id, reason="typo")
    assert deactivated.is_active is False
    assert exchange_rate_get("EUR", "USD").rate == D("1.05")
    with pytest.raises(DomainError) as caught:
        exchange_rate_deactivate(rate_id=newer.id)
    assert caught.value.code == "EXCHANGE_RATE_ALREADY_INACTIVE"
    with django_capture_on_commit_callbacks(execute=True):
        exchange_rate_deactivate(rate_id=older.id)
    with pytest.raises(ExchangeRateNotFound):
        exchange_rate_get("EUR", "USD")
    with pytest.raises(ExchangeRateNotFound):
        exchange_rate_deactivate(rate_id=10**9)


def test_the_newest_valid_rate_wins_whatever_the_recording_order(record_rate):
    record_rate("EUR", "USD", "1.07", ago=3 * HOUR)
    record_rate("EUR", "USD", "1.09", ago=HOUR)
    record_rate("EUR", "USD", "1.08", ago=2 * HOUR)  # recorded last, but older
    assert exchange_rate_get("EUR", "USD").rate == D("1.09")


def test_same_validity_the_last_recorded_wins(record_rate):
    record_rate("EUR", "USD", "1.07", ago=HOUR)
    record_rate("EUR", "USD", "1.08", ago=HOUR)
    assert exchange_rate_get("EUR", "USD").rate == D("1.08")


# --- the cache -----------------------------------------------------------------------------------


def test_a_new_rate_drops_the_cached_quote(record_rate, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        record_rate("EUR", "USD", "1.08", ago=2 * HOUR)
    assert exchange_rate_get("EUR", "USD").rate == D("1.08")
    with django_capture_on_commit_callbacks(execute=True):
        record_rate("EUR", "USD", "1.09", ago=HOUR)
    assert exchange_rate_get("EUR", "USD").rate == D("1.09")


def test_quotes_are_served_from_the_cache_until_a_commit_drops_it(
    record_rate, django_capture_on_commit_callbacks
):
    record_rate("EUR", "USD", "1.08", ago=2 * HOUR)
    assert exchange_rate_get("EUR", "USD").rate == D("1.08")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        record_rate("EUR", "USD", "1.09", ago=HOUR)
    # Not committed yet: other readers still get the cached quote.
    assert exchange_rate_get("EUR", "USD").rate == D("1.08")
    for callback in callbacks:
        callback()
    assert exchange_rate_get("EUR", "USD").rate == D("1.09")


def test_deactivating_a_rate_drops_the_cache(record_rate, django_capture_on_commit_callbacks):
    record_rate("EUR", "USD", "1.05", ago=2 * HOUR)
    newer = record_rate("EUR", "USD", "1.10", ago=HOUR)
    assert exchange_rate_get("EUR", "USD").rate == D("1.10")
    with django_capture_on_commit_callbacks(execute=True):
        exchange_rate_deactivate(rate_id=newer.id)
    assert exchange_rate_get("EUR", "USD").rate == D("1.05")


def test_lookups_at_a_moment_bypass_the_cache(record_rate, now):
    record_rate("EUR", "USD", "1.08", ago=2 * HOUR)
    assert exchange_rate_get("EUR", "USD").rate == D("1.08")
    record_rate("EUR", "USD", "1.09", ago=HOUR)
    assert exchange_rate_get("EUR", "USD", at=now).rate == D("1.09")


# --- the list ------------------------------------------------------------------------------------


def test_exchange_rate_list_gives_the_current_rate_of_each_pair(record_rate):
    record_rate("EUR", "USD", "1.07", ago=2 * HOUR)
    eur_usd = record_rate("EUR", "USD", "1.08", ago=HOUR, source="api")
    record_rate("EUR", "USD", "1.50", ago=-HOUR)  # not valid yet
    gbp_usd = record_rate("GBP", "USD", "1.25", ago=HOUR)
    record_rate("GBP", "EUR", "1.16", ago=HOUR, expires_in=-dt.timedelta(minutes=1))
    usd_jpy = record_rate("USD", "JPY", "150", ago=HOUR, source="api")

    def ids(**filters):
        return [r.id for r in exchange_rate_list(**filters)]

    assert ids() == [eur_usd.id, gbp_usd.id, usd_jpy.id]
    assert ids(from_code="EUR") == [eur_usd.id]
    assert ids(to_code="USD") == [eur_usd.id, gbp_usd.id]
    assert ids(source="api") == [eur_usd.id, usd_jpy.id]
    assert ids(source="manual") == [gbp_usd.id]
    assert ids(from_code="JPY") == []


# --- the band: a deviation is a warning, and the rate waits for approval --------------------------


def test_a_rate_far_from_the_24h_average_is_a_warning(record_rate, caplog):
    record_rate("EUR", "USD", "1.00", ago=2 * HOUR)
    record_rate("EUR", "USD", "1.02", ago=HOUR)
    with caplog.at_level(logging.WARNING, logger="apps.assets.services"):
        row = record_rate("EUR", "USD", "1.12")  # 0.11 / 1.01 = 10.89%
    assert (row.rate, row.status) == (D("1.12"), "pending")  # recorded, not in force
    assert exchange_rate_get("EUR", "USD").rate == D("1.02")
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    message = caplog.records[0].getMessage()
    assert "EUR/USD" in message and "10.8911" in message and "1.01" in message

    event = AssetEvent.objects.get(event_type="assets.ExchangeRateDeviationDetected")
    assert event.aggregate_uuid == rate_pair_uuid("EUR", "USD")
    assert event.event_data == {
        "from_code": "EUR",
        "to_code": "USD",
        "rate": "1.120000000000000000",
        "average": "1.010000000000000000",
        "deviation_percent": "10.8911",
    }
    deviation = RateDeviation.objects.get()
    assert deviation.id == event.id
    assert (deviation.from_asset_id, deviation.to_asset_id) == ("EUR", "USD")
    assert (deviation.rate, deviation.average_24h, deviation.deviation_percent) == (
        D("1.12"),
        D("1.01"),
        D("10.8911"),
    )


def test_a_fall_counts_as_much_as_a_rise(record_rate, caplog):
    record_rate("EUR", "USD", "1.00", ago=HOUR)
    with caplog.at_level(logging.WARNING, logger="apps.assets.services"):
        record_rate("EUR", "USD", "0.85")
    assert len(caplog.records) == 1
    assert RateDeviation.objects.get().deviation_percent == D("15")


def test_a_rate_within_ten_percent_is_no_warning(record_rate, caplog):
    record_rate("EUR", "USD", "1.00", ago=2 * HOUR)
    record_rate("EUR", "USD", "1.02", ago=HOUR)
    with caplog.at_level(logging.WARNING, logger="apps.assets.services"):
        record_rate("EUR", "USD", "1.11")  # 0.10 / 1.01 = 9.90%
        record_rate("EUR", "USD", "1.10")  # exactly 10% from 1.00 is not "more than"
    assert caplog.records == []
    assert not RateDeviation.objects.exists()
    assert not AssetEvent.objects.filter(event_type="assets.ExchangeRateDeviationDetected").exists()


def test_exactly_ten_percent_is_not_more_than_ten(record_rate, caplog):
    record_rate("EUR", "USD", "1.00", ago=HOUR)
    with caplog.at_level(logging.WARNING, logger="apps.assets.services"):
        record_rate("EUR", "USD", "1.10")
        record_rate("GBP", "USD", "1.00", ago=HOUR)
        record_rate("GBP", "USD", "1.1000000001")
    assert len(caplog.records) == 1
    assert RateDeviation.objects.get().from_asset_id == "GBP"


def test_rates_older_than_24h_and_inactive_rates_are_not_averaged(record_rate, caplog):
    record_rate("EUR", "USD", "0.90", ago=30 * HOUR)
    record_rate("EUR", "USD", "0.97", ago=3 * HOUR)  # 7.8% from 0.90: in force
    wrong = record_rate("EUR", "USD", "0.92", ago=2 * HOUR)  # 5.2% from 0.97: in force
    exchange_rate_deactivate(rate_id=wrong.id)
    record_rate("EUR", "USD", "1.03", ago=HOUR)  # 6.2% from 0.97 (the average, 0.90 is old)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="apps.assets.services"):
        # the average of 0.97 and 1.03 is 1.00: 1.10 is exactly 10% from it; with the old 0.90
        # or the withdrawn 1.06 averaged in, it would be more
        record_rate("EUR", "USD", "1.10")
    assert caplog.records == []
    assert not RateDeviation.objects.exists()


def test_the_first_rate_of_a_pair_is_no_warning(record_rate, caplog):
    with caplog.at_level(logging.WARNING, logger="apps.assets.services"):
        record_rate("BTC", "USD", "97000")
    assert caplog.records == []
