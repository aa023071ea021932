"""Replay and history at scale: rebuild the read models from 1,000,000 events, and page the history
of an account holding 100,000 of them.

Run: `make bench` or `.venv/bin/python -m bench.replay`, with PostgreSQL on 127.0.0.1:5432; for a
quick dev run `BENCH_EVENTS=50000 BENCH_HOT_EVENTS=10000 .venv/bin/python -m bench.replay`.

It recreates its own database (BENCH_DATABASE, default finaegis_bench_replay), opens BENCH_ACCOUNTS
accounts and funds them through the service layer, then writes the bulk of BENCH_EVENTS events
directly: each transfer is exactly what `transfer_create` stores (the postings the Account
aggregates record, a TransferCompleted on a new Transfer aggregate, the hash chain with the
store's meta, the stream heads), loaded with COPY; one account is a side of enough transfers to
hold BENCH_HOT_EVENTS events. Timestamps are spread over the last BENCH_DAYS days. The data is
checked with `verify_events` before anything is measured (generation time is printed but is not a
figure). Then, ROUNDS times, medians reported:

- `rebuild_projections` of accounts and payments over all events, in events/s (target 20,000),
  against a plain read of the same rows (server-side cursor, JSON and `decode`) in the same round:
  the ratio rebuild / raw read is the projection's cost over reading the events at all;
- afterwards `ledger_reconcile` (balances against the postings, chains) and the read models
  against the events (turnover, transfers) must be clean;
- the hot account's first history page (20 entries) through the API in-process with its owner's
  bearer token, and through `account_history` alone, BENCH_HISTORY_CALLS calls each, p50/p99
  (target p99 < 20 ms), and a page BENCH_DEEP_PAGES `next` links further, for information.

BENCH_REPLAY_BATCH, when set, is passed to `rebuild_projections` as its batch_size. The script
exits 1 when a check after the rebuild fails (after printing the history figures).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import time
import uuid

from bench._setup import Measurement, django_on_fresh_database, median

DATABASE = os.environ.get("BENCH_DATABASE", "finaegis_bench_replay")
EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
HOT_EVENTS = int(os.environ.get("BENCH_HOT_EVENTS", "100000"))
ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "1000"))
DAYS = int(os.environ.get("BENCH_DAYS", "30"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
HISTORY_CALLS = int(os.environ.get("BENCH_HISTORY_CALLS", "300"))
DEEP_PAGES = int(os.environ.get("BENCH_DEEP_PAGES", "10"))
BATCH = int(os.environ.get("BENCH_REPLAY_BATCH", "0"))  # rebuild_projections' batch_size
FUNDING = 10**12
CHUNK = 20_000  # transfers per COPY


# --- the data ------------------------------------------------------------------------------


def open_accounts():
    """The accounts and their deposits, through the service layer; the first one is the hot one."""
    from apps.accounts.services import account_open
    from apps.payments.services import deposit_create
    from apps.users.models import User

    owner = User.objects.create_user("replay-bench@example.com", None, name="Replay bench")
    accounts = [account_open(name="hot", owner_uuid=owner.uuid).uuid]
    accounts += [account_open(name=f"bench {n}", owner_uuid=None).uuid for n in range(ACCOUNTS - 1)]
    for account in accounts:
        deposit_create(account_uuid=account, amount=FUNDING, asset_code="USD")
    return owner, accounts


class Writer:
    """Appends events the way `apps.core.store.save` does, into rows for COPY."""

    def __init__(self, heads: dict[uuid.UUID, tuple[int, str]], meta: dict) -> None:
        self.heads = heads  # aggregate uuid -> (version, last hash)
        self.meta = meta
        self.meta_json = json.dumps(meta)

    def rows(self, aggregate, created_at: dt.datetime) -> list[tuple]:
        from apps.core.store import chain_events

        pending, last_hash = chain_events(aggregate, self.meta, created_at)
        aggregate.mark_persisted(last_hash)
        self.heads[aggregate.uuid] = (aggregate.version, last_hash)
        # COPY takes the JSON columns as text.
        return [(*row[:4], json.dumps(row[4]), self.meta_json, *row[6:]) for _, row in pending]


def _copy(table: str, columns: str, rows: list[tuple]) -> None:
    from django.db import connection

    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def generate_transfers(accounts: list[uuid.UUID]) -> tuple[int, int]:
    """Random USD transfers among the accounts until the tables hold EVENTS events, the first
    account a side of enough of them to hold HOT_EVENTS. Returns (transfers, hot transfers)."""
    from django.db import transaction
    from django.utils import timezone

    from apps.accounts.aggregates import Account, Posting
    from apps.accounts.models import AccountEvent
    from apps.core import store
    from apps.core.context import current_actor, current_metadata
    from apps.core.models import AggregateStream
    from apps.payments.aggregates import Transfer
    from apps.payments.models import PaymentEvent

    hot, others = accounts[0], accounts[1:]
    loaded = {a.uuid: a for a in store.load(Account, *accounts, lock=False)}
    heads = {
        u: (v, h)
        for u, v, h in AggregateStream.objects.filter(uuid__in=accounts).values_list(
            "uuid", "version", "last_hash"
        )
    }
    writer = Writer(heads, current_metadata())
    actor = current_actor()
    existing = AccountEvent.objects.count() + PaymentEvent.objects.count()
    transfers = max(0, (EVENTS - existing) // 3)
    hot_transfers = min(transfers, max(0, HOT_EVENTS - heads[hot][0]))
    plan = [True] * hot_transfers + [False] * (transfers - hot_transfers)
    rng = random.Random(4)
    rng.shuffle(plan)
    now = timezone.now()
    step = dt.timedelta(days=DAYS) / max(1, transfers)
    account_table, payment_table = AccountEvent._meta.db_table, PaymentEvent._meta.db_table
    stream_table = AggregateStream._meta.db_table
    with transaction.atomic():
        for start in range(0, transfers, CHUNK):
            account_rows, payment_rows, streams = [], [], []
            for i in range(start, min(start + CHUNK, transfers)):
                if plan[i]:
                    pair = (hot, rng.choice(others))
                    source, target = pair if rng.random() < 0.5 else pair[::-1]
                else:
                    source, target = rng.sample(others, 2)
                amount = rng.randint(1, 10_000)
                created_at = now - dt.timedelta(days=DAYS) + i * step
                # What _execute_transfer records, through the same aggregates.
                source_acc, target_acc = loaded[source], loaded[target]
                entry = Transfer(uuid.uuid4())
                source_acc.debit(Posting("USD", amount, entry.uuid, "transfer", target))
                target_acc.credit(Posting("USD", amount, entry.uuid, "transfer", source))
                entry.complete(
                    kind="transfer",
                    from_account=source,
                    to_account=target,
                    from_asset="USD",
                    to_asset="USD",
                    amount=amount,
                    to_amount=amount,
                    rate=None,
                    reference="",
                    actor=actor,
                )
                for account in sorted((source_acc, target_acc), key=lambda a: a.uuid):
                    account_rows += writer.rows(account, created_at)
                payment_rows += writer.rows(entry, created_at)
                streams.append(
                    (entry.uuid, Transfer.aggregate_type, 1, writer.heads.pop(entry.uuid)[1], now)
                )
            _copy(account_table, ", ".join(store.EVENT_COLUMNS), account_rows)
            _copy(payment_table, ", ".join(store.EVENT_COLUMNS), payment_rows)
            _copy(stream_table, "uuid, aggregate_type, version, last_hash, updated_at", streams)
        heads_now = list(AggregateStream.objects.filter(uuid__in=accounts))
        for stream in heads_now:
            stream.version, stream.last_hash = writer.heads[stream.uuid]
            stream.updated_at = now
        AggregateStream.objects.bulk_update(heads_now, ["version", "last_hash", "updated_at"])
    return transfers, hot_transfers


def vacuum_analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


# --- checks --------------------------------------------------------------------------------

READ_MODEL_CHECKS = {
    # Each query returns the rows where a read model disagrees with the events.
    "turnover": """
        WITH moved AS (
            SELECT aggregate_uuid AS account, event_data->>'asset_code' AS asset,
                   (created_at AT TIME ZONE 'UTC')::date AS day,
                   sum(CASE WHEN event_type = 'accounts.MoneyAdded'
                            THEN (event_data->>'amount')::bigint ELSE 0 END) AS credit,
                   sum(CASE WHEN event_type = 'accounts.MoneySubtracted'
                            THEN (event_data->>'amount')::bigint ELSE 0 END) AS debit,
                   count(*) AS n
            FROM accounts_accountevent
            WHERE event_type IN ('accounts.MoneyAdded', 'accounts.MoneySubtracted')
            GROUP BY 1, 2, 3)
        SELECT m.account, m.asset, m.day, t.account_id FROM moved m
        FULL JOIN accounts_turnover t
          ON t.account_id = m.account AND t.asset_code = m.asset AND t.day = m.day
        WHERE t.id IS NULL OR m.account IS NULL
           OR (t.credit, t.debit, t.count) <> (m.credit, m.debit, m.n)""",
    "balance version": """
        SELECT b.account_id, b.asset_code, b.version, max(e.aggregate_version)
        FROM accounts_accountbalance b JOIN accounts_accountevent e
          ON e.aggregate_uuid = b.account_id AND e.event_data->>'asset_code' = b.asset_code
        WHERE e.event_type IN ('accounts.MoneyAdded', 'accounts.MoneySubtracted')
        GROUP BY 1, 2, 3 HAVING b.version <> max(e.aggregate_version)""",
    "transfers": """
        SELECT e.aggregate_uuid, t.uuid FROM payments_paymentevent e
        FULL JOIN payments_transfer t ON t.uuid = e.aggregate_uuid
        WHERE (e.event_type = 'payments.TransferCompleted' OR e.id IS NULL)
          AND (t.uuid IS NULL OR e.id IS NULL
               OR t.amount <> (e.event_data->>'amount')::bigint
               OR t.from_account_id <> (e.event_data->>'from_account')::uuid
               OR t.to_account_id <> (e.event_data->>'to_account')::uuid)""",
}


def check_after_rebuild() -> bool:
    from django.db import connection

    from apps.accounts.reconciliation import ledger_reconcile

    report = ledger_reconcile(replay=False)
    summary = {k: v for k, v in report.as_dict().items() if k != "discrepancies"}
    print(f"ledger_reconcile: {summary}")
    for discrepancy in report.discrepancies[:10]:
        print(f"  DISCREPANCY {discrepancy.as_dict()}")
    clean = report.clean
    with connection.cursor() as cursor:
        for name, sql in READ_MODEL_CHECKS.items():
            cursor.execute(f"SELECT * FROM ({sql}) wrong LIMIT 5")
            wrong = cursor.fetchall()
            print(f"read model {name:<16} {wrong or 'equal to the events'}")
            clean = clean and not wrong
    return clean


# --- measurements --------------------------------------------------------------------------


def rebuild() -> int:
    from apps.core.replay import rebuild_projections

    options = {"batch_size": BATCH} if BATCH else {}  # else the function's default
    return sum(rebuild_projections(app, **options) for app in ("accounts", "payments"))


def raw_read() -> int:
    """The same rows, read and decoded as the rebuild must, projected nowhere."""
    from django.db import connection, transaction

    from apps.core.events import decode
    from apps.core.models import event_model_for

    read = 0
    with transaction.atomic():
        connection.ensure_connection()
        for app in ("accounts", "payments"):
            table = event_model_for(app)._meta.db_table
            with connection.connection.cursor(name=f"raw_{app}") as cursor:
                cursor.itersize = 5000
                cursor.execute(
                    "SELECT id, aggregate_uuid, aggregate_version, event_type, event_version, "
                    f"event_data, meta_data, created_at FROM {table} ORDER BY id"
                )
                for _, _, _, event_type, event_version, data, meta, _ in cursor:
                    decode(event_type, event_version, json.loads(data))
                    json.loads(meta)
                    read += 1
    return read


def measure_rebuild() -> None:
    rebuilds, reads = [], []
    for round_no in range(1, ROUNDS + 1):
        vacuum_analyze()
        began = time.perf_counter()
        read = raw_read()
        reads.append(Measurement("raw read + decode", read, time.perf_counter() - began, []))
        began = time.perf_counter()
        replayed = rebuild()
        rebuilds.append(
            Measurement("rebuild_projections", replayed, time.perf_counter() - began, [])
        )
        assert replayed == read, (replayed, read)
        print(
            f"round {round_no}: rebuild {rebuilds[-1].seconds:6.1f} s"
            f" {rebuilds[-1].per_second:9.0f} events/s, raw read {reads[-1].seconds:6.1f} s"
            f" {reads[-1].per_second:9.0f} events/s",
            flush=True,
        )
    ratio = median([r.seconds / b.seconds for r, b in zip(rebuilds, reads, strict=True)])
    print(
        f"\nrebuild_projections   {median([m.per_second for m in rebuilds]):>9.0f} events/s"
        f"  ({median([m.seconds for m in rebuilds]):.1f} s for {rebuilds[0].operations} events;"
        " target >= 20,000)"
    )
    print(f"raw read + decode     {median([m.per_second for m in reads]):>9.0f} events/s")
    print(f"ratio rebuild / raw read (time) {ratio:.1f}\n", flush=True)


def _timed_calls(name: str, call, n: int) -> Measurement:
    call()  # warm up
    latencies = []
    for _ in range(n):
        began = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - began)
    return Measurement(name, n, sum(latencies), latencies)


def measure_history(owner, account: uuid.UUID) -> None:
    from rest_framework.test import APIClient

    from apps.accounts.selectors import account_history
    from apps.users.services import token_create

    client = APIClient()
    token = token_create(user=owner, name="bench", scopes=["read"])
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.secret}")

    def page(url: str) -> dict:
        response = client.get(url)
        assert response.status_code == 200, (response.status_code, response.content[:300])
        body = response.json()
        assert len(body["results"]) == 20, body
        return body

    first_url = f"/api/v1/accounts/{account}/transactions"
    deep_url = first_url
    for _ in range(DEEP_PAGES):
        deep_url = page(deep_url)["next"]
    deep_before = int(deep_url.rsplit("before=", 1)[1].split("&")[0])
    first = page(first_url)
    print(f"hot account: {first['count']} postings; deep page: before={deep_before}")
    for m in (
        _timed_calls("history API first page", lambda: page(first_url), HISTORY_CALLS),
        _timed_calls(
            "history selector first page", lambda: account_history(account, limit=21), HISTORY_CALLS
        ),
        _timed_calls(f"history API page {DEEP_PAGES + 1}", lambda: page(deep_url), HISTORY_CALLS),
        _timed_calls(
            f"history selector page {DEEP_PAGES + 1}",
            lambda: account_history(account, before_version=deep_before, limit=21),
            HISTORY_CALLS,
        ),
    ):
        print(m.line())
    print("(target: first page p99 < 20 ms)")


def main() -> None:
    os.environ.setdefault("THROTTLE_USER", "1000000/minute")  # the history calls are one user's
    django_on_fresh_database(DATABASE)
    from django.core.management import call_command

    print(f"database {DATABASE}: {EVENTS} events, hot account {HOT_EVENTS}, {ACCOUNTS} accounts")
    began = time.perf_counter()
    owner, accounts = open_accounts()
    opened = time.perf_counter() - began
    transfers, hot_transfers = generate_transfers(accounts)
    vacuum_analyze()
    generated = time.perf_counter() - began
    print(
        f"generated in {generated:.1f} s (service layer {opened:.1f} s, then {transfers} transfers,"
        f" {hot_transfers} of them with the hot account, by COPY)",
        flush=True,
    )
    began = time.perf_counter()
    call_command("verify_events")
    print(f"verify_events took {time.perf_counter() - began:.1f} s\n", flush=True)
    measure_rebuild()
    clean = check_after_rebuild()
    print()
    measure_history(owner, accounts[0])
    if not clean:
        raise SystemExit("\nFAILED: the rebuilt read models disagree with the events (above)")


if __name__ == "__main__":
    main()
