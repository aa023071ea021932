"""Exchange-rate providers behind one interface.

A provider only fetches quotes; `services.exchange_rates_refresh` records them, so every rate,
whatever its source, becomes an event through the same checks. The setting
`EXCHANGE_RATE_PROVIDER` names the provider class (dotted path) the scheduled refresh uses.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Protocol, runtime_checkable

from django.conf import settings
from django.utils.module_loading import import_string

from apps.assets.models import RATE_PLACES


@dataclass(frozen=True)
class Quote:
    """One unit of `from_code` is worth `rate` units of `to_code` (major units, not minor)."""

    from_code: str
    to_code: str
    rate: Decimal
    bid: Decimal | None = None
    ask: Decimal | None = None
    source: str = "api"
    valid_at: datetime | None = None  # None: when it is recorded
    expires_at: datetime | None = None


@runtime_checkable
class RateProvider(Protocol):
    name: str

    def fetch(self) -> list[Quote]: ...


class ManualRateProvider:
    """Rates typed in by staff through `exchange_rate_record(source="manual")`; nothing to fetch."""

    name = "manual"

    def fetch(self) -> list[Quote]:
        return []


# The value of one unit of each reference asset in USD (XAU: one troy ounce).
REFERENCE_USD_VALUES: dict[str, Decimal] = {
    "USD": Decimal("1"),
    "EUR": Decimal("1.08"),
    "GBP": Decimal("1.27"),
    "CHF": Decimal("1.12"),
    "JPY": Decimal("0.0067"),
    "XAU": Decimal("2650"),
    "BTC": Decimal("97000"),
    "ETH": Decimal("3400"),
}
# Half of the bid/ask spread, as a fraction of the mid, by the kind of asset; a pair takes the
# wider of its two assets.
_HALF_SPREADS: dict[str, Decimal] = {
    "USD": Decimal("0.0005"),
    "EUR": Decimal("0.0005"),
    "GBP": Decimal("0.0005"),
    "CHF": Decimal("0.0005"),
    "JPY": Decimal("0.0005"),
    "XAU": Decimal("0.001"),
    "BTC": Decimal("0.0025"),
    "ETH": Decimal("0.0025"),
}
_SIGNIFICANT_DIGITS = 12
_PLACES = Decimal(1).scaleb(-RATE_PLACES)


def _storable(value: Decimal) -> Decimal:
    """A quoted price: 12 significant digits, then the rate column's decimal places."""
    with localcontext() as ctx:
        ctx.prec = _SIGNIFICANT_DIGITS
        ctx.rounding = ROUND_HALF_EVEN
        value = +value
    with localcontext() as ctx:
        ctx.prec = 60
        return value.quantize(_PLACES, rounding=ROUND_HALF_EVEN)


class DemoRateProvider:
    """Realistic, deterministic rates for every ordered pair of the reference market assets.

    No basket: a basket's price is the value of its composition (apps.baskets'
    basket_unit_value), quoted by the refresh from the rates it records (basket_quotes).

    The same call returns the same quotes, so tests and demos are repeatable. With a `seed`, each
    USD value moves by a small deterministic jitter (at most 0.25%), e.g. to simulate a market.
    """

    name = "demo"
    codes: tuple[str, ...] = ("USD", "EUR", "GBP", "CHF", "JPY", "XAU", "BTC", "ETH")

    def __init__(self, seed: int | None = None):
        self.seed = seed

    def usd_values(self) -> dict[str, Decimal]:
        values = dict(REFERENCE_USD_VALUES)
        if self.seed is not None:
            for code in values:
                if code != "USD":
                    step = random.Random(f"{self.seed}:{code}").randrange(-25, 26)
                    values[code] = values[code] * (1 + Decimal(step).scaleb(-4))
        return values

    def fetch(self) -> list[Quote]:
        values = self.usd_values()
        quotes = []
        with localcontext() as ctx:
            ctx.prec = 40
            for from_code in self.codes:
                for to_code in self.codes:
                    if from_code == to_code:
                        continue
                    mid = values[from_code] / values[to_code]
                    half = max(_HALF_SPREADS[from_code], _HALF_SPREADS[to_code])
                    quotes.append(
                        Quote(
                            from_code=from_code,
                            to_code=to_code,
                            rate=_storable(mid),
                            bid=_storable(mid * (1 - half)),
                            ask=_storable(mid * (1 + half)),
                            source="api",
                        )
                    )
        return quotes


def rate_provider(path: str | None = None) -> RateProvider:
    """The provider named by `path`, else by the EXCHANGE_RATE_PROVIDER setting."""
    dotted = path or settings.EXCHANGE_RATE_PROVIDER
    provider = import_string(dotted)
    return provider() if isinstance(provider, type) else provider
