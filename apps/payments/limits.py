"""Per-user limits on money-moving operations: counts per hour and per day, amount per hour.

Counters live in the cache (Redis in production), in buckets of the current hour and day. The
count happens inside the operation, after it succeeded, so an idempotent replay or a refused
request does not use up the limit. The operation is counted first and taken back if that passed a
limit: each addition is atomic, so two requests at once can't both slip under a limit (they may
both be refused near it, which is the safe side).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.exceptions import Throttled

from apps.core.cache import counters_add

WINDOWS = {"per_hour": 3600, "per_day": 86400}


def _key(op: str, user_key: str, window: str, seconds: int, suffix: str = "") -> str:
    return f"oplimit:{op}:{user_key}:{window}:{int(time.time() // seconds)}{suffix}"


def operation_limit_take(
    *, op: str, user_key: str, asset_code: str, amount: int, count: int = 1
) -> None:
    """Count `count` operations moving `amount` in all, or raise Throttled (429) without counting
    them when they would pass a configured limit (a refused operation must not use up the quota).
    """
    limits = settings.OPERATION_LIMITS.get(op, {})
    counters = [
        (_key(op, user_key, window, seconds), count, seconds, limits.get(window), window)
        for window, seconds in WINDOWS.items()
    ]
    cap = limits.get("amount_per_hour", {}).get(asset_code)
    amount_key = _key(op, user_key, "per_hour", 3600, f":{asset_code}")
    counters.append((amount_key, amount, 3600, cap, f"{asset_code} minor units per hour"))
    limited = {
        key: (by, seconds, limit, label) for key, by, seconds, limit, label in counters if limit
    }
    deltas = {key: (by, seconds) for key, (by, seconds, _, _) in limited.items()}
    if not deltas:
        return
    totals = counters_add(cache, deltas)
    for key, (_by, _seconds, limit, label) in limited.items():
        if totals[key] > limit:
            counters_add(cache, {key: (-by, seconds) for key, (by, seconds) in deltas.items()})
            raise Throttled(detail=f"At most {limit} {op} ({label.replace('_', ' ')}).")
