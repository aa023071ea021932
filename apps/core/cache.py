"""The Redis cache backend, with a per-process fallback for when Redis does not answer.

The cache only ever holds copies (active assets, exchange-rate quotes, throttle and operation-limit
counters); the database is the truth. So a Redis outage must not become an error for the caller,
and must not make every request wait for a connect timeout. While Redis is unreachable (a refused
or timed-out connection), `FallbackRedisCache` logs one warning and serves reads and writes from an
in-process LocMemCache; it tries Redis again at most every FALLBACK_RETRY_SECONDS. When Redis
answers again it first deletes there every key this process wrote meanwhile (so an invalidation
made during the outage, such as a new exchange-rate version, is not lost to a copy Redis kept from
before it), logs that it is back, and empties the fallback.

What the fallback costs while it lasts: each process counts on its own, so throttles and operation
limits let through up to once per process what they let through in all; and an invalidation made
by another process reaches this one only when its own copy expires (every entry has a timeout).

OPTIONS besides redis-py's: FALLBACK_RETRY_SECONDS (default 5), FALLBACK_MAX_ENTRIES (default
10,000). Without a `retry` option a command is retried once at once (a pooled connection that
Redis closed in a restart reconnects), never with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

logger = logging.getLogger(__name__)

UNREACHABLE = (RedisConnectionError, RedisTimeoutError)


class _Outage:
    """Whether one Redis location is down for this process, shared by its threads' backends."""

    def __init__(self, max_dirty: int) -> None:
        self.lock = threading.Lock()
        self.down = False
        self.retry_at = 0.0
        self.dirty: set[str] = set()  # full keys written to the fallback during the outage
        self.max_dirty = max_dirty
        self.untracked = 0

    def note_written(self, keys: Iterable[str]) -> None:
        with self.lock:
            for key in keys:
                if key in self.dirty:
                    continue
                if len(self.dirty) < self.max_dirty:
                    self.dirty.add(key)
                else:
                    self.untracked += 1


_outages: dict[str, _Outage] = {}
_outages_lock = threading.Lock()


class _SharedClientRedisCacheClient(RedisCacheClient):
    """Django's client with one redis-py client per connection pool instead of one per command.

    Django builds a new `redis.Redis` for every command, and each one copies redis-py's table of
    response callbacks (a few hundred entries): that was a third of the CPU of a cached read. A
    `redis.Redis` on a connection pool may be shared, so one per pool is enough.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class FallbackRedisCache(RedisCache):
    def __init__(self, server, params):
        options = dict(params.get("OPTIONS") or {})
        self.retry_seconds = float(options.pop("FALLBACK_RETRY_SECONDS", 5))
        max_entries = int(options.pop("FALLBACK_MAX_ENTRIES", 10_000))
        options.setdefault("retry", Retry(NoBackoff(), 1))
        super().__init__(server, {**params, "OPTIONS": options})
        self._class = _SharedClientRedisCacheClient
        location = ",".join(self._servers)
        with _outages_lock:
            self._outage = _outages.setdefault(location, _Outage(max_entries))
        fallback_params: dict[str, Any] = {
            name: params[name]
            for name in ("TIMEOUT", "KEY_PREFIX", "VERSION", "KEY_FUNCTION")
            if name in params
        }
        # LocMemCache instances of one name share their storage: one fallback per process.
        fallback_params["OPTIONS"] = {"MAX_ENTRIES": max_entries}
        self._fallback = LocMemCache(f"redis-fallback:{location}", fallback_params)

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and the per-process fallback answers instead."""
        return self._outage.down

    # --- switching between Redis and the fallback --------------------------------------------

    def _redis_usable(self) -> bool:
        outage = self._outage
        if not outage.down:
            return True
        if time.monotonic() < outage.retry_at:
            return False
        with outage.lock:
            written = list(outage.dirty)
        try:
            # Deleting what was written here meanwhile also tells whether Redis answers.
            if written:
                self._cache.delete_many(written)
            else:
                self._cache.get_client(write=True).ping()
        except UNREACHABLE:
            with outage.lock:
                outage.retry_at = time.monotonic() + self.retry_seconds
            return False
        with outage.lock:
            if outage.down:
                outage.down = False
                outage.dirty.difference_update(written)
                untracked, outage.untracked = outage.untracked, 0
                self._fallback.clear()
                logger.info(
                    "cache: Redis answers again; back from the per-process fallback "
                    "(%d key(s) written meanwhile dropped from Redis%s)",
                    len(written),
                    f", {untracked} more not tracked: their Redis copies may be stale until "
                    "they expire"
                    if untracked
                    else "",
                )
        return True

    def _went_down(self, exc: Exception) -> None:
        outage = self._outage
        with outage.lock:
            outage.retry_at = time.monotonic() + self.retry_seconds
            if outage.down:
                return
            outage.down = True
        logger.warning(
            "cache: Redis is unreachable (%s: %s); serving from a per-process fallback and "
            "trying Redis again every %s s",
            type(exc).__name__,
            exc,
            self.retry_seconds,
        )

    def _run(
        self,
        redis_op: Callable[[], Any],
        fallback_op: Callable[[], Any],
        written: Iterable[str] = (),
        version: int | None = None,
    ) -> Any:
        if self._redis_usable():
            try:
                return redis_op()
            except UNREACHABLE as exc:
                self._went_down(exc)
        result = fallback_op()
        self._outage.note_written(self.make_key(key, version=version) for key in written)
        return result

    # --- the cache API -----------------------------------------------------------------------

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._run(
            lambda: super(FallbackRedisCache, self).add(key, value, timeout, version),
            lambda: self._fallback.add(key, value, timeout, version),
            [key],
            version,
        )

    def get(self, key, default=None, version=None):
        return self._run(
            lambda: super(FallbackRedisCache, self).get(key, default, version),
            lambda: self._fallback.get(key, default, version),
        )

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._run(
            lambda: super(FallbackRedisCache, self).set(key, value, timeout, version),
            lambda: self._fallback.set(key, value, timeout, version),
            [key],
            version,
        )

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._run(
            lambda: super(FallbackRedisCache, self).touch(key, timeout, version),
            lambda: self._fallback.touch(key, timeout, version),
            [key],
            version,
        )

    def delete(self, key, version=None):
        return self._run(
            lambda: super(FallbackRedisCache, self).delete(key, version),
            lambda: self._fallback.delete(key, version),
            [key],
            version,
        )

    def get_many(self, keys, version=None):
        return self._run(
            lambda: super(FallbackRedisCache, self).get_many(keys, version),
            lambda: self._fallback.get_many(keys, version),
        )

    def has_key(self, key, version=None):
        return self._run(
            lambda: super(FallbackRedisCache, self).has_key(key, version),
            lambda: self._fallback.has_key(key, version),
        )

    def incr(self, key, delta=1, version=None):
        return self._run(
            lambda: super(FallbackRedisCache, self).incr(key, delta, version),
            lambda: self._fallback.incr(key, delta, version),
            [key],
            version,
        )

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._run(
            lambda: super(FallbackRedisCache, self).set_many(data, timeout, version),
            lambda: self._fallback.set_many(data, timeout, version),
            list(data),
            version,
        )

    def delete_many(self, keys, version=None):
        keys = list(keys)
        return self._run(
            lambda: super(FallbackRedisCache, self).delete_many(keys, version),
            lambda: self._fallback.delete_many(keys, version),
            keys,
            version,
        )

    def incr_many(self, deltas: dict[str, tuple[int, int]], version=None) -> dict[str, int]:
        """`counters_add` in one round trip: INCRBY and EXPIRE per key in one pipeline."""

        def on_redis() -> dict[str, int]:
            pipeline = self._cache.get_client(write=True).pipeline(transaction=False)
            for key, (by, timeout) in deltas.items():
                full_key = self.make_and_validate_key(key, version=version)
                pipeline.incrby(full_key, by)
                pipeline.expire(full_key, timeout)
            replies = pipeline.execute()
            return dict(zip(deltas, replies[::2], strict=True))

        return self._run(
            on_redis, lambda: _incr_each(self._fallback, deltas, version), deltas, version
        )

    def clear(self):
        # Redis is never flushed later for a clear() made during an outage: that database may
        # hold more than this cache.
        return self._run(lambda: super(FallbackRedisCache, self).clear(), self._fallback.clear)


def counters_add(cache, deltas: dict[str, tuple[int, int]]) -> dict[str, int]:
    """Add `by` to each counter `key` (created at 0, living `timeout` seconds from its last
    change) and return the new values. The counters are ints Django's cache can also read.

    Counters whose key names their time window (as rate limits' do) only need the timeout to be
    cleaned up, so extending it on each change is harmless. Redis does all of them in one round
    trip; another cache one call per counter.
    """
    incr_many = getattr(cache, "incr_many", None)
    if incr_many is not None:
        return incr_many(deltas)
    return _incr_each(cache, deltas)


def _incr_each(cache, deltas: dict[str, tuple[int, int]], version=None) -> dict[str, int]:
    totals = {}
    for key, (by, timeout) in deltas.items():
        cache.add(key, 0, timeout=timeout, version=version)
        try:
            totals[key] = cache.incr(key, by, version=version)
        except ValueError:  # expired between add and incr
            cache.set(key, by, timeout=timeout, version=version)
            totals[key] = by
    return totals
