import uuid
from contextlib import contextmanager

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from apps.core.seeding import seed_reference_data
from apps.custodians.registry import connector_for
from apps.payments.services import deposit_create
from apps.users.services import token_create
from tests.factories import StaffFactory, UserFactory

_shared: list = []  # the open shared-data transactions, innermost last: (atomic, blocker)


def _roll_back_shared(until: int = 0) -> None:
    while len(_shared) > until:
        atomic, blocker = _shared.pop()
        with blocker.unblock():
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@contextmanager
def shared_data(django_db_blocker):
    """Data made once for many tests: inside a transaction that each test's own transaction
    nests in (as a savepoint), rolled back at the end. For non-transactional tests only: a
    transactional test rolls every shared transaction back before it starts (pytest-django
    runs transactional tests after all the others)."""
    depth = len(_shared)
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
    _shared.append((atomic, django_db_blocker))
    try:
        yield
    finally:
        _roll_back_shared(until=depth)


def _is_transactional(item) -> bool:
    marker = item.get_closest_marker("django_db")
    if marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])):
        return True
    return "transactional_db" in getattr(item, "fixturenames", ())


def pytest_runtest_setup(item):
    if _shared and _is_transactional(item):
        _roll_back_shared()


@pytest.fixture(scope="module")
def reference_data(django_db_setup, django_db_blocker):
    """Assets, rates and system accounts, seeded once for the module (it takes a second)."""
    with shared_data(django_db_blocker):
        with django_db_blocker.unblock():
            seed_reference_data()
        yield


@pytest.fixture
def bank(request, reference_data, db):
    if _is_transactional(request.node):
        pytest.fail("transactional tests seed with seed_reference_data(), not the bank fixture")


def client_for(user, scopes=None) -> APIClient:
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {token_create(user=user, name='t', scopes=scopes).secret}"
    )
    return client


@pytest.fixture
def alice(bank):
    return UserFactory(email="alice@example.com", name="Alice")


@pytest.fixture
def bob(bank):
    return UserFactory(email="bob@example.com", name="Bob")


@pytest.fixture
def api(alice):
    return client_for(alice)


@pytest.fixture
def bob_api(bob):
    return client_for(bob)


@pytest.fixture
def staff_api(bank):
    from django.contrib.auth.models import Group

    staff = StaffFactory()
    staff.groups.add(Group.objects.get(name="administrator"))
    return client_for(staff)


@pytest.fixture
def open_account(api):
    """Open an account through the API; `funded` books money on it through the ledger service
    and puts the same at the mock bank's omnibus account, so both books agree (a deposit
    through the API is a custodian workflow, tested in tests/custodians)."""

    def make(client=None, name="Main", funded=None):
        client = client or api
        account = client.post("/api/v1/accounts", {"name": name}, format="json").json()
        bank = connector_for().inner
        for asset_code, amount in (funded or {}).items():
            deposit_create(
                account_uuid=uuid.UUID(account["uuid"]), amount=amount, asset_code=asset_code
            )
            bank.fund(bank.settlement_account, asset_code, amount)
        return account

    return make


ERROR_KEYS = {"error", "message", "details"}


def assert_error(response, status: int, code: str) -> dict:
    """The response is the error body of API.md with this status and code; returns the body."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body["details"], dict), body
    return body
