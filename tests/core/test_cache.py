"""The cache's counters and its Redis client, on whichever cache the pass runs with.

The SQLite pass runs these on the in-process cache; the PostgreSQL pass on Redis (REDIS_URL).
"""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache
from rest_framework.exceptions import Throttled

from apps.core.cache import FallbackRedisCache, counters_add
from apps.payments.limits import operation_limit_take


def test_counters_add_returns_the_new_totals_which_the_cache_also_reads():
    assert counters_add(cache, {"c:a": (5, 60), "c:b": (1, 60)}) == {"c:a": 5, "c:b": 1}
    assert counters_add(cache, {"c:a": (5, 60), "c:b": (1, 60)}) == {"c:a": 10, "c:b": 2}
    assert counters_add(cache, {"c:a": (-3, 60)}) == {"c:a": 7}
    assert cache.get("c:a") == 7
    assert cache.get_many(["c:a", "c:b"]) == {"c:a": 7, "c:b": 2}


def test_a_counter_adds_beyond_32_bits():
    big = 3 * 10**12
    counters_add(cache, {"c:big": (big, 60)})
    assert counters_add(cache, {"c:big": (big, 60)}) == {"c:big": 2 * big}


def test_the_operation_limit_admits_exactly_the_limit_from_many_threads(settings):
    """Each addition is atomic and a refusal takes its count back: 40 attempts at once against a
    limit of 10 per hour let exactly 10 through, and the counter ends at 10."""
    settings.OPERATION_LIMITS = {
        "transfer": {"per_hour": 10, "per_day": 1_000, "amount_per_hour": {"USD": 10**15}}
    }
    admitted, refused = [], []
    barrier = threading.Barrier(8)

    def attempts() -> None:
        barrier.wait()
        for _ in range(5):
            try:
                operation_limit_take(op="transfer", user_key="u1", asset_code="USD", amount=7)
                admitted.append(1)
            except Throttled:
                refused.append(1)

    threads = [threading.Thread(target=attempts) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(admitted), len(refused)) == (10, 30)
    totals = counters_add(cache, {key: (0, 3600) for key in _limit_keys("u1")})
    assert sorted(totals.values()) == [10, 10, 70]  # per hour, per day, USD amount per hour


def _limit_keys(user_key: str) -> list[str]:
    from apps.payments.limits import WINDOWS, _key

    keys = [_key("transfer", user_key, window, seconds) for window, seconds in WINDOWS.items()]
    return [*keys, _key("transfer", user_key, "per_hour", 3600, ":USD")]


def test_a_refusal_counts_nothing(settings):
    settings.OPERATION_LIMITS = {
        "transfer": {"per_hour": 100, "per_day": 100, "amount_per_hour": {"USD": 1_000}}
    }
    operation_limit_take(op="transfer", user_key="u2", asset_code="USD", amount=600)
    with pytest.raises(Throttled, match="USD minor units per hour"):
        operation_limit_take(op="transfer", user_key="u2", asset_code="USD", amount=600)
    operation_limit_take(op="transfer", user_key="u2", asset_code="USD", amount=400)
    totals = counters_add(cache, {key: (0, 3600) for key in _limit_keys("u2")})
    assert sorted(totals.values()) == [2, 2, 1_000]


def test_the_redis_backend_keeps_one_redis_client_per_connection_pool():
    """Django's own client builds a redis.Redis per command (copying redis-py's callback table
    each time); ours reuses it. Building clients does not connect, so no server is needed."""
    backend = FallbackRedisCache("redis://127.0.0.1:6379/15", {})
    client = backend._cache.get_client(write=True)
    assert backend._cache.get_client(write=False) is client
    assert client.connection_pool is backend._cache._get_connection_pool(write=True)
