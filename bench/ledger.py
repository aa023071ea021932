"""Ledger throughput: transfers through the service layer against a raw-SQL baseline.

Run: `make bench` (or `.venv/bin/python -m bench.ledger`) with PostgreSQL on 127.0.0.1:5432.
For 1, 2, 4 and 8 worker threads among 1,000 accounts, uniform (random pairs) and with one hot
account (every transfer credits the same account), it runs transfers for a fixed time through
`apps.payments.services.transfer_create`, and in the same process a baseline that does the same
writes per transfer with psycopg in one transaction: lock the two balance rows in order, update
them, insert the two events and the transfer row. It prints transfers/s and p50/p99 latency of
each and the ratio service / raw. Each case runs ROUNDS times; the medians are reported.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid

from bench._setup import Measurement, django_on_fresh_database, median

ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "1000"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
THREADS = [int(n) for n in os.environ.get("BENCH_THREADS", "1,2,4,8").split(",")]
FUNDING = 10**12

RAW_SCHEMA = """
DROP TABLE IF EXISTS raw_transfer, raw_event, raw_balance;
CREATE TABLE raw_balance (
    account uuid NOT NULL, asset varchar(10) NOT NULL, balance bigint NOT NULL,
    version integer NOT NULL, PRIMARY KEY (account, asset));
CREATE TABLE raw_event (
    id bigserial PRIMARY KEY, aggregate_uuid uuid NOT NULL, aggregate_version integer NOT NULL,
    event_type varchar(100) NOT NULL, event_version smallint NOT NULL, event_data jsonb NOT NULL,
    meta_data jsonb NOT NULL, hash varchar(128) NOT NULL, created_at timestamptz DEFAULT now(),
    UNIQUE (aggregate_uuid, aggregate_version));
CREATE TABLE raw_transfer (
    uuid uuid PRIMARY KEY, from_account uuid NOT NULL, to_account uuid NOT NULL,
    amount bigint NOT NULL, created_at timestamptz DEFAULT now());
"""


def _pairs(accounts: list[uuid.UUID], hot: bool, rng: random.Random):
    while True:
        if hot:
            yield rng.choice(accounts[1:]), accounts[0]
        else:
            a, b = rng.sample(accounts, 2)
            yield a, b


def _run_threads(name: str, threads: int, work) -> Measurement:
    """Each thread calls work(thread_index, deadline) -> list of latencies."""
    latencies: list[float] = []
    lock = threading.Lock()
    start_barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def runner(index: int) -> None:
        try:
            start_barrier.wait()
            mine = work(index, time.perf_counter() + SECONDS)
            with lock:
                latencies.extend(mine)
        except BaseException as exc:  # reported after the run; a benchmark must not hide errors
            errors.append(exc)

    pool = [threading.Thread(target=runner, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    start_barrier.wait()
    began = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return Measurement(name, len(latencies), elapsed, latencies)


def service_case(accounts, threads: int, hot: bool) -> Measurement:
    from django.db import connections

    from apps.payments.services import transfer_create

    def work(index: int, deadline: float) -> list[float]:
        rng = random.Random(index)
        pairs = _pairs(accounts, hot, rng)
        done = []
        try:
            while time.perf_counter() < deadline:
                source, target = next(pairs)
                began = time.perf_counter()
                transfer_create(from_account=source, to_account=target, amount=1, asset_code="USD")
                done.append(time.perf_counter() - began)
        finally:
            connections.close_all()
        return done

    label = f"service {'hot' if hot else 'uniform'} x{threads}"
    return _run_threads(label, threads, work)


def raw_case(accounts, threads: int, hot: bool) -> Measurement:
    import psycopg

    def work(index: int, deadline: float) -> list[float]:
        rng = random.Random(index)
        pairs = _pairs(accounts, hot, rng)
        done = []
        with psycopg.connect(os.environ["DATABASE_URL"]) as conn:  # set by _setup
            while time.perf_counter() < deadline:
                source, target = next(pairs)
                began = time.perf_counter()
                _raw_transfer(conn, source, target)
                done.append(time.perf_counter() - began)
        return done

    label = f"raw SQL {'hot' if hot else 'uniform'} x{threads}"
    return _run_threads(label, threads, work)


def _raw_transfer(conn, source: uuid.UUID, target: uuid.UUID) -> None:
    entry = uuid.uuid4()
    meta = json.dumps({"actor": {"type": "system", "id": "bench"}})
    with conn.transaction(), conn.cursor() as cur:
        rows = cur.execute(
            "SELECT account, balance, version FROM raw_balance WHERE asset = 'USD' "
            "AND account = ANY(%s) ORDER BY account FOR UPDATE",
            ([source, target],),
        ).fetchall()
        state = {account: (balance, version) for account, balance, version in rows}
        for account, delta, kind in ((source, -1, "MoneySubtracted"), (target, 1, "MoneyAdded")):
            balance, version = state[account]
            cur.execute(
                "UPDATE raw_balance SET balance = %s, version = %s "
                "WHERE account = %s AND asset = 'USD'",
                (balance + delta, version + 1, account),
            )
            data = json.dumps(
                {"asset_code": "USD", "amount": 1, "balance_after": balance + delta,
                 "entry_uuid": str(entry), "kind": "transfer"}
            )  # fmt: skip
            cur.execute(
                "INSERT INTO raw_event (aggregate_uuid, aggregate_version, event_type, "
                "event_version, event_data, meta_data, hash) VALUES (%s, %s, %s, 1, %s, %s, %s)",
                (account, version + 1, f"accounts.{kind}", data, meta, "0" * 128),
            )
        cur.execute(
            "INSERT INTO raw_transfer (uuid, from_account, to_account, amount) "
            "VALUES (%s, %s, %s, 1)",
            (entry, source, target),
        )


def prepare() -> list[uuid.UUID]:
    from django.db import connection

    from apps.accounts.services import account_open
    from apps.payments.services import deposit_create

    accounts = []
    for n in range(ACCOUNTS):
        account = account_open(name=f"bench {n}", owner_uuid=None)
        deposit_create(account_uuid=account.uuid, amount=FUNDING, asset_code="USD")
        accounts.append(account.uuid)
    with connection.cursor() as cursor:
        cursor.execute(RAW_SCHEMA)
        cursor.executemany(
            "INSERT INTO raw_balance (account, asset, balance, version) VALUES (%s, 'USD', %s, 2)",
            [(a, FUNDING) for a in accounts],
        )
    return accounts


def main() -> None:
    django_on_fresh_database()
    print(f"preparing {ACCOUNTS} funded accounts ...", flush=True)
    accounts = prepare()
    print(f"{SECONDS:.0f} s per run, {ROUNDS} rounds, medians\n")
    summary = []
    for hot in (False, True):
        for threads in THREADS:
            service_runs, raw_runs = [], []
            for _ in range(ROUNDS):
                raw_runs.append(raw_case(accounts, threads, hot))
                service_runs.append(service_case(accounts, threads, hot))
            service = sorted(service_runs, key=lambda m: m.per_second)[len(service_runs) // 2]
            raw = sorted(raw_runs, key=lambda m: m.per_second)[len(raw_runs) // 2]
            ratio = median(
                [s.per_second / r.per_second for s, r in zip(service_runs, raw_runs, strict=True)]
            )
            print(raw.line())
            print(service.line())
            print(f"{'ratio service / raw':<38} {ratio:>9.2f}\n", flush=True)
            summary.append((hot, threads, service, raw, ratio))
    print("case       threads  service/s   raw/s  ratio  service p99 ms")
    for hot, threads, service, raw, ratio in summary:
        print(
            f"{'hot' if hot else 'uniform':<10} {threads:>7} {service.per_second:>10.1f}"
            f" {raw.per_second:>7.1f} {ratio:>6.2f} {service.percentile(99):>14.2f}"
        )
    _check_ledger()


def _check_ledger() -> None:
    from apps.accounts.reconciliation import ledger_reconcile

    report = ledger_reconcile(replay=False)
    print(f"\nledger after the benchmark: {'clean' if report.clean else report.discrepancies[:5]}")


if __name__ == "__main__":
    main()
