import pytest

from apps.accounts.services import account_open
from apps.core.seeding import seed_reference_data
from apps.custodians.registry import connector_for
from apps.payments.services import deposit_create
from tests.factories import UserFactory
from tests.workflows.support import install_clock

OMNIBUS = "FINAEGIS-OMNIBUS"


@pytest.fixture(autouse=True)
def _eager_tasks(eager_tasks):
    """Every custodian test runs its workflows in process."""


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    """Connector retries do not sleep; the workflow backoff is short and moves with the clock."""
    settings.CUSTODIAN_RETRY = {"attempts": 3, "base_delay": 0.0, "max_delay": 0.0}
    settings.WORKFLOW_RETRY_BASE_SECONDS = 10
    settings.WORKFLOW_RETRY_MAX_SECONDS = 80


@pytest.fixture
def clock(monkeypatch):
    return install_clock(monkeypatch)


@pytest.fixture
def bank(db):
    seed_reference_data()


@pytest.fixture
def mock_options(settings):
    """Set the mock bank's options (fault injection) for the rest of the test."""

    def configure(**options):
        connectors = {code: dict(config) for code, config in settings.CUSTODIAN_CONNECTORS.items()}
        connectors["mock_bank"]["options"] = options
        settings.CUSTODIAN_CONNECTORS = connectors
        return connector_for("mock_bank").inner

    return configure


@pytest.fixture
def mock_bank(bank):
    return connector_for("mock_bank").inner


@pytest.fixture
def funded_account(bank, mock_bank):
    """A customer account holding 1,000.00 USD, and the mock bank holding the same for us: the
    books of both sides agree."""
    account = account_open(name="Main", owner_uuid=UserFactory().uuid)
    deposit_create(account_uuid=account.uuid, amount=100_000, asset_code="USD")
    mock_bank.fund(OMNIBUS, "USD", 100_000)
    return account
