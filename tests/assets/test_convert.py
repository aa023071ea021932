"""Converting integer minor units: the customer's quote is the bid (mid less the bank's spread),
computed exactly and rounded down once; valuation is at the mid, rounded half-even."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

import pytest

from apps.assets.selectors import Conversion, asset_precisions, convert, value_at_mid
from apps.assets.services import asset_define
from apps.core.errors import AssetNotFound, ExchangeRateNotFound, InvalidInput

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def no_spread(settings):
    """Rounding tests read best with the bid equal to the mid."""
    settings.EXCHANGE_SPREAD_BPS = 0


def floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def test_usd_to_jpy_respects_both_precisions(no_spread, record_rate):
    record_rate("USD", "JPY", "149.87")
    # 12.34 USD * 149.87 = 1849.3958 JPY -> 1849 (JPY has no minor unit)
    assert convert(1234, "USD", "JPY") == Conversion(
        from_code="USD", to_code="JPY", amount=1234, converted_amount=1849, rate=D("149.87")
    )


@pytest.mark.parametrize(
    ("pair", "rate", "amount", "expected"),
    [
        (("USD", "JPY"), "150.5", 100, 150),  # 150.5 JPY: half-even would give 150, half-up 151
        (("USD", "JPY"), "151.5", 100, 151),  # half-even would give the even 152
        (("USD", "JPY"), "150.9999999999", 100, 150),  # just below a whole yen
        (("USD", "BTC"), "0.0000115", 1, 11),  # 0.01 USD -> 11.5 satoshi -> 11
        (("USD", "BTC"), "0.0000105", 3, 31),  # 31.5 satoshi -> 31
        (("JPY", "USD"), "0.035", 1, 3),  # 1 JPY -> 3.5 cents -> 3
        (("JPY", "USD"), "0.0066666667", 3, 2),  # 2.00000001 cents -> 2
        (("JPY", "USD"), "0.0067", 1000, 670),  # 1000 JPY -> 6.70 USD exactly
    ],
)
def test_conversions_round_down_never_to_the_nearest(
    no_spread, record_rate, pair, rate, amount, expected
):
    record_rate(*pair, rate)
    assert convert(amount, *pair).converted_amount == expected


def test_one_yen_buys_no_cent(record_rate):
    """The old half-even rounding paid 1 cent for 1 yen (0.67 cents): a thousand such
    conversions gained $10. It is worth 1 cent at the mid, but buys nothing."""
    record_rate("USD", "JPY", "149.25")  # 1 JPY = 0.0067 USD
    assert convert(1, "JPY", "USD").converted_amount == 0
    assert value_at_mid(1, "JPY", "USD") == 1  # 0.67 cents, half-even


def test_the_customer_converts_at_the_bid_half_the_spread_below_the_mid(record_rate, settings):
    assert settings.EXCHANGE_SPREAD_BPS == 50  # the default: 25 bps each side of the mid
    record_rate("USD", "JPY", "150")
    conversion = convert(10000, "USD", "JPY")  # 100.00 USD
    assert conversion.rate == D("150") * (1 - D("0.0025")) == D("149.625")
    assert conversion.converted_amount == 14962  # 14962.5 rounded down
    assert value_at_mid(10000, "USD", "JPY") == 15000


def test_the_spread_is_configurable(record_rate, settings):
    settings.EXCHANGE_SPREAD_BPS = 200
    record_rate("USD", "JPY", "150")
    assert convert(10000, "USD", "JPY").rate == D("150") * D("0.99")


def test_a_recorded_bid_wider_than_the_spread_is_kept(record_rate):
    record_rate("EUR", "USD", "1.08", bid=D("1.07"), ask=D("1.09"))
    conversion = convert(100, "EUR", "USD")
    assert (conversion.converted_amount, conversion.rate) == (107, D("1.07"))


def test_a_recorded_bid_narrower_than_the_spread_is_widened(record_rate):
    record_rate("EUR", "USD", "1.08", bid=D("1.0799"), ask=D("1.0801"))
    assert convert(10000, "EUR", "USD").rate == D("1.08") * D("0.9975")


def test_the_reverse_direction_converts_at_the_inverse_of_the_ask(record_rate):
    record_rate("GBP", "USD", "1.25")
    conversion = convert(10000, "USD", "GBP")  # 100.00 USD
    ask = D("1.25") * D("1.0025")
    assert conversion.rate <= 1 / ask
    assert conversion.converted_amount == floor(10000 / ask)  # 7980, not 8000 at the mid
    assert value_at_mid(10000, "USD", "GBP") == 8000


def test_a_cross_rate_multiplies_the_bids_of_both_legs(record_rate):
    record_rate("EUR", "USD", "1.08")
    record_rate("BTC", "USD", "100000")
    # 1.00 EUR at the EUR/USD bid, then USD into BTC at the inverse of the BTC/USD ask
    exact = D("1.08") * D("0.9975") / (D("100000") * D("1.0025")) * 10**8
    assert convert(100, "EUR", "BTC").converted_amount == floor(exact) == 1074
    assert value_at_mid(100, "EUR", "BTC") == 1080


def test_same_asset_converts_to_itself(assets):
    assert convert(12345, "EUR", "EUR") == Conversion("EUR", "EUR", 12345, 12345, D(1))
    assert value_at_mid(12345, "EUR", "EUR") == 12345


def test_huge_amounts_are_exact(no_spread, record_rate):
    record_rate("USD", "JPY", "149.8765432109")
    amount = 10**40 + 1
    expected = (amount * 1498765432109) // (100 * 10**10)
    assert convert(amount, "USD", "JPY").converted_amount == expected


def test_negative_amounts_are_refused(record_rate):
    record_rate("USD", "JPY", "150.5")
    with pytest.raises(InvalidInput) as caught:
        convert(-100, "USD", "JPY")
    assert caught.value.details == {"amount": ["must not be negative"]}


@pytest.mark.parametrize("amount", [1.5, 100.0, D("100"), "100", True, None])
def test_only_integer_amounts_are_converted(record_rate, amount):
    record_rate("USD", "JPY", "150")
    for function in (convert, value_at_mid):
        with pytest.raises(InvalidInput) as caught:
            function(amount, "USD", "JPY")
        assert "amount" in caught.value.details


def test_unknown_assets_and_missing_rates(record_rate):
    record_rate("USD", "JPY", "150")
    with pytest.raises(AssetNotFound) as caught:
        convert(100, "USD", "XXX")
    assert caught.value.details == {"asset_code": "XXX"}
    with pytest.raises(ExchangeRateNotFound):
        convert(100, "XAU", "EUR")


def test_an_asset_defined_after_the_precisions_were_cached_converts(record_rate):
    assert "CHF" not in asset_precisions()  # cached now; the commit that would drop it never runs
    asset_define(code="CHF", name="Swiss Franc", type="fiat", precision=2)
    record_rate("CHF", "USD", "1.12")
    assert convert(100, "CHF", "USD").converted_amount == floor(D("112") * D("0.9975"))
