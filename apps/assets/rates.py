"""Pure arithmetic of quotes: the customer's sides around a mid, inversion, crossing, and the
search for a profitable cycle among the rates in force. No ORM, no settings, no clock.

Every derived rate is rounded to DERIVED_RATE_DIGITS significant digits, the mid half-even, the
bid towards zero and the ask away from it: a derived quote never pays a customer more than the
exact arithmetic would, so crossing or inverting can never create value.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext
from itertools import pairwise

from apps.core.errors import DomainError

# Rates derived by inversion or through a pivot keep this many significant digits.
# 15: what every backend stores and reads back exactly (SQLite reads decimals through a double).
DERIVED_RATE_DIGITS = 15
# Two directions recorded together may multiply to at most 1 + this (their own rounding).
RECIPROCAL_TOLERANCE = Decimal("1e-9")
_ONE = Decimal(1)


class ExchangeRateArbitrage(DomainError):
    code = "EXCHANGE_RATE_ARBITRAGE"
    default_message = (
        "These rates would let a customer convert round a cycle of assets and end with more "
        "than they started with."
    )


@dataclass(frozen=True)
class Sides:
    """One direction's quote: `mid` for valuation, `bid` what a customer converting gets."""

    mid: Decimal
    bid: Decimal
    ask: Decimal


def _rounded(value: Decimal, rounding: str) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = DERIVED_RATE_DIGITS
        ctx.rounding = rounding
        return (+value).normalize()


def _exact(fn):
    with localcontext() as ctx:
        ctx.prec = 3 * DERIVED_RATE_DIGITS
        return fn()


def customer_sides(
    mid: Decimal, bid: Decimal | None, ask: Decimal | None, half_spread: Decimal
) -> Sides:
    """The bank's quote around `mid`: at least `half_spread` (a fraction) on each side; a recorded
    bid or ask that is wider than that is kept."""
    floor_bid = _rounded(_exact(lambda: mid * (_ONE - half_spread)), ROUND_FLOOR)
    floor_ask = _rounded(_exact(lambda: mid * (_ONE + half_spread)), ROUND_CEILING)
    return Sides(
        mid=mid,
        bid=floor_bid if bid is None else min(bid, floor_bid),
        ask=floor_ask if ask is None else max(ask, floor_ask),
    )


def inverse(sides: Sides) -> Sides:
    """The reverse direction: who buys at the bid sells at the ask."""
    return Sides(
        mid=_rounded(_exact(lambda: _ONE / sides.mid), ROUND_HALF_EVEN),
        bid=_rounded(_exact(lambda: _ONE / sides.ask), ROUND_FLOOR),
        ask=_rounded(_exact(lambda: _ONE / sides.bid), ROUND_CEILING),
    )


def chained(first: Sides, second: Sides) -> Sides:
    """Converting through a pivot: the legs' sides multiplied."""
    return Sides(
        mid=_rounded(_exact(lambda: first.mid * second.mid), ROUND_HALF_EVEN),
        bid=_rounded(_exact(lambda: first.bid * second.bid), ROUND_FLOOR),
        ask=_rounded(_exact(lambda: first.ask * second.ask), ROUND_CEILING),
    )


def refuse_reciprocal_gain(from_code: str, to_code: str, rate: Decimal, reverse: Decimal) -> None:
    """Two directions recorded together: there and back at the mids must not gain."""
    product = _exact(lambda: rate * reverse)
    if product > _ONE + RECIPROCAL_TOLERANCE:
        raise ExchangeRateArbitrage(
            details={
                "cycle": [from_code, to_code, from_code],
                "product": format(product.normalize(), "f"),
            }
        )


def profitable_cycle(bids: dict[tuple[str, str], Decimal]) -> tuple[list[str], Decimal] | None:
    """A cycle of conversions whose bids multiply to more than 1, or None.

    `bids` maps (from, to) to the bid of every direction in force. Floyd-Warshall on products:
    best[i][j] is the most a unit of i can become in j. It stops at the first pivot k through
    which some i returns to itself with a gain; the paths used until then have no gaining cycle,
    so they are simple and the cycle reported is a real sequence of conversions.
    """
    codes = sorted({code for pair in bids for code in pair})
    best: dict[tuple[str, str], Decimal] = dict(bids)
    via: dict[tuple[str, str], str | None] = {pair: None for pair in bids}

    def path(i: str, j: str) -> list[str]:
        k = via[(i, j)]
        return [i, j] if k is None else path(i, k)[:-1] + path(k, j)

    with localcontext() as ctx:
        ctx.prec = 3 * DERIVED_RATE_DIGITS
        ctx.rounding = ROUND_FLOOR
        for k in codes:
            for i in codes:
                there, back = best.get((i, k)), best.get((k, i))
                if i != k and there is not None and back is not None and there * back > _ONE:
                    cycle = path(i, k) + path(k, i)[1:]
                    product = _ONE
                    for step in pairwise(cycle):
                        product *= bids[step]
                    return cycle, product
            for i in codes:
                if i == k or (i, k) not in best:
                    continue
                for j in codes:
                    if j in (i, k) or (k, j) not in best:
                        continue
                    candidate = best[(i, k)] * best[(k, j)]
                    if candidate > best.get((i, j), Decimal(0)):
                        best[(i, j)] = candidate
                        via[(i, j)] = k
    return None


def refuse_profitable_cycles(bids: dict[tuple[str, str], Decimal]) -> None:
    found = profitable_cycle(bids)
    if found is not None:
        cycle, product = found
        product_text = format(product.normalize(), "f")
        raise ExchangeRateArbitrage(details={"cycle": cycle, "product": product_text})
