"""Converting integer minor units: exact Decimal arithmetic, one half-even rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.assets.selectors import Conversion, asset_precisions, convert
from apps.assets.services import asset_define
from apps.core.errors import AssetNotFound, ExchangeRateNotFound, InvalidInput

pytestmark = pytest.mark.django_db

D = Decimal


def test_usd_to_jpy_respects_both_precisions(record_rate):
    record_rate("USD", "JPY", "149.87")
    # 12.34 USD * 149.87 = 1849.3958 JPY -> 1849 (JPY has no minor unit)
    assert convert(1234, "USD", "JPY") == Conversion(
        from_code="USD", to_code="JPY", amount=1234, converted_amount=1849, rate=D("149.87")
    )


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("150.5", 150),  # 1.00 USD -> 150.5 JPY: a tie, rounds to the even 150 (half-up: 151)
        ("149.5", 150),  # 149.5 -> the even 150 (half-down: 149)
        ("150.5000000001", 151),  # just above the tie
        ("150.4999999999", 150),  # just below
    ],
)
def test_usd_to_jpy_rounds_half_even_exactly_at_the_tie(record_rate, rate, expected):
    record_rate("USD", "JPY", rate)
    assert convert(100, "USD", "JPY").converted_amount == expected


@pytest.mark.parametrize(
    ("rate", "amount", "expected"),
    [
        ("0.0000105", 1, 10),  # 0.01 USD -> 10.5 satoshi -> 10
        ("0.0000115", 1, 12),  # 11.5 satoshi -> 12
        ("0.0000105", 3, 32),  # 31.5 satoshi -> 32
        ("0.0000103125", 1000, 10312),  # 10 USD -> 10312.5 satoshi -> 10312
    ],
)
def test_usd_to_btc_rounds_satoshis_half_even(record_rate, rate, amount, expected):
    record_rate("USD", "BTC", rate)
    assert convert(amount, "USD", "BTC").converted_amount == expected


@pytest.mark.parametrize(
    ("rate", "amount", "expected"),
    [
        ("0.025", 1, 2),  # 1 JPY -> 2.5 cents -> 2
        ("0.035", 1, 4),  # 3.5 cents -> 4
        ("0.005", 1, 0),  # 0.5 cent -> 0
        ("0.0067", 1000, 670),  # 1000 JPY -> 6.70 USD exactly
        ("0.0066666667", 3, 2),  # 2.00000001 cents -> 2
    ],
)
def test_jpy_to_usd_rounds_cents_half_even(record_rate, rate, amount, expected):
    record_rate("JPY", "USD", rate)
    assert convert(amount, "JPY", "USD").converted_amount == expected


def test_an_inverse_rate_converts_with_the_derived_rate(record_rate):
    record_rate("GBP", "USD", "1.25")
    conversion = convert(10000, "USD", "GBP")  # 100.00 USD at 0.8
    assert (conversion.converted_amount, conversion.rate) == (8000, D("0.8"))


def test_a_cross_rate_converts_through_usd(record_rate):
    record_rate("EUR", "USD", "1.08")
    record_rate("BTC", "USD", "100000")
    # 1.00 EUR = 1.08 USD = 0.0000108 BTC = 1080 satoshi
    assert convert(100, "EUR", "BTC").converted_amount == 1080


def test_same_asset_converts_to_itself(assets):
    assert convert(12345, "EUR", "EUR") == Conversion("EUR", "EUR", 12345, 12345, D(1))


def test_huge_amounts_are_exact(record_rate):
    record_rate("USD", "JPY", "149.8765432109")
    amount = 10**40 + 1
    # exact: (10**40 + 1) / 100 * 149.8765432109 = 1.498765432109e41 + 1.498765432109 -> ...
    expected = (amount * 1498765432109) // (100 * 10**10)
    remainder = (amount * 1498765432109) % (100 * 10**10)
    assert remainder * 2 != 100 * 10**10  # not a tie, so half-even is plain rounding
    expected += remainder * 2 > 100 * 10**10
    assert convert(amount, "USD", "JPY").converted_amount == expected


def test_negative_amounts_round_symmetrically(record_rate):
    record_rate("USD", "JPY", "150.5")
    assert convert(-100, "USD", "JPY").converted_amount == -150


@pytest.mark.parametrize("amount", [1.5, 100.0, D("100"), "100", True, None])
def test_only_integer_amounts_are_converted(record_rate, amount):
    record_rate("USD", "JPY", "150")
    with pytest.raises(InvalidInput) as caught:
        convert(amount, "USD", "JPY")
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
    assert convert(100, "CHF", "USD").converted_amount == 112
