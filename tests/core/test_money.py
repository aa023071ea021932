import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.core.money import Money, MoneyMismatch, format_minor_units


def test_money_adds_and_compares_within_one_asset():
    assert Money(150, "USD") + Money(50, "USD") == Money(200, "USD")
    assert Money(150, "USD") - Money(200, "USD") == Money(-50, "USD")
    assert Money(1, "USD") < Money(2, "USD")
    assert -Money(5, "EUR") == Money(-5, "EUR")


def test_money_refuses_to_mix_assets():
    with pytest.raises(MoneyMismatch):
        Money(1, "USD") + Money(1, "EUR")
    with pytest.raises(MoneyMismatch):
        Money(1, "USD") < Money(1, "EUR")  # noqa: B015


@pytest.mark.parametrize("amount", [1.0, "1", True, None])
def test_money_refuses_anything_but_integer_minor_units(amount):
    with pytest.raises(TypeError):
        Money(amount, "USD")


@pytest.mark.parametrize(
    ("amount", "precision", "shown"),
    [(10050, 2, "100.50"), (-5, 2, "-0.05"), (7, 0, "7"), (1, 8, "0.00000001"), (0, 3, "0.000")],
)
def test_format_minor_units_is_exact(amount, precision, shown):
    assert format_minor_units(amount, precision) == shown
    assert Money(amount, "X").display(precision) == shown


@given(st.integers(), st.integers(min_value=0, max_value=18))
def test_format_minor_units_is_exact_at_any_size(amount, precision):
    shown = format_minor_units(amount, precision)
    assert int(shown.replace(".", "")) == amount
    assert len(shown.partition(".")[2]) == precision
