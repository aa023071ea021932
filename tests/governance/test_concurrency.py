"""Concurrent votes, a concurrent close and concurrent compose/decompose (PostgreSQL).

Every user votes from two threads at once while a third thread closes the poll: each user has
at most one vote, every vote that committed is in the frozen results, and every refusal is
ALREADY_VOTED or POLL_NOT_ACTIVE. Four threads compose and decompose GCU in one account: the
ledger reconciles and nothing is lost or doubled.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import traceback
from collections import Counter

import pytest
from django.db import connections
from django.utils import timezone

from apps.accounts.reconciliation import ledger_reconcile
from apps.accounts.selectors import balances_by_asset
from apps.accounts.services import account_open
from apps.baskets.selectors import basket_compose_cost
from apps.baskets.services import basket_compose, basket_decompose
from apps.core.errors import DomainError
from apps.core.seeding import seed_reference_data
from apps.core.verification import broken_links
from apps.governance.models import Poll, Vote
from apps.governance.services import poll_activate, poll_close, poll_create, vote_cast
from apps.payments.services import deposit_create
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

USERS = 24


def _run_threads(count: int, work) -> list[str]:
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
        thread.join(timeout=300)
    return escaped + [f"{t.name} did not finish" for t in threads if t.is_alive()]


def test_concurrent_votes_and_close():
    seed_reference_data()
    users = [UserFactory() for _ in range(USERS)]
    now = timezone.now()
    poll = poll_create(
        title="Race",
        type="single_choice",
        options=[{"id": "a", "label": "A"}, {"id": "b", "label": "B"}],
        start_date=now - dt.timedelta(minutes=1),
        end_date=now + dt.timedelta(hours=1),
        voting_power_strategy="one_user_one_vote",
    )
    poll_activate(poll_uuid=poll.uuid)
    refusals: Counter[str] = Counter()
    lock = threading.Lock()

    def work(index: int) -> None:
        if index == 2:  # the closer, after about half of the votes
            while Vote.objects.filter(poll_id=poll.uuid).count() < USERS // 2:
                time.sleep(0.005)
            poll_close(poll_uuid=poll.uuid)
            return
        for user in users:
            try:
                vote_cast(poll_uuid=poll.uuid, user=user, selected_options=["ab"[index]])
            except DomainError as exc:
                with lock:
                    refusals[exc.code] += 1

    assert _run_threads(3, work) == []
    assert set(refusals) <= {"ALREADY_VOTED", "POLL_NOT_ACTIVE"}
    votes = Vote.objects.filter(poll_id=poll.uuid)
    assert votes.count() == len(set(votes.values_list("user_uuid", flat=True)))
    closed = Poll.objects.get(uuid=poll.uuid)
    assert closed.status == "closed"
    assert closed.results["votes_count"] == votes.count() >= USERS // 2
    assert sum(int(v) for v in closed.results["totals"].values()) == votes.count()
    assert votes.count() + sum(refusals.values()) == 2 * USERS
    assert broken_links() == []


def test_concurrent_compose_and_decompose_reconcile():
    seed_reference_data()
    owner = UserFactory()
    account = account_open(name="Wallet", owner_uuid=owner.uuid)
    per_gcu_50 = basket_compose_cost("GCU", 5000)  # what one compose of 50 GCU charges
    # Each cycle leaves its rounding residue with the reserve, so the funds cover every cycle.
    funded = {asset_code: amount * 21 for asset_code, amount in per_gcu_50.items()}
    for asset_code, amount in funded.items():
        deposit_create(account_uuid=account.uuid, amount=amount, asset_code=asset_code)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def work(index: int) -> None:
        for _ in range(5):
            try:
                basket_compose(account_uuid=account.uuid, basket_code="GCU", amount=5000)
                basket_decompose(account_uuid=account.uuid, basket_code="GCU", amount=5000)
            except DomainError as exc:
                with lock:
                    outcomes[exc.code] += 1
            else:
                with lock:
                    outcomes["done"] += 1

    assert _run_threads(4, work) == []
    assert outcomes == {"done": 20}
    balances = balances_by_asset(account.uuid)
    for code, amount in funded.items():  # never more than it had; at most the residues less
        assert amount - 20 * per_gcu_50[code] <= balances[code] <= amount
    assert balances["GCU"] == 0
    report = ledger_reconcile()
    assert report.clean, report.as_dict()
