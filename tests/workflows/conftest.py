import pytest

from apps.core.seeding import seed_reference_data
from tests.eventstore_app.services import tally_open
from tests.workflows import sample
from tests.workflows.support import install_clock, set_eager


@pytest.fixture(autouse=True)
def _eager_tasks():
    """Tasks run in-process: on the PostgreSQL pass REDIS_URL would send them to a broker that
    nobody reads (the Celery worker tests switch this off themselves)."""
    previous = set_eager(True)
    yield
    set_eager(previous)


@pytest.fixture(autouse=True)
def _fresh_world():
    sample.world = sample.World()
    yield


@pytest.fixture(autouse=True)
def _fast_retries(settings):
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
def tally(db):
    return tally_open(name="trip-budget")
