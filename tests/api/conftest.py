import pytest
from rest_framework.test import APIClient

from apps.core.seeding import seed_reference_data
from apps.users.services import token_create
from tests.factories import StaffFactory, UserFactory


@pytest.fixture
def bank(db):
    seed_reference_data()


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
    def make(client=None, name="Main", funded=None):
        client = client or api
        account = client.post("/api/v1/accounts", {"name": name}, format="json").json()
        for asset_code, amount in (funded or {}).items():
            response = client.post(
                f"/api/v1/accounts/{account['uuid']}/deposit",
                {"amount": amount, "asset_code": asset_code},
                format="json",
            )
            assert response.status_code == 201, response.json()
        return account

    return make
