import pytest

from apps.baskets.selectors import basket_compose_cost
from apps.payments.services import deposit_create
from tests.governance import conftest as governance

# The governance suite's fixtures: reference data, users, funded accounts, polls, API clients.
bank = governance.bank
client_for = governance.client_for
fund = governance.fund
make_poll = governance.make_poll
make_user = governance.make_user
now = governance.now
staff = governance.staff
user = governance.user


@pytest.fixture
def components_for(bank):
    """What composing `amount` GCU minor units takes {asset: minor units} at its quantities."""

    def components_for(amount: int, code: str = "GCU") -> dict[str, int]:
        return basket_compose_cost(code, amount)

    return components_for


@pytest.fixture
def gcu_account(fund, user, components_for):
    """A customer account holding exactly the components of `amount` GCU units."""

    def make(amount: int, owner=None, name: str = "Wallet"):
        return fund(owner or user, components_for(amount), name=name)

    return make


@pytest.fixture
def top_up():
    def top_up(account, holdings: dict[str, int]) -> None:
        for asset_code, amount in holdings.items():
            deposit_create(account_uuid=account.uuid, amount=amount, asset_code=asset_code)

    return top_up
