"""Money as integer minor units of one asset."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


class MoneyMismatch(TypeError):
    """Two amounts of different assets were combined."""


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An integer amount of minor units (cents, satoshis) of one asset; refuses to mix assets."""

    amount: int
    asset_code: str

    def __post_init__(self) -> None:
        # bool is an int subclass; True cents is always a bug.
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError(f"Money amount must be an int of minor units, got {self.amount!r}")
        if not self.asset_code:
            raise ValueError("Money needs an asset code")

    def _same_asset(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.asset_code != self.asset_code:
            raise MoneyMismatch(f"cannot combine {self.asset_code} with {other.asset_code}")

    def __add__(self, other: Money) -> Money:
        self._same_asset(other)
        return Money(self.amount + other.amount, self.asset_code)

    def __sub__(self, other: Money) -> Money:
        self._same_asset(other)
        return Money(self.amount - other.amount, self.asset_code)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.asset_code)

    def __lt__(self, other: Money) -> bool:
        self._same_asset(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same_asset(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same_asset(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same_asset(other)
        return self.amount >= other.amount

    def display(self, precision: int) -> str:
        return format_minor_units(self.amount, precision)

    def __str__(self) -> str:
        return f"{self.amount} {self.asset_code} (minor units)"


def format_minor_units(amount: int, precision: int) -> str:
    """10050 with precision 2 -> "100.50"; integer arithmetic, exact at any size."""
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**precision)
    if not precision:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:0{precision}d}"


def minor_units_to_decimal(amount: int, precision: int) -> Decimal:
    return Decimal(format_minor_units(amount, precision))
