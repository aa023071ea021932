"""The embedded default: no broker, tasks run in-process once the starting transaction commits;
a run that has to wait is picked up again by resume_stale_workflows when it is due.

The test transaction never commits, so the commit hooks are captured and run as a commit would.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.accounts.selectors import balances_by_asset
from apps.custodians.services import custodian_withdrawal_start
from apps.workflows.models import WorkflowEvent
from apps.workflows.selectors import workflow_lease_get, workflow_run_get

pytestmark = pytest.mark.django_db


def test_a_started_run_is_advanced_by_the_task_as_soon_as_it_is_committed(
    funded_account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = custodian_withdrawal_start(
            account_uuid=funded_account.uuid,
            amount=4_000,
            asset_code="USD",
            destination="EXT-EAGER-1",
        )
        assert workflow_run_get(run.uuid).status == "running"  # nothing before the commit
    assert workflow_run_get(run.uuid).status == "completed"
    assert balances_by_asset(funded_account.uuid) == {"USD": 96_000}
    later = WorkflowEvent.objects.filter(aggregate_uuid=run.uuid).order_by("id")[1:]
    assert {e.meta_data["actor"]["id"] for e in later} == {"workflows.advance"}


def test_a_waiting_run_is_taken_up_by_the_resume_job_once_due(
    funded_account, mock_options, clock, settings, capsys, django_capture_on_commit_callbacks
):
    mock_options(settle_after_seconds=100)
    with django_capture_on_commit_callbacks(execute=True):
        run = custodian_withdrawal_start(
            account_uuid=funded_account.uuid,
            amount=4_000,
            asset_code="USD",
            destination="EXT-EAGER-1",
        )
    assert workflow_run_get(run.uuid).status == "running"  # pending at the bank: waiting
    due = workflow_lease_get(run.uuid).due_at
    with django_capture_on_commit_callbacks(execute=True) as dispatched:
        call_command("resume_stale_workflows")
    assert dispatched == [] and "resumed 0 workflow run(s)" in capsys.readouterr().out
    clock.advance(100 + settings.WORKFLOW_STALE_AFTER_SECONDS)
    assert clock.now > due
    with django_capture_on_commit_callbacks(execute=True):
        call_command("resume_stale_workflows")
    assert f"resumed {run.uuid}" in capsys.readouterr().out
    assert workflow_run_get(run.uuid).status == "completed"
