"""HTTP throughput: the API under gunicorn on PostgreSQL and Redis, driven over loopback.

Run: `make bench` or `.venv/bin/python -m bench.http`, with PostgreSQL on 127.0.0.1:5432 and
Redis on 6379.

It recreates its own database (BENCH_HTTP_DATABASE, default finaegis_bench_http), opens and funds
BENCH_ACCOUNTS (1,000) accounts with bench/ledger.py's prepare() and gives them to
BENCH_HTTP_USERS (10) users, each with an API token and the owner's object permissions on its
share. In the same process it measures bench/ledger.py's baselines, 4 threads, uniform:
service_case (transfer_create) and raw_case (raw SQL), BENCH_SECONDS (4) each, BENCH_ROUNDS (3)
rounds, medians. Then it starts gunicorn (BENCH_GUNICORN, see GUNICORN below) with DEBUG=0 and
Redis db BENCH_HTTP_REDIS (redis://127.0.0.1:6379/12, flushed first), and a client of
BENCH_HTTP_CONNECTIONS (8) keep-alive connections, one thread each:

1. the mix, BENCH_HTTP_SECONDS (60): POST /api/v1/transfers with an Idempotency-Key between two
   accounts of one user, GET /accounts/{uuid}/balances, GET /accounts/{uuid}/transactions (first
   page), weighted BENCH_HTTP_MIX ("2,1,1"). Ratio: transfers/s over HTTP / service_case.
2. bulk, BENCH_BULK_SECONDS (30): POST /api/v1/transfers/bulk, 100 transfers per request,
   atomic. Ratio: transfers/s / raw_case.

Errors are any non-2xx answer (or a bulk item not completed) and any exception; they must be 0.
Throttles and operation limits are raised through gunicorn's environment so that nothing is
refused with 429; the limits are still counted in Redis, as in production. Finally gunicorn is
stopped and the ledger reconciled. The exit status is 1 on errors or an unclean ledger.

Shorter, for development:
  BENCH_HTTP_SECONDS=10 BENCH_BULK_SECONDS=5 BENCH_SECONDS=2 BENCH_ROUNDS=1 \\
  BENCH_ACCOUNTS=200 .venv/bin/python -m bench.http
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench import ledger
from bench._setup import ROOT, Measurement, django_on_fresh_database, machine_cpu, median

DATABASE = os.environ.get("BENCH_HTTP_DATABASE", "finaegis_bench_http")
REDIS = os.environ.get("BENCH_HTTP_REDIS", "redis://127.0.0.1:6379/12")
HTTP_SECONDS = float(os.environ.get("BENCH_HTTP_SECONDS", "60"))
BULK_SECONDS = float(os.environ.get("BENCH_BULK_SECONDS", "30"))
WARMUP_SECONDS = float(os.environ.get("BENCH_HTTP_WARMUP", "3"))
CONNECTIONS = int(os.environ.get("BENCH_HTTP_CONNECTIONS", "8"))
USERS = int(os.environ.get("BENCH_HTTP_USERS", "10"))
MIX = [float(w) for w in os.environ.get("BENCH_HTTP_MIX", "2,1,1").split(",")]
BULK_SIZE = 100
BASELINE_THREADS = 4
# Sized for 2 cores. Tried with the default run (8 connections): see the report in
# docs/PERFORMANCE.md; gthread keeps connections alive, a sync worker closes each one.
GUNICORN = os.environ.get("BENCH_GUNICORN", "--workers 3 --worker-class gthread --threads 2")
# Nothing may be refused with 429. A per-second rate keeps DRF's throttle history (a list of
# timestamps per user, read and written on every request) short, as it is in production.
SERVER_ENV = {
    "REDIS_URL": REDIS,
    "THROTTLE_USER": "1000000/second",
    "THROTTLE_ANON": "1000000/second",
    "OPERATION_LIMITS": json.dumps(
        {
            op: {"per_hour": 10**12, "per_day": 10**12}
            for op in ("deposit", "withdrawal", "transfer")
        }
    ),
    "LOG_LEVEL": "WARNING",
    "PYTHONWARNINGS": "ignore:No directory at:UserWarning",  # whitenoise: no collectstatic
}
SHOWN_ERRORS = 5


@dataclass
class Owner:
    token: str
    accounts: list[uuid.UUID]


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    transfers: int = 0
    errors: int = 0
    error_bodies: list[str] = field(default_factory=list)
    transfers_per_second: float = 0.0


def owners_create(accounts: list[uuid.UUID]) -> list[Owner]:
    """USERS users with a token each; user i may use every USERS-th account from i."""
    from guardian.shortcuts import assign_perm

    from apps.accounts.models import Account
    from apps.accounts.services import OWNER_PERMISSIONS
    from apps.users.models import User
    from apps.users.services import token_create

    owners = []
    for i in range(USERS):
        user = User.objects.create_user(f"bench{i}@example.com", name=f"Bench {i}")
        mine = accounts[i::USERS]
        for permission in OWNER_PERMISSIONS:
            assign_perm(permission, user, Account.objects.filter(uuid__in=mine))
        owners.append(Owner(token_create(user=user, name="bench").secret, mine))
    return owners


# --- gunicorn ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn_start(port: int, log) -> subprocess.Popen:
    command = [sys.executable, "-m", "gunicorn", "finaegis.wsgi", "--bind", f"127.0.0.1:{port}"]
    command += [*shlex.split(GUNICORN), "--timeout", "300", "--log-level", "warning"]
    env = {**os.environ, **SERVER_ENV}  # DEBUG=0, DATABASE_URL and the secrets come from _setup
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            body = response.read()
            conn.close()
            if response.status == 200:
                return server
            if time.monotonic() > deadline:
                raise RuntimeError(f"/healthz answers {response.status}: {body[:300]!r}")
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.3)


def gunicorn_stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def cpu_seconds_of_tree(pid: int) -> float:
    """CPU time of a process and its children (gunicorn's master and workers), from /proc."""
    ticks = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(stat[11]) + int(stat[12])  # utime, stime
            pids += Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (OSError, IndexError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


# --- the client ----------------------------------------------------------------------------------


def drive(port: int, seconds: float, next_request) -> tuple[Tally, float]:
    """CONNECTIONS threads send next_request(rng) -> (name, method, path, token, body) for
    `seconds`; returns the tally and the elapsed time."""
    tally = Tally()
    lock = threading.Lock()
    barrier = threading.Barrier(CONNECTIONS + 1)

    def client(index: int) -> None:
        rng = random.Random(index)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        mine = Tally()
        barrier.wait()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            name, method, path, token, body = next_request(rng)
            headers = {"Authorization": f"Bearer {token}"}
            if body is not None:
                headers["Content-Type"] = "application/json"
                headers["Idempotency-Key"] = uuid.uuid4().hex
            began = time.perf_counter()
            try:
                conn.request(method, path, body, headers)
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                mine.errors += 1
                mine.error_bodies.append(f"{name}: {exc!r}")
                continue
            elapsed = time.perf_counter() - began
            transfers = 0
            if 200 <= response.status < 300:
                transfers = _transfers_done(name, payload)
            if transfers is None or response.status >= 300:
                mine.errors += 1
                mine.error_bodies.append(f"{name}: {response.status} {payload[:400]!r}")
                continue
            mine.latencies[name].append(elapsed)
            mine.transfers += transfers
        conn.close()
        with lock:
            for name, latencies in mine.latencies.items():
                tally.latencies[name].extend(latencies)
            tally.transfers += mine.transfers
            tally.errors += mine.errors
            tally.error_bodies += mine.error_bodies[:SHOWN_ERRORS]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return tally, time.perf_counter() - began


def _transfers_done(name: str, payload: bytes) -> int | None:
    if name == "POST transfers":
        return 1
    if name == "POST transfers/bulk":
        body = json.loads(payload)
        return body["completed"] if body["failed"] == 0 else None
    return 0


def _transfer_body(rng: random.Random, owner: Owner) -> dict:
    source, target = rng.sample(owner.accounts, 2)
    return {
        "from_account": str(source),
        "to_account": str(target),
        "amount": 1,
        "asset_code": "USD",
    }


def mix_request(owners: list[Owner], weights: list[float] = MIX):
    kinds = ["transfer", "balances", "history"]

    def next_request(rng: random.Random):
        owner = rng.choice(owners)
        kind = rng.choices(kinds, weights)[0]
        if kind == "transfer":
            body = json.dumps(_transfer_body(rng, owner))
            return "POST transfers", "POST", "/api/v1/transfers", owner.token, body
        account = rng.choice(owner.accounts)
        if kind == "balances":
            path = f"/api/v1/accounts/{account}/balances"
            return "GET balances", "GET", path, owner.token, None
        path = f"/api/v1/accounts/{account}/transactions"
        return "GET history (first page)", "GET", path, owner.token, None

    return next_request


def bulk_request(owners: list[Owner]):
    def next_request(rng: random.Random):
        owner = rng.choice(owners)
        items = [_transfer_body(rng, owner) for _ in range(BULK_SIZE)]
        body = json.dumps({"transfers": items, "atomic": True})
        return "POST transfers/bulk", "POST", "/api/v1/transfers/bulk", owner.token, body

    return next_request


def measured(port: int, server: subprocess.Popen, seconds: float, next_request) -> Tally:
    """Run the client and print what it measured, with where the CPU went."""
    client_before, server_before = time.process_time(), cpu_seconds_of_tree(server.pid)
    busy_before, total_before = machine_cpu()
    tally, elapsed = drive(port, seconds, next_request)
    client = time.process_time() - client_before
    server_cpu = cpu_seconds_of_tree(server.pid) - server_before
    busy_after, total_after = machine_cpu()
    capacity = elapsed * len(os.sched_getaffinity(0))
    requests = sum(len(latencies) for latencies in tally.latencies.values())
    print(f"{'all requests':<38} {requests / elapsed:>9.1f}/s  (n={requests}, {elapsed:.1f} s)")
    for name, latencies in sorted(tally.latencies.items()):
        print(Measurement(name, len(latencies), elapsed, latencies).line())
    print(f"{'transfers':<38} {tally.transfers / elapsed:>9.1f}/s  (n={tally.transfers})")
    machine = (busy_after - busy_before) / max(1, total_after - total_before)
    print(
        f"CPU of {capacity / elapsed:.0f} cores: client {client / capacity:.0%}, gunicorn "
        f"{server_cpu / capacity:.0%}, machine busy {machine:.0%} (the rest: PostgreSQL, Redis)"
    )
    busy_seconds = (busy_after - busy_before) / os.sysconf("SC_CLK_TCK")
    print(
        f"CPU per request: machine {busy_seconds / max(1, requests) * 1000:.2f} ms, of which "
        f"gunicorn {server_cpu / max(1, requests) * 1000:.2f} ms"
    )
    print(f"errors: {tally.errors}")
    for body in tally.error_bodies[:SHOWN_ERRORS]:
        print(f"  {body}")
    tally.transfers_per_second = tally.transfers / elapsed
    return tally


# --- main ----------------------------------------------------------------------------------------


def baselines(accounts: list[uuid.UUID]) -> tuple[float, float]:
    """Medians of bench/ledger.py's service and raw-SQL transfers/s, 4 threads, uniform."""
    service_runs, raw_runs = [], []
    for _ in range(ledger.ROUNDS):
        raw_runs.append(ledger.raw_case(accounts, BASELINE_THREADS, hot=False))
        service_runs.append(ledger.service_case(accounts, BASELINE_THREADS, hot=False))
    for runs in (raw_runs, service_runs):
        print(sorted(runs, key=lambda m: m.per_second)[len(runs) // 2].line())
    return median([m.per_second for m in service_runs]), median([m.per_second for m in raw_runs])


def main() -> int:
    import redis

    django_on_fresh_database(DATABASE)
    print(f"preparing {ledger.ACCOUNTS} funded accounts of {USERS} users ...", flush=True)
    accounts = ledger.prepare()
    owners = owners_create(accounts)

    # Anything else running on the machine shows up here, and distorts every figure below.
    print(f"load average (1 min) before measuring: {os.getloadavg()[0]:.2f}")
    print(f"\nbaselines in this process: {ledger.SECONDS:.0f} s x {ledger.ROUNDS} rounds, medians")
    service, raw = baselines(accounts)

    redis.Redis.from_url(REDIS).flushdb()
    port = free_port()
    print(f"\ngunicorn {GUNICORN} on 127.0.0.1:{port}; client: {CONNECTIONS} connections")
    with tempfile.NamedTemporaryFile("w+", prefix="bench-gunicorn-", suffix=".log") as log:
        server = None
        try:
            server = gunicorn_start(port, log)
            drive(port, WARMUP_SECONDS, mix_request(owners))  # imports, caches, pools
            print(f"\nmix {':'.join(f'{w:g}' for w in MIX)} (transfer:balances:history), "
                  f"{HTTP_SECONDS:.0f} s")  # fmt: skip
            mix = measured(port, server, HTTP_SECONDS, mix_request(owners))
            ratio = mix.transfers_per_second / service
            print(f"{'ratio HTTP transfers / service':<38} {ratio:>9.2f}")
            print(f"\nbulk, {BULK_SIZE} transfers per request, atomic, {BULK_SECONDS:.0f} s")
            bulk = measured(port, server, BULK_SECONDS, bulk_request(owners))
            ratio = bulk.transfers_per_second / raw
            print(f"{'ratio bulk transfers / raw SQL':<38} {ratio:>9.2f}")
        finally:
            if server is not None:
                gunicorn_stop(server)
            log.seek(0)
            server_log = log.read()
        if server_log.strip():
            print(f"\ngunicorn's log (last 3,000 characters):\n{server_log[-3000:]}")

    from apps.accounts.reconciliation import ledger_reconcile

    report = ledger_reconcile(replay=False)
    print(f"\nledger after the benchmark: {'clean' if report.clean else report.discrepancies[:5]}")
    return 0 if report.clean and mix.errors == 0 and bulk.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
