"""Many concurrent writers on the ledger (PostgreSQL): nothing lost, nothing doubled, no deadlock.

Eight threads send random same-asset transfers among twenty funded customer accounts, a tenth of
them under an Idempotency-Key drawn from a small shared pool (so identical requests race each
other), while two threads also freeze and unfreeze accounts. Only DomainErrors may reach a caller.
Afterwards the ledger reconciles, every hash chain is intact, each transfer a caller was told about
exists exactly once, and each idempotency key moved money exactly once.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections import Counter, defaultdict

import pytest
from django.core.management import call_command
from django.db import connection, connections

from apps.accounts.models import AccountBalance
from apps.accounts.reconciliation import ledger_reconcile
from apps.accounts.services import account_freeze, account_open, account_unfreeze
from apps.core.errors import DomainError
from apps.core.models import IdempotencyRecord
from apps.core.seeding import seed_reference_data
from apps.core.verification import broken_links
from apps.payments.models import Transfer
from apps.payments.services import deposit_create, transfer_create
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8
# Measured on the 2-core machine (PostgreSQL, load average 3-4 from other work): the 8 x 500
# threaded phase takes 27-33 s and the whole test ~50 s, well within budget, so no reduction.
TRANSFERS_PER_THREAD = 500
ACCOUNTS = 20
NEVER_FROZEN = 10  # accounts[:10] are never frozen: they receive the keyed transfers
# The shared key pool slides: during each window of 50 iterations the threads (which run at about
# the same pace) draw from the same 4 keys, so the first executions of a key race each other all
# through the run, not only at its start.
KEY_WINDOW = 50
KEYS_PER_WINDOW = 4
KEYED_SHARE = 0.1
FREEZING_THREADS = 2
FREEZE_SHARE = 0.05
MAX_AMOUNT = 50

# Refusals a caller may see; anything else (or any non-DomainError) fails the test.
EXPECTED_REFUSALS = {
    "INSUFFICIENT_FUNDS",
    "SOURCE_ACCOUNT_FROZEN",
    "DESTINATION_ACCOUNT_FROZEN",
    "ACCOUNT_ALREADY_FROZEN",
    "ACCOUNT_NOT_FROZEN",
}


def _run_threads(count: int, work) -> list[str]:
    """Run `work(index)` in `count` threads started together; the tracebacks of what escaped."""
    escaped: list[str] = []
    start = threading.Barrier(count)

    def worker(index: int) -> None:
        try:
            start.wait()
            work(index)
        except BaseException:  # collected and reported by the test
            escaped.append(traceback.format_exc())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    hung = [thread.name for thread in threads if thread.is_alive()]
    return escaped + [f"{name} did not finish (deadlock?)" for name in hung]


def test_concurrent_transfers_with_idempotency_keys_and_freezes_keep_the_ledger_whole():
    assert connection.vendor == "postgresql"
    seed_reference_data()
    rng = random.Random(20240601)
    owner = UserFactory()
    accounts = [account_open(name=f"c{i}", owner_uuid=owner.uuid).uuid for i in range(ACCOUNTS)]
    deposited = 0
    for account in accounts:
        # Small balances: random transfers of 1..50 drain some accounts, so refusals happen.
        amount = rng.randint(20, 400)
        deposit_create(account_uuid=account, amount=amount, asset_code="USD")
        deposited += amount
    # The keyed transfers come from a treasury that cannot run dry and go to accounts that are
    # never frozen, so the first execution of every key succeeds and moves money exactly once.
    treasury = account_open(name="treasury", owner_uuid=owner.uuid).uuid
    deposit_create(account_uuid=treasury, amount=10**9, asset_code="USD")
    deposited += 10**9
    bodies = {}
    for window in range(-(-TRANSFERS_PER_THREAD // KEY_WINDOW)):
        for n in range(KEYS_PER_WINDOW):
            key = f"conc-{window}-{n}"
            bodies[key] = {
                "from_account": treasury,
                "to_account": accounts[rng.randrange(NEVER_FROZEN)],
                "amount": rng.randint(1, MAX_AMOUNT),
                "asset_code": "USD",
                "reference": key,
            }

    lock = threading.Lock()
    returned: list[tuple[str | None, str]] = []  # (idempotency key or None, transfer uuid)
    refusals: Counter[str] = Counter()
    keyed_refusals: list[str] = []

    def work(index: int) -> None:
        local_rng = random.Random(index)
        mine: list[tuple[str | None, str]] = []
        codes: Counter[str] = Counter()
        for iteration in range(TRANSFERS_PER_THREAD):
            if index < FREEZING_THREADS and local_rng.random() < FREEZE_SHARE:
                account = local_rng.choice(accounts[NEVER_FROZEN:])
                try:
                    if local_rng.random() < 0.3:  # unfreezing more often: few frozen at once
                        account_freeze(account_uuid=account, reason="concurrency test")
                    else:
                        account_unfreeze(account_uuid=account, reason="concurrency test")
                except DomainError as exc:
                    codes[exc.code] += 1
            key = None
            if local_rng.random() < KEYED_SHARE:
                key = f"conc-{iteration // KEY_WINDOW}-{local_rng.randrange(KEYS_PER_WINDOW)}"
                kwargs = bodies[key]
            else:
                source, target = local_rng.sample(accounts, 2)
                kwargs = {
                    "from_account": source,
                    "to_account": target,
                    "amount": local_rng.randint(1, MAX_AMOUNT),
                    "asset_code": "USD",
                }
            try:
                transfer = transfer_create(**kwargs, idempotency_key=key)
            except DomainError as exc:
                codes[exc.code] += 1
                if key is not None:
                    with lock:
                        keyed_refusals.append(f"{key}: {exc.code} {exc.details}")
                continue
            mine.append((key, str(transfer.uuid)))
        with lock:
            returned.extend(mine)
            refusals.update(codes)

    started = time.perf_counter()
    escaped = _run_threads(THREADS, work)
    elapsed = time.perf_counter() - started
    print(f"{THREADS}x{TRANSFERS_PER_THREAD} in {elapsed:.1f} s; refusals {dict(refusals)}")

    # No error but domain errors reaches a caller; no deadlock surfaces.
    assert not escaped, "\n".join(escaped)
    assert set(refusals) <= EXPECTED_REFUSALS, refusals
    assert refusals["INSUFFICIENT_FUNDS"] > 0  # the run did exercise refusals
    assert keyed_refusals == []

    report = ledger_reconcile()
    assert report.clean, [d.as_dict() for d in report.discrepancies]
    assert broken_links() == []
    call_command("verify_events")  # what an operator runs: exits 1 naming a broken link

    # Each transfer a caller was told about exists once; a replay names the first one.
    uuids = [transfer_uuid for _, transfer_uuid in returned]
    replays = len(uuids) - len(set(uuids))
    completed = Transfer.objects.filter(kind="transfer", status="completed")
    assert completed.count() == len(uuids) - replays
    assert {str(u) for u in completed.values_list("uuid", flat=True)} == set(uuids)
    assert replays > 0

    # Every key used moved money exactly once, and every call with it got that one transfer.
    by_key: dict[str, set[str]] = defaultdict(set)
    for key, transfer_uuid in returned:
        if key is not None:
            by_key[key].add(transfer_uuid)
    assert by_key, "no keyed transfer ran"
    for key, seen in by_key.items():
        stored = list(Transfer.objects.filter(reference=key).values_list("uuid", flat=True))
        assert len(stored) == 1, (key, stored)
        assert seen == {str(stored[0])}, (key, seen, stored)
        record = IdempotencyRecord.objects.get(key=key)
        assert record.status_code == 201 and record.response["transfer_uuid"] == str(stored[0])
    keyed_calls = sum(1 for key, _ in returned if key is not None)
    print(f"{keyed_calls} keyed calls over {len(by_key)} keys; {replays} replays")

    # Transfers only moved money between customers: together they hold what was deposited.
    customers = AccountBalance.objects.filter(account_id__in=[*accounts, treasury])
    assert sum(customers.values_list("balance", flat=True)) == deposited
    assert not customers.filter(balance__lt=0).exists()
