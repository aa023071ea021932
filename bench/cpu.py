"""CPU time of one transfer through the service layer, in this process, with an optional profile.

Run: `.venv/bin/python -m bench.cpu` (PostgreSQL on 127.0.0.1:5432), or with `--profile` to print
cProfile's top functions by CPU time (cProfile's own overhead inflates small, frequent calls, so
read its shares as hints, and this script's plain figure as the measure).

The benchmarks in threads are bound by this figure: threads share one interpreter lock, so a
process cannot do more transfers per second than one second divided by it. It runs BENCH_ROUNDS
(4) rounds of BENCH_TRANSFERS (1,500) uniform transfers among BENCH_ACCOUNTS (200) accounts in one
thread and prints the CPU and wall milliseconds per transfer, minimum and median over the rounds.
"""

from __future__ import annotations

import os
import random
import sys
import time

from bench._setup import django_on_fresh_database, median

ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "200"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "4"))
TRANSFERS = int(os.environ.get("BENCH_TRANSFERS", "1500"))


def main() -> None:
    django_on_fresh_database()
    from apps.payments.services import transfer_create
    from bench import ledger

    ledger.ACCOUNTS = ACCOUNTS  # its default (1,000) is for the threaded runs
    accounts = ledger.prepare()
    pairs = ledger._pairs(accounts, hot=False, rng=random.Random(1))

    def transfers(count: int) -> None:
        for _ in range(count):
            source, target = next(pairs)
            transfer_create(from_account=source, to_account=target, amount=1, asset_code="USD")

    transfers(300)  # warm the caches and prepared statements
    cpu, wall = [], []
    for _ in range(ROUNDS):
        began_cpu, began = time.process_time(), time.perf_counter()
        transfers(TRANSFERS)
        cpu.append((time.process_time() - began_cpu) / TRANSFERS * 1000)
        wall.append((time.perf_counter() - began) / TRANSFERS * 1000)
    print(f"CPU per transfer   min {min(cpu):.2f} ms  median {median(cpu):.2f} ms")
    print(f"wall per transfer  min {min(wall):.2f} ms  median {median(wall):.2f} ms")
    if "--profile" in sys.argv:
        _profile(lambda: transfers(TRANSFERS))


def _profile(run) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile(time.process_time)
    profiler.runcall(run)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)


if __name__ == "__main__":
    main()
