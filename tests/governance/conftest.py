import datetime as dt

import pytest
from django.utils import timezone

from apps.accounts.services import account_open
from apps.core.seeding import seed_reference_data
from apps.governance import services as governance_services
from apps.governance.services import ExecutionWorkflow, poll_activate, poll_create
from apps.payments.services import deposit_create
from tests.factories import UserFactory

OPTIONS = {
    "yes_no": [{"id": "yes", "label": "Yes"}, {"id": "no", "label": "No"}],
    "default": [
        {"id": "a", "label": "Option A"},
        {"id": "b", "label": "Option B"},
        {"id": "c", "label": "Option C"},
    ],
}


@pytest.fixture
def bank(db):
    """Reference data: assets, demo exchange rates, system accounts, partner banks, GCU."""
    seed_reference_data()


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def user(bank):
    return UserFactory()


@pytest.fixture
def make_user(bank):
    return UserFactory


@pytest.fixture
def fund(bank):
    """Open an account for the user and deposit {asset: minor units} into it."""

    def fund(user, holdings: dict[str, int], name: str = "Main"):
        account = account_open(name=name, owner_uuid=user.uuid)
        for asset_code, amount in holdings.items():
            deposit_create(account_uuid=account.uuid, amount=amount, asset_code=asset_code)
        return account

    return fund


@pytest.fixture
def make_poll(bank, now):
    """Create a poll (window: an hour ago to a day ahead) and, by default, activate it."""

    def make(
        *,
        type: str = "single_choice",
        options: list | None = None,
        strategy: str = "one_user_one_vote",
        activate: bool = True,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        **extra,
    ):
        poll = poll_create(
            title=f"A {type} poll",
            type=type,
            options=options or OPTIONS.get(type, OPTIONS["default"]),
            start_date=start or now - dt.timedelta(hours=1),
            end_date=end or now + dt.timedelta(days=1),
            voting_power_strategy=strategy,
            **extra,
        )
        if activate:
            poll = poll_activate(poll_uuid=poll.uuid)
        return poll

    return make


@pytest.fixture
def recording_workflow(monkeypatch):
    """A registered execution workflow that records each run; returns the list of runs."""
    runs = []

    def run(context):
        runs.append(context)
        return {"winner": context.results["winner"]}

    workflow = ExecutionWorkflow(name="test.record", description="records its runs", run=run)
    monkeypatch.setitem(governance_services._workflows, workflow.name, workflow)
    return runs


@pytest.fixture
def client_for(bank):
    """An API client with a bearer token of the user (all scopes unless given)."""
    from tests.api.conftest import client_for

    return client_for


@pytest.fixture
def staff(bank):
    from django.contrib.auth.models import Group

    from tests.factories import StaffFactory

    member = StaffFactory()
    member.groups.add(Group.objects.get(name="administrator"))
    return member
