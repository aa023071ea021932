"""One lock order (PostgreSQL): adjustments, deposits, withdrawals and transfers on the same
accounts at once never deadlock, and nothing is lost.

`manual_movement_submit` once locked the account, then the settlement account and the account
again: against a plain deposit (settlement first) the order inverted, PostgreSQL broke the
deadlock and the retry hid it. PostgreSQL counts every deadlock it breaks
(`pg_stat_database.deadlocks`), so the test asks it directly.
"""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connection, connections

from apps.accounts.reconciliation import ledger_reconcile
from apps.accounts.selectors import balances_by_asset
from apps.accounts.services import account_open
from apps.core.context import command_context, user_actor
from apps.core.errors import DomainError
from apps.core.seeding import seed_reference_data
from apps.payments.services import (
    deposit_create,
    manual_movement_submit,
    transfer_create,
    withdrawal_create,
)
from tests.factories import StaffFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 6
OPERATIONS_PER_THREAD = 60


def _deadlocks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def _worker(accounts, staff, seed, moved, failures):
    rng = random.Random(seed)
    try:
        with command_context(actor=user_actor(staff)):
            for _ in range(OPERATIONS_PER_THREAD):
                a, b = rng.sample(accounts, 2)
                amount = rng.randint(1, 20)
                op = rng.choice(("adjust", "deposit", "withdraw", "transfer"))
                try:
                    if op == "adjust":
                        manual_movement_submit(
                            kind="deposit",
                            account_uuid=a,
                            asset_code="USD",
                            amount=amount,
                            reason="race",
                        )
                        moved[a] += amount
                    elif op == "deposit":
                        deposit_create(account_uuid=a, amount=amount, asset_code="USD")
                        moved[a] += amount
                    elif op == "withdraw":
                        withdrawal_create(account_uuid=a, amount=amount, asset_code="USD")
                        moved[a] -= amount
                    else:
                        transfer_create(
                            from_account=a, to_account=b, amount=amount, asset_code="USD"
                        )
                        moved[a] -= amount
                        moved[b] += amount
                except DomainError as exc:
                    assert exc.code == "INSUFFICIENT_FUNDS", exc.code
    except BaseException as exc:  # reported by the main thread
        failures.append(exc)
    finally:
        connections.close_all()


def test_concurrent_adjustments_and_deposits_never_deadlock():
    seed_reference_data()
    staff = StaffFactory()
    owner = UserFactory()
    accounts = [account_open(name=f"A{i}", owner_uuid=owner.uuid).uuid for i in range(4)]
    for account in accounts:
        deposit_create(account_uuid=account, amount=1_000, asset_code="USD")
    before = _deadlocks()
    per_thread = [dict.fromkeys(accounts, 0) for _ in range(THREADS)]
    failures: list[BaseException] = []
    threads = [
        threading.Thread(target=_worker, args=(accounts, staff, n, per_thread[n], failures))
        for n in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert _deadlocks() == before
    for account in accounts:
        expected = 1_000 + sum(moved[account] for moved in per_thread)
        assert balances_by_asset(account) == {"USD": expected}
    assert ledger_reconcile().clean
