"""Per-user limits on money-moving operations, so that splitting a movement gains nothing.

Each operation kind (`transfer`, `conversion`, `withdrawal`, `deposit`, `basket` for compose and
decompose) has its own entry in OPERATION_LIMITS: counts per hour and per day (`per_hour`,
`per_day`), amounts per hour per asset in its minor units (`amount_per_hour`), and the value
moved in US cents at mid rates per hour and per day (`usd_amount_per_hour`,
`usd_amount_per_day`). The entry `total` is one more budget that every kind but `deposit`
(money coming in) also counts against, with the same keys: converting USD to EUR and then
transferring the EUR spends it twice, so moving money by another kind, or by a chain of kinds,
does not multiply what a user may move. A missing key, or null, is no limit; 0 allows nothing.

Valuation: what an operation moved is worth its value at the mid rate, rounded up to whole cents,
and at least a cent per amount; so a thousand tiny operations count at least a thousand cents,
never nothing.
An amount whose asset has no rate to USD is refused (EXCHANGE_RATE_NOT_FOUND, 422) while a USD
budget applies to the operation: it can't be valued, and counting it as 0 would let it through.

Counters live in the cache (Redis in production; the per-process fallback during an outage), in
buckets of the current hour and day (UTC). An operation adds to all its counters in one atomic
round trip (apps.core.cache.counters_add) and takes it all back if that passed any limit, so two
requests at once can't both slip under a limit (they may both be refused near it: the safe side).

The callers count inside the operation's transaction, after the movement and before it commits:
a refusal raises, which rolls the movement back, so a refused operation moves nothing and counts
nothing; an idempotent replay runs nothing, so it counts nothing either. (If the commit itself
failed after the count, the count would stay until its window ends: the safe side again.)
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.exceptions import Throttled

from apps.assets.selectors import value_at_mid
from apps.core.cache import counters_add

WINDOWS = {"per_hour": 3600, "per_day": 86400}
USD_WINDOWS = {"usd_amount_per_hour": 3600, "usd_amount_per_day": 86400}
TOTAL = "total"
OUTSIDE_TOTAL = frozenset({"deposit"})
VALUATION_CURRENCY = "USD"


@dataclass(frozen=True)
class _Counter:
    key: str
    by: int
    seconds: int
    limit: int
    label: str  # what the limit counts, for the refusal's message


def _key(op: str, user_key: str, window: str, seconds: int, suffix: str = "", now=None) -> str:
    now = time.time() if now is None else now
    return f"oplimit:{op}:{user_key}:{window}:{int(now // seconds)}{suffix}"


def operation_limit_take(
    *, op: str, user_key: str, asset_code: str, amount: int, count: int = 1
) -> None:
    """Count `count` operations moving `amount` of `asset_code` in all, or raise Throttled (429)
    without counting them when they would pass a configured limit."""
    operation_limit_take_many(op=op, user_key=user_key, moved=[(asset_code, amount)], count=count)


def operation_limit_take_many(
    *, op: str, user_key: str, moved: Sequence[tuple[str, int]], count: int | None = None
) -> None:
    """Count operations of kind `op` that moved each (asset_code, amount) of `moved` (`count`
    operations, by default one per item), all at once or none: raise Throttled (429) without
    counting anything when one limit of `op` or of the total would be passed."""
    count = len(moved) if count is None else count
    if count <= 0 and not moved:
        return
    now = time.time()
    scopes = {scope: _config(scope) for scope in _scopes(op)}
    usd_value = _usd_value(moved) if _needs_valuation(scopes.values()) else 0
    per_asset: dict[str, int] = defaultdict(int)
    for asset_code, amount in moved:
        per_asset[asset_code] += amount
    counters = [
        counter
        for scope, config in scopes.items()
        for counter in _scope_counters(
            scope, config, user_key, count=count, per_asset=per_asset, usd=usd_value, now=now
        )
    ]
    _add_or_refuse(counters, now)


def _scopes(op: str) -> list[str]:
    return [op] if op in OUTSIDE_TOTAL else [op, TOTAL]


def _config(scope: str) -> dict[str, Any]:
    config = settings.OPERATION_LIMITS.get(scope) or {}
    if not isinstance(config, dict):
        raise ImproperlyConfigured(f"OPERATION_LIMITS[{scope!r}] must be an object")
    return config


def _limit(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ImproperlyConfigured(f"OPERATION_LIMITS {name} must be a whole number >= 0 or null")
    return value


def _needs_valuation(configs) -> bool:
    return any(config.get(window) is not None for config in configs for window in USD_WINDOWS)


def _usd_value(moved: Sequence[tuple[str, int]]) -> int:
    """US cents at the mid: the amounts of each asset valued together (one rate lookup per
    asset, even for a bulk of a hundred) and rounded up, and at least a cent per amount. No rate
    to USD raises EXCHANGE_RATE_NOT_FOUND."""
    totals: dict[str, int] = defaultdict(int)
    items: dict[str, int] = defaultdict(int)
    for asset_code, amount in moved:
        if amount > 0:
            totals[asset_code] += amount
            items[asset_code] += 1
    return sum(
        max(items[code], value_at_mid(total, code, VALUATION_CURRENCY, rounding=ROUND_CEILING))
        for code, total in totals.items()
    )


def _scope_counters(
    scope: str,
    config: dict[str, Any],
    user_key: str,
    *,
    count: int,
    per_asset: dict[str, int],
    usd: int,
    now: float,
) -> Iterator[_Counter]:
    what = "operations of all kinds" if scope == TOTAL else scope
    for window, seconds in WINDOWS.items():
        limit = _limit(config.get(window), f"{scope}.{window}")
        if limit is not None and count > 0:
            key = _key(scope, user_key, window, seconds, now=now)
            yield _Counter(key, count, seconds, limit, f"{what} ({window.replace('_', ' ')})")
    for window, seconds in USD_WINDOWS.items():
        limit = _limit(config.get(window), f"{scope}.{window}")
        if limit is not None:
            key = _key(scope, user_key, window, seconds, now=now)
            period = window.removeprefix("usd_amount_")
            label = f"{what} (US cents {period.replace('_', ' ')}, at mid rates)"
            yield _Counter(key, usd, seconds, limit, label)
    caps = config.get("amount_per_hour") or {}
    for asset_code, amount in sorted(per_asset.items()):
        limit = _limit(caps.get(asset_code), f"{scope}.amount_per_hour.{asset_code}")
        if limit is not None:
            key = _key(scope, user_key, "per_hour", 3600, f":{asset_code}", now=now)
            label = f"{what} ({asset_code} minor units per hour)"
            yield _Counter(key, amount, 3600, limit, label)


def _add_or_refuse(counters: list[_Counter], now: float) -> None:
    if not counters:
        return
    # One more than the limit is enough to refuse: a huge amount then never overflows a counter.
    deltas = {c.key: (min(c.by, c.limit + 1), c.seconds) for c in counters}
    totals = counters_add(cache, deltas)
    passed = [c for c in counters if totals[c.key] > c.limit]
    if not passed:
        return
    counters_add(cache, {key: (-by, seconds) for key, (by, seconds) in deltas.items()})
    first = passed[0]
    raise Throttled(
        wait=first.seconds - now % first.seconds,  # until its window ends
        detail=f"At most {first.limit} {first.label}.",
    )
