"""CPU time of one operation in this process, with an optional profile.

Run: `.venv/bin/python -m bench.cpu [OPERATION] [--profile]` (PostgreSQL on 127.0.0.1:5432 and,
for the API operations, Redis on 6379). OPERATION is one of:

- `transfer` (the default): `transfer_create` through the service layer;
- `api-transfer`: POST /api/v1/transfers with an Idempotency-Key, through Django's test client
  (the whole request: middleware, authentication, throttles, limits, serializers);
- `api-bulk`: POST /api/v1/transfers/bulk, 100 transfers, atomic;
- `api-balances`, `api-history`: GET an account's balances, the first page of its history.

The benchmarks in threads are bound by these figures: threads share one interpreter lock, so a
process cannot do more operations per second than one second divided by the CPU of one. It runs
BENCH_ROUNDS (4) rounds of BENCH_OPERATIONS (1,500; 30 for api-bulk) uniform operations among
BENCH_ACCOUNTS (200) accounts in one thread and prints the CPU and wall milliseconds per
operation, minimum and median over the rounds. `--profile` adds cProfile's top functions by
cumulative CPU time, or by their own with BENCH_PROFILE_SORT=tottime (its own overhead inflates
small, frequent calls: read its shares as hints, and the plain figure as the measure). The API
operations use bench/http.py's settings (Redis db 12, limits and throttles counted but never
refusing).

What a single process cannot show: in several processes (gunicorn's workers), an account another
process wrote since is behind in this one's state cache and is caught up from the database.
"""

from __future__ import annotations

import os
import random
import sys
import time
import uuid
from collections.abc import Callable

from bench import http as bench_http
from bench import ledger
from bench._setup import django_on_fresh_database, median

ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "200"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "4"))
OPERATIONS = os.environ.get("BENCH_OPERATIONS")


def main() -> None:
    operation = next((arg for arg in sys.argv[1:] if not arg.startswith("--")), "transfer")
    if operation.startswith("api-"):
        os.environ.update(bench_http.SERVER_ENV)
    django_on_fresh_database()
    ledger.ACCOUNTS = ACCOUNTS  # its default (1,000) is for the threaded runs
    accounts = ledger.prepare()
    one = _operation(operation, accounts)
    count = int(OPERATIONS or (30 if operation == "api-bulk" else 1500))

    def run(n: int) -> None:
        for _ in range(n):
            one()

    run(max(1, count // 5))  # warm the caches and prepared statements
    cpu, wall = [], []
    for _ in range(ROUNDS):
        began_cpu, began = time.process_time(), time.perf_counter()
        run(count)
        cpu.append((time.process_time() - began_cpu) / count * 1000)
        wall.append((time.perf_counter() - began) / count * 1000)
    print(f"{operation}: CPU per operation   min {min(cpu):.2f} ms  median {median(cpu):.2f} ms")
    print(f"{operation}: wall per operation  min {min(wall):.2f} ms  median {median(wall):.2f} ms")
    if "--profile" in sys.argv:
        _profile(lambda: run(count))


def _operation(name: str, accounts: list[uuid.UUID]) -> Callable[[], None]:
    rng = random.Random(1)
    if name == "transfer":
        from apps.payments.services import transfer_create

        pairs = ledger._pairs(accounts, hot=False, rng=rng)

        def transfer() -> None:
            source, target = next(pairs)
            transfer_create(from_account=source, to_account=target, amount=1, asset_code="USD")

        return transfer
    import redis
    from django.test import Client

    redis.Redis.from_url(bench_http.REDIS).flushdb()
    owners = bench_http.owners_create(accounts)
    client = Client()
    requests = {
        "api-transfer": bench_http.mix_request(owners, weights=[1, 0, 0]),
        "api-balances": bench_http.mix_request(owners, weights=[0, 1, 0]),
        "api-history": bench_http.mix_request(owners, weights=[0, 0, 1]),
        "api-bulk": bench_http.bulk_request(owners),
    }
    if name not in requests:
        raise SystemExit(f"unknown operation {name!r}: transfer or {', '.join(requests)}")
    next_request = requests[name]

    def request() -> None:
        label, method, path, token, body = next_request(rng)
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        if body is None:
            response = client.generic(method, path, **headers)
        else:
            headers["HTTP_IDEMPOTENCY_KEY"] = uuid.uuid4().hex
            response = client.generic(method, path, body, "application/json", **headers)
        done = bench_http._transfers_done(label, response.content)
        if response.status_code >= 300 or done is None:
            raise RuntimeError(
                f"{method} {path}: {response.status_code} {response.content[:300]!r}"
            )

    return request


def _profile(run: Callable[[], None]) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile(time.process_time)
    profiler.runcall(run)
    pstats.Stats(profiler).sort_stats(
        os.environ.get("BENCH_PROFILE_SORT", "cumulative")
    ).print_stats(60)


if __name__ == "__main__":
    main()
