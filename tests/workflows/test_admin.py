"""Workflow runs in the console: the run with its step log and lease; retry and compensate
through the services, for staff allowed to operate runs."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from apps.workflows.selectors import workflow_run_get
from apps.workflows.services import workflow_advance, workflow_start
from tests.factories import StaffFactory, UserFactory
from tests.workflows import sample

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:workflows_workflowrun_changelist"


@pytest.fixture
def run(tally):
    sample.world.plan("run", "confirm", "pending")
    run = workflow_start(workflow_type=sample.TRIP, input={"tally": str(tally.uuid), "amount": 3})
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    return run


def staff_in(client, role: str):
    staff = StaffFactory()
    staff.groups.add(Group.objects.get(name=role))
    client.force_login(staff)
    return client


def test_the_run_page_shows_the_step_log_and_the_lease(client, run):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get(reverse(CHANGELIST)).status_code == 200
    page = client.get(reverse("admin:workflows_workflowrun_change", args=[run.uuid]))
    assert page.status_code == 200
    content = page.content.decode()
    for text in ("flight", "charge", "hotel", "confirm", "due ", "run confirm, attempt"):
        assert text in content
    assert client.get(reverse("admin:workflows_workflowrun_add")).status_code == 403


def test_an_operator_compensates_a_run_after_giving_a_reason(client, run):
    staff_in(client, "operator")
    url = reverse(CHANGELIST)
    form = {"action": "compensate", "_selected_action": [str(run.uuid)]}
    asking = client.post(url, form)
    assert asking.status_code == 200 and b"reason" in asking.content
    assert workflow_run_get(run.uuid).status == "running"
    done = client.post(url, {**form, "apply": "1", "reason": "customer cancelled"}, follow=True)
    assert done.status_code == 200
    run = workflow_run_get(run.uuid)
    assert run.status == "compensating"
    assert run.error["message"] == "customer cancelled"
    assert run.error["by"]["type"] == "staff"


def test_an_operator_retries_a_failed_run(client, tally):
    sample.world.plan("run", "hotel", "permanent")
    sample.world.plan("compensate", "flight", "permanent")
    run = workflow_start(workflow_type=sample.TRIP, input={"tally": str(tally.uuid), "amount": 1})
    assert workflow_advance(run_uuid=run.uuid) == "failed"
    staff_in(client, "operator")
    client.post(
        reverse(CHANGELIST),
        {"action": "retry", "_selected_action": [str(run.uuid)], "apply": "1", "confirm": "on"},
    )
    assert workflow_run_get(run.uuid).status == "compensating"


def test_a_refusal_is_shown_and_changes_nothing(client, tally):
    run = workflow_start(workflow_type=sample.TRIP, input={"tally": str(tally.uuid), "amount": 1})
    workflow_advance(run_uuid=run.uuid)
    staff_in(client, "operator")
    response = client.post(
        reverse(CHANGELIST),
        {
            "action": "compensate",
            "_selected_action": [str(run.uuid)],
            "apply": "1",
            "reason": "too late",
        },
        follow=True,
    )
    assert b"WORKFLOW_STATE_CONFLICT" in response.content
    assert workflow_run_get(run.uuid).status == "completed"


def test_compliance_sees_runs_but_may_not_operate_them(client, run):
    staff_in(client, "compliance")
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    assert b'value="compensate"' not in page.content and b'value="retry"' not in page.content
    client.post(
        reverse(CHANGELIST),
        {"action": "compensate", "_selected_action": [str(run.uuid)], "apply": "1", "reason": "no"},
    )
    assert workflow_run_get(run.uuid).status == "running"
