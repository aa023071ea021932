"""Per-user limits on money-moving operations: counts per hour and per day, amount per hour.

Counters live in the cache (Redis in production), in buckets of the current hour and day. The
check and the count happen inside the operation, after it succeeded, so an idempotent replay
or a refused request does not use up the limit.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.exceptions import Throttled

WINDOWS = {"per_hour": 3600, "per_day": 86400}


def _key(op: str, user_key: str, window: str, seconds: int, suffix: str = "") -> str:
    return f"oplimit:{op}:{user_key}:{window}:{int(time.time() // seconds)}{suffix}"


def _bump(key: str, by: int, seconds: int) -> int:
    cache.add(key, 0, timeout=seconds)
    try:
        return cache.incr(key, by)
    except ValueError:  # expired between add and incr
        cache.set(key, by, timeout=seconds)
        return by


def operation_limit_take(*, op: str, user_key: str, asset_code: str, amount: int) -> None:
    """Count one operation; raise Throttled (429) when it would pass a configured limit."""
    limits = settings.OPERATION_LIMITS.get(op, {})
    for window, seconds in WINDOWS.items():
        limit = limits.get(window)
        if limit and _bump(_key(op, user_key, window, seconds), 1, seconds) > limit:
            raise Throttled(detail=f"At most {limit} {op} operations {window.replace('_', ' ')}.")
    cap = limits.get("amount_per_hour", {}).get(asset_code)
    if cap:
        key = _key(op, user_key, "per_hour", 3600, f":{asset_code}")
        if _bump(key, amount, 3600) > cap:
            raise Throttled(detail=f"At most {cap} {asset_code} minor units of {op} per hour.")
