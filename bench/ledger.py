"""Ledger throughput: transfers through the service layer against a raw-SQL baseline.

Run: `make bench` (or `.venv/bin/python -m bench.ledger`) with PostgreSQL on 127.0.0.1:5432.
For 1, 2, 4 and 8 worker threads among 1,000 accounts, uniform (random pairs) and with one hot
account (every transfer credits the same account), it runs transfers for a fixed time through
`apps.payments.services.transfer_create`, and in the same process a baseline that does the same
writes per transfer with psycopg in one transaction: lock the two balance rows in order, update
them, insert the two events and the transfer row. A second baseline writes, in plain SQL, every
row the service writes for a transfer (its stream heads, its own event, the turnovers: see
`_same_rows_transfer`), into copies of the service's tables with their indexes, so the two
ratios part what the Python layer costs from what the design writes. It prints transfers/s and
p50/p99 latency of each and the ratios service / baseline. Each case runs ROUNDS times; the
medians are reported.

With each case it prints the CPU per transfer of the whole machine (this process, PostgreSQL, the
kernel) and of this process alone. A machine that is fully busy does one second of CPU per
second per core, so baseline / service CPU per transfer is the most the service can reach
against a baseline on cores it shares with PostgreSQL, however its workers are arranged.
BENCH_WORKERS=processes runs every worker (service and baselines alike) as a forked process
instead of a thread, as gunicorn and Celery run theirs; it turns the connection pool off, since
a pool does not survive a fork.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import threading
import time
import uuid

from bench._setup import Measurement, cpu_clock, django_on_fresh_database, median

ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "1000"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
THREADS = [int(n) for n in os.environ.get("BENCH_THREADS", "1,2,4,8").split(",")]
WORKERS = os.environ.get("BENCH_WORKERS", "threads")
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


def _run_workers(name: str, workers: int, work) -> Measurement:
    """Each worker calls work(worker_index, deadline) -> list of latencies; the workers are
    threads of this process, or forked processes with BENCH_WORKERS=processes."""
    run = _run_processes if WORKERS == "processes" else _run_threads
    began_cpu = cpu_clock()
    latencies, elapsed = run(workers, work)
    process_cpu, machine_cpu = (
        end - begin for end, begin in zip(cpu_clock(), began_cpu, strict=True)
    )
    return Measurement(name, len(latencies), elapsed, latencies, process_cpu, machine_cpu)


def _run_threads(threads: int, work) -> tuple[list[float], float]:
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
    return latencies, elapsed


def _run_processes(processes: int, work) -> tuple[list[float], float]:
    """Like gunicorn's or Celery's workers: no interpreter lock shared between them. Forked, so
    `work` needs no pickling; the parent's connections are closed first, since a child must not
    talk on a socket it shares with its parent."""
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    start_barrier = context.Barrier(processes + 1)
    pipes = [context.Pipe(duplex=False) for _ in range(processes)]

    def runner(index: int, sender) -> None:
        try:
            start_barrier.wait()
            sender.send(work(index, time.perf_counter() + SECONDS))
        except BaseException as exc:  # sent to the parent, which raises it
            sender.send(RuntimeError(f"worker {index}: {exc!r}"))

    pool = [context.Process(target=runner, args=(i, sender)) for i, (_, sender) in enumerate(pipes)]
    for process in pool:
        process.start()
    for _, sender in pipes:
        sender.close()  # the child's copy stays open: a child that dies unheard is an EOFError
    start_barrier.wait(timeout=60)  # a child that dies before it breaks the barrier
    began = time.perf_counter()
    results = [receiver.recv() for receiver, _ in pipes]
    elapsed = time.perf_counter() - began
    for process in pool:
        process.join()  # reaped, so their CPU counts in the parent's children times
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [latency for result in results for latency in result], elapsed


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
    return _run_workers(label, threads, work)


def raw_case(accounts, threads: int, hot: bool) -> Measurement:
    label = f"raw SQL {'hot' if hot else 'uniform'} x{threads}"
    return _psycopg_case(label, accounts, threads, hot, _raw_transfer)


def same_rows_case(accounts, threads: int, hot: bool) -> Measurement:
    label = f"raw SQL, service's rows {'hot' if hot else 'uniform'} x{threads}"
    return _psycopg_case(label, accounts, threads, hot, _same_rows_transfer)


def _psycopg_case(label: str, accounts, threads: int, hot: bool, transfer) -> Measurement:
    import psycopg

    def work(index: int, deadline: float) -> list[float]:
        rng = random.Random(index)
        pairs = _pairs(accounts, hot, rng)
        done = []
        with psycopg.connect(os.environ["DATABASE_URL"]) as conn:  # set by _setup
            while time.perf_counter() < deadline:
                source, target = next(pairs)
                began = time.perf_counter()
                transfer(conn, source, target)
                done.append(time.perf_counter() - began)
        return done

    return _run_workers(label, threads, work)


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


# The service's tables, copied with their indexes and constraints, for the second baseline.
SAME_ROWS_TABLES = {
    "rs_stream": "core_aggregatestream",
    "rs_account_event": "accounts_accountevent",
    "rs_payment_event": "payments_paymentevent",
    "rs_balance": "accounts_accountbalance",
    "rs_turnover": "accounts_turnover",
    "rs_transfer": "payments_transfer",
}
# Copied with their rows; those with an `id` have its identity moved past the copied ones.
SAME_ROWS_SEEDED = {"rs_stream": False, "rs_balance": True, "rs_turnover": True}


def _same_rows_transfer(conn, source: uuid.UUID, target: uuid.UUID) -> None:
    """The rows the service writes for a transfer, in plain SQL, one statement each: lock the
    two accounts' stream heads (reading their balances with them), insert the transfer's stream
    head and advance the two accounts', insert the two account events and the transfer's own
    event, upsert the two balances and the two turnovers, insert the transfer. The hashes are
    placeholders, as in the first baseline."""
    entry = uuid.uuid4()
    actor = {"type": "system", "id": "bench"}
    meta = json.dumps({"actor": actor})
    with conn.transaction(), conn.cursor() as cur:
        rows = cur.execute(
            "SELECT s.uuid, s.version, b.balance FROM rs_stream s JOIN rs_balance b "
            "ON b.account_id = s.uuid AND b.asset_code = 'USD' "
            "WHERE s.uuid = ANY(%s) ORDER BY s.uuid FOR UPDATE OF s",
            ([source, target],),
        ).fetchall()
        state = {account: (version, balance) for account, version, balance in rows}
        cur.execute(
            "INSERT INTO rs_stream (uuid, aggregate_type, version, last_hash, updated_at) "
            "VALUES (%s, 'payments.Transfer', 1, %s, now())",
            (entry, "0" * 128),
        )
        events, balances, turnovers = [], [], []
        for account, other, delta, kind in (
            (source, target, -1, "MoneySubtracted"),
            (target, source, 1, "MoneyAdded"),
        ):
            version, balance = state[account]
            cur.execute(
                "UPDATE rs_stream SET version = %s, last_hash = %s, updated_at = now() "
                "WHERE uuid = %s AND version = %s",
                (version + 1, "0" * 128, account, version),
            )
            data = json.dumps(
                {"asset_code": "USD", "amount": 1, "balance_after": balance + delta,
                 "entry_uuid": str(entry), "kind": "transfer", "counterparty": str(other),
                 "reference": "", "rate": None}
            )  # fmt: skip
            events += [account, version + 1, f"accounts.{kind}", data, meta, "0" * 128]
            balances += [account, balance + delta, version + 1]
            turnovers += [account, max(delta, 0), max(-delta, 0)]
        cur.execute(
            "INSERT INTO rs_account_event (aggregate_uuid, aggregate_version, event_type, "
            "event_version, event_data, meta_data, hash, created_at) VALUES "
            "(%s, %s, %s, 1, %s, %s, %s, now()), (%s, %s, %s, 1, %s, %s, %s, now())",
            events,
        )
        data = json.dumps(
            {"kind": "transfer", "from_account": str(source), "to_account": str(target),
             "from_asset": "USD", "to_asset": "USD", "amount": 1, "to_amount": 1, "rate": None,
             "reference": "", "actor": actor}
        )  # fmt: skip
        cur.execute(
            "INSERT INTO rs_payment_event (aggregate_uuid, aggregate_version, event_type, "
            "event_version, event_data, meta_data, hash, created_at) "
            "VALUES (%s, 1, 'payments.TransferCompleted', 1, %s, %s, %s, now())",
            (entry, data, meta, "0" * 128),
        )
        cur.execute(
            "INSERT INTO rs_balance (account_id, asset_code, balance, version) "
            "VALUES (%s, 'USD', %s, %s), (%s, 'USD', %s, %s) "
            "ON CONFLICT (account_id, asset_code) DO UPDATE "
            "SET balance = excluded.balance, version = excluded.version",
            balances,
        )
        cur.execute(
            "INSERT INTO rs_turnover (account_id, asset_code, day, credit, debit, count) "
            "VALUES (%s, 'USD', current_date, %s, %s, 1), (%s, 'USD', current_date, %s, %s, 1) "
            "ON CONFLICT (account_id, asset_code, day) DO UPDATE "
            "SET credit = rs_turnover.credit + excluded.credit, "
            "debit = rs_turnover.debit + excluded.debit, count = rs_turnover.count + 1",
            turnovers,
        )
        cur.execute(
            "INSERT INTO rs_transfer (uuid, kind, status, from_account_id, to_account_id, "
            "from_asset, to_asset, amount, to_amount, rate, reference, actor, created_at, "
            "reversal_reason, reversal_forced) VALUES (%s, 'transfer', 'completed', %s, %s, "
            "'USD', 'USD', 1, 1, NULL, '', %s, now(), '', false)",
            (entry, source, target, json.dumps(actor)),
        )


def _same_rows_schema(cursor) -> None:
    for copy, original in SAME_ROWS_TABLES.items():
        cursor.execute(f"DROP TABLE IF EXISTS {copy}")
        cursor.execute(f"CREATE TABLE {copy} (LIKE {original} INCLUDING ALL)")
        if copy in SAME_ROWS_SEEDED:
            cursor.execute(f"INSERT INTO {copy} SELECT * FROM {original}")
        if SAME_ROWS_SEEDED.get(copy):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{copy}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {copy}), false)"
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
        _same_rows_schema(cursor)
        cursor.executemany(
            "INSERT INTO raw_balance (account, asset, balance, version) VALUES (%s, 'USD', %s, 2)",
            [(a, FUNDING) for a in accounts],
        )
    return accounts


def main() -> None:
    if WORKERS not in ("threads", "processes"):
        raise SystemExit(f"BENCH_WORKERS={WORKERS!r}: threads or processes")
    if WORKERS == "processes":
        os.environ["DATABASE_POOL"] = "false"  # a pool's sockets and threads do not survive a fork
    django_on_fresh_database()
    print(f"preparing {ACCOUNTS} funded accounts ...", flush=True)
    accounts = prepare()
    print(f"{SECONDS:.0f} s per run, {ROUNDS} rounds, medians, workers are {WORKERS}\n")
    summary = []
    for hot in (False, True):
        for threads in THREADS:
            runs: dict[str, list[Measurement]] = {"raw": [], "same": [], "service": []}
            for _ in range(ROUNDS):
                runs["raw"].append(raw_case(accounts, threads, hot))
                runs["same"].append(same_rows_case(accounts, threads, hot))
                runs["service"].append(service_case(accounts, threads, hot))
            medians = {name: _median_run(measured) for name, measured in runs.items()}
            for name in ("raw", "same", "service"):
                print(medians[name].line())
            ratios = {name: _ratios(runs["service"], runs[name]) for name in ("raw", "same")}
            for name, label in (("raw", "raw SQL"), ("same", "raw SQL, service's rows")):
                speed, cpu = ratios[name]
                print(
                    f"{'ratio service / ' + label:<38} {speed:>9.2f}"
                    f"  (of CPU per transfer, {label} / service: {cpu:.2f})"
                )
            print(flush=True)
            summary.append((hot, threads, medians, ratios))
    _print_summary(summary)
    _check_ledger()


def _median_run(runs: list[Measurement]) -> Measurement:
    return sorted(runs, key=lambda m: m.per_second)[len(runs) // 2]


def _ratios(service: list[Measurement], baseline: list[Measurement]) -> tuple[float, float]:
    """Medians over the rounds of service / baseline transfers/s, and of baseline / service
    CPU per transfer (the most the first can reach when the machine is the bound)."""
    pairs = list(zip(service, baseline, strict=True))
    speed = median([s.per_second / b.per_second for s, b in pairs])
    cpu = median([b.cpu_per_operation()[0] / s.cpu_per_operation()[0] for s, b in pairs])
    return speed, cpu


def _print_summary(summary: list) -> None:
    print(
        "                   transfers/s            ratio service /    service   CPU ms/transfer\n"
        "case     workers  service    raw  rows    raw  rows  (CPU)   p99 ms    service  raw  rows"
    )
    for hot, workers, medians, ratios in summary:
        service, raw, same = medians["service"], medians["raw"], medians["same"]
        print(
            f"{'hot' if hot else 'uniform':<8} {workers:>7} {service.per_second:>8.1f}"
            f" {raw.per_second:>6.0f} {same.per_second:>5.0f}  {ratios['raw'][0]:>5.2f}"
            f" {ratios['same'][0]:>5.2f} ({ratios['same'][1]:.2f})"
            f" {service.percentile(99):>8.2f}   {service.cpu_per_operation()[0]:>8.2f}"
            f" {raw.cpu_per_operation()[0]:>4.2f} {same.cpu_per_operation()[0]:>5.2f}"
        )


def _check_ledger() -> None:
    from apps.accounts.reconciliation import ledger_reconcile

    report = ledger_reconcile(replay=False)
    print(f"\nledger after the benchmark: {'clean' if report.clean else report.discrepancies[:5]}")


if __name__ == "__main__":
    main()
