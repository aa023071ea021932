import pytest

from apps.accounts.services import account_open
from apps.core.seeding import seed_reference_data
from apps.payments.services import deposit_create
from tests.factories import UserFactory


@pytest.fixture
def bank(db):
    """Reference data: assets, demo exchange rates, system accounts."""
    seed_reference_data()


@pytest.fixture
def customer(bank):
    return UserFactory()


@pytest.fixture
def open_account(customer):
    def make(name="Main", owner=None, funded=None):
        account = account_open(name=name, owner_uuid=(owner or customer).uuid)
        for asset_code, amount in (funded or {}).items():
            deposit_create(account_uuid=account.uuid, amount=amount, asset_code=asset_code)
        return account

    return make
