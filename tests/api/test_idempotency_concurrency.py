"""The same Idempotency-Key from many clients at the same moment moves money exactly once.

PostgreSQL only: real row locks and a real unique index decide the race; each thread has its
own APIClient and its own database connection, and a Barrier releases them together.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import Counter

import pytest
from django.db import connections
from rest_framework.test import APIClient

from apps.core.seeding import seed_reference_data
from apps.custodians.models import CustodianMovement
from apps.custodians.registry import connector_for
from apps.payments.services import deposit_create
from apps.users.services import token_create
from tests.factories import UserFactory
from tests.workflows.support import set_eager

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 6


def _bearer(user) -> str:
    return f"Bearer {token_create(user=user, name='race').secret}"


def _client(header: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    return client


def _race(count: int, request) -> tuple[list, list[BaseException]]:
    """Run `request(index)` in `count` threads released at once; its results and errors."""
    results: list = [None] * count
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def worker(index: int) -> None:
        try:
            start.wait()
            results[index] = request(index)
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    return results, errors


def _snapshot(response) -> tuple[int, dict]:
    return response.status_code, response.json()


@pytest.fixture(autouse=True)
def _eager_tasks():
    """A withdrawal is a workflow: run it in the request's thread once it commits."""
    previous = set_eager(True)
    yield
    set_eager(previous)


@pytest.fixture
def customers():
    seed_reference_data()
    alice = UserFactory(email="alice@example.com", name="Alice")
    bob = UserFactory(email="bob@example.com", name="Bob")
    return _bearer(alice), _bearer(bob)


def _open(header: str, funded: dict[str, int] | None = None) -> str:
    client = _client(header)
    account = client.post("/api/v1/accounts", {"name": "Main"}, format="json").json()["uuid"]
    bank = connector_for().inner
    for asset_code, amount in (funded or {}).items():  # on the ledger and at the mock bank
        deposit_create(account_uuid=uuid.UUID(account), amount=amount, asset_code=asset_code)
        bank.fund(bank.settlement_account, asset_code, amount)
    return account


def _balance(header: str, account: str, asset_code: str = "USD") -> int:
    balances = _client(header).get(f"/api/v1/accounts/{account}/balances").json()
    return next((b["balance"] for b in balances if b["asset_code"] == asset_code), 0)


def _history(header: str, account: str) -> list[dict]:
    body = _client(header).get(f"/api/v1/accounts/{account}/transactions?page_size=100").json()
    return body["results"]


def _check_once(responses: list[tuple[int, dict]], done: int = 201) -> dict:
    """Every answer is the one `done` body, or 409 IDEMPOTENCY_KEY_REUSED (still in flight)."""
    statuses = Counter(status for status, _ in responses)
    assert set(statuses) <= {done, 409}, responses
    assert statuses[done] >= 1, responses
    created = {repr(sorted(body.items())) for status, body in responses if status == done}
    assert len(created) == 1, f"different bodies for one key: {created}"
    for status, body in responses:
        if status == 409:
            assert set(body) == {"error", "message", "details"}, body
            assert body["error"] == "IDEMPOTENCY_KEY_REUSED", body
    return next(body for status, body in responses if status == done)


def test_one_withdrawal_key_from_many_clients_withdraws_once(customers):
    alice, _ = customers
    account = _open(alice, funded={"USD": 10_000})
    clients = [_client(alice) for _ in range(THREADS)]
    url = f"/api/v1/accounts/{account}/withdraw"
    body = {"amount": 1_000, "asset_code": "USD", "reference": "atm"}

    results, errors = _race(
        THREADS,
        lambda i: _snapshot(
            clients[i].post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="wd-race")
        ),
    )
    assert errors == []
    first = _check_once(results, done=202)
    assert first["amount"] == 1_000 and "destination" in first
    assert _balance(alice, account) == 9_000
    withdrawals = [e for e in _history(alice, account) if e["type"] == "withdrawal"]
    assert len(withdrawals) == 1
    assert list(CustodianMovement.objects.values_list("uuid", flat=True)) == [
        uuid.UUID(first["uuid"])
    ]

    # afterwards every client gets the stored answer again
    replay = clients[0].post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="wd-race")
    assert (replay.status_code, replay.json()) == (202, first)
    assert replay["Idempotent-Replayed"] == "true"
    assert _balance(alice, account) == 9_000


def test_one_transfer_key_from_many_clients_transfers_once(customers):
    alice, bob = customers
    source = _open(alice, funded={"USD": 5_000})
    target = _open(bob)
    clients = [_client(alice) for _ in range(THREADS)]
    body = {"from_account": source, "to_account": target, "amount": 700, "asset_code": "USD"}

    results, errors = _race(
        THREADS,
        lambda i: _snapshot(
            clients[i].post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="t-1")
        ),
    )
    assert errors == []
    first = _check_once(results)
    assert (first["from_account"], first["to_account"], first["amount"]) == (source, target, 700)
    assert (_balance(alice, source), _balance(bob, target)) == (4_300, 700)
    transfers = _client(alice).get("/api/v1/transfers").json()["results"]
    assert [t["uuid"] for t in transfers if t["kind"] == "transfer"] == [first["uuid"]]


def test_one_key_with_different_bodies_at_once_moves_money_once_at_most(customers):
    alice, _ = customers
    account = _open(alice, funded={"USD": 10_000})
    clients = [_client(alice) for _ in range(THREADS)]
    url = f"/api/v1/accounts/{account}/withdraw"

    results, errors = _race(
        THREADS,
        lambda i: _snapshot(
            clients[i].post(
                url,
                {"amount": 100 + i, "asset_code": "USD"},
                format="json",
                HTTP_IDEMPOTENCY_KEY="mixed",
            )
        ),
    )
    assert errors == []
    statuses = Counter(status for status, _ in results)
    assert statuses[202] == 1 and statuses[409] == THREADS - 1, results
    for status, body in results:
        if status == 409:
            assert body["error"] == "IDEMPOTENCY_KEY_REUSED"
    winner = next(body for status, body in results if status == 202)
    assert _balance(alice, account) == 10_000 - winner["amount"]


def test_different_keys_on_one_account_all_land(customers):
    alice, bob = customers
    source = _open(alice, funded={"USD": 10_000})
    target = _open(bob)
    clients = [_client(alice) for _ in range(THREADS)]

    def request(i: int):
        if i % 2:
            response = clients[i].post(
                f"/api/v1/accounts/{source}/withdraw",
                {"amount": 100 * (i + 1), "asset_code": "USD"},
                format="json",
                HTTP_IDEMPOTENCY_KEY=f"w-{i}",
            )
        else:
            response = clients[i].post(
                "/api/v1/transfers",
                {
                    "from_account": source,
                    "to_account": target,
                    "amount": 100 * (i + 1),
                    "asset_code": "USD",
                },
                format="json",
                HTTP_IDEMPOTENCY_KEY=f"t-{i}",
            )
        return _snapshot(response)

    results, errors = _race(THREADS, request)
    assert errors == []
    # withdrawals are workflows (202), transfers are booked at once (201)
    assert [status for status, _ in results] == [201, 202] * (THREADS // 2), results
    moved = sum(100 * (i + 1) for i in range(THREADS))
    to_bob = sum(100 * (i + 1) for i in range(0, THREADS, 2))
    assert _balance(alice, source) == 10_000 - moved
    assert _balance(bob, target) == to_bob
    assert len({body["uuid"] for _, body in results}) == THREADS
    # the history's running balances are consistent: newest first, each step one movement
    history = _history(alice, source)
    assert history[0]["balance_after"] == 10_000 - moved
    for newer, older in itertools.pairwise(history):
        assert newer["balance_after"] == older["balance_after"] + newer["amount"]


def test_concurrent_withdrawals_never_overdraw(customers):
    alice, _ = customers
    account = _open(alice, funded={"USD": 2_500})
    clients = [_client(alice) for _ in range(THREADS)]

    results, errors = _race(
        THREADS,
        lambda i: _snapshot(
            clients[i].post(
                f"/api/v1/accounts/{account}/withdraw",
                {"amount": 1_000, "asset_code": "USD"},
                format="json",
                HTTP_IDEMPOTENCY_KEY=f"o-{i}",
            )
        ),
    )
    assert errors == []
    # Refused in the request when the balance is already short (422, no run), else accepted
    # (202) and decided by the debit step under the account's lock: two complete, the rest
    # fail and move nothing.
    statuses = Counter(status for status, _ in results)
    assert set(statuses) <= {202, 422} and statuses[202] >= 2, results
    for status, body in results:
        if status == 422:
            assert body["error"] == "INSUFFICIENT_FUNDS"
    outcomes = Counter(CustodianMovement.objects.values_list("status", flat=True))
    assert outcomes == Counter({"completed": 2, "failed": statuses[202] - 2}), outcomes
    assert _balance(alice, account) == 500
