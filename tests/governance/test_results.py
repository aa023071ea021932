"""Results (power-weighted totals, participation, winner), the execution workflow at close, the
job that closes expired polls, and the read models against a replay."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.core.management import call_command

from apps.core.errors import InvalidInput
from apps.core.replay import rebuild_projections
from apps.core.verification import broken_links
from apps.governance import services as governance_services
from apps.governance.aggregates import poll_results
from apps.governance.models import GovernanceEvent, Poll, Vote, VotingPower
from apps.governance.selectors import eligible_power, poll_results_get
from apps.governance.services import ExecutionWorkflow, poll_close, polls_close_expired, vote_cast
from apps.governance.tasks import close_expired_polls_task
from apps.payments.services import withdrawal_create
from apps.users.models import User

pytestmark = pytest.mark.django_db


def _everyone_else_inactive(*keep):
    User.objects.exclude(uuid__in=[u.uuid for u in keep]).update(is_active=False)


# --- totals ----------------------------------------------------------------------------------


def test_single_choice_totals_are_power_weighted(make_poll, fund, make_user):
    rich, poor_one, poor_two = make_user(), make_user(), make_user()
    fund(rich, {"USD": 500_00})
    fund(poor_one, {"USD": 100_00})
    fund(poor_two, {"USD": 100_00})
    poll = make_poll(strategy="asset_weighted")
    vote_cast(poll_uuid=poll.uuid, user=rich, selected_options=["a"])
    vote_cast(poll_uuid=poll.uuid, user=poor_one, selected_options=["b"])
    vote_cast(poll_uuid=poll.uuid, user=poor_two, selected_options=["b"])
    results = poll_results_get(Poll.objects.get(uuid=poll.uuid))
    assert results["totals"] == {"a": "5", "b": "2", "c": "0"}
    assert results["total_power"] == 7 and results["votes_count"] == 3
    assert results["winner"] == "a"  # more power, fewer voters


def test_multiple_choice_gives_each_chosen_option_the_full_power(make_poll, make_user):
    first, second = make_user(), make_user()
    poll = make_poll(type="multiple_choice")
    vote_cast(poll_uuid=poll.uuid, user=first, selected_options=["a", "b"])
    vote_cast(poll_uuid=poll.uuid, user=second, selected_options=["b"])
    assert Poll.objects.get(uuid=poll.uuid).totals == {"a": "1", "b": "2", "c": "0"}


def test_ranked_choice_is_a_borda_count(make_poll, make_user):
    first, second, third = make_user(), make_user(), make_user()
    poll = make_poll(type="ranked_choice")  # three options: first 3 points, second 2, third 1
    vote_cast(poll_uuid=poll.uuid, user=first, selected_options=["a", "b", "c"])
    vote_cast(poll_uuid=poll.uuid, user=second, selected_options=["c", "b"])
    vote_cast(poll_uuid=poll.uuid, user=third, selected_options=["b", "a"])
    results = poll_results_get(Poll.objects.get(uuid=poll.uuid))
    assert results["totals"] == {"a": "5", "b": "7", "c": "4"}
    assert results["winner"] == "b"


def test_weighted_choice_totals_are_power_times_percent(make_poll, fund, make_user):
    options = [{"id": "x", "label": "X"}, {"id": "y", "label": "Y"}]
    big, small = make_user(), make_user()
    fund(big, {"GCU": 300})
    fund(small, {"GCU": 100})
    poll = make_poll(type="weighted_choice", options=options, strategy="gcu_weighted")
    vote_cast(poll_uuid=poll.uuid, user=big, allocations={"x": "33.33", "y": "66.67"})
    vote_cast(poll_uuid=poll.uuid, user=small, allocations={"x": "100"})
    results = poll_results_get(Poll.objects.get(uuid=poll.uuid))
    assert results["totals"] == {"x": "199.99", "y": "200.01"}
    assert results["winner"] == "y"


def test_a_tie_or_no_vote_means_no_winner(make_poll, make_user):
    first, second = make_user(), make_user()
    poll = make_poll()
    assert poll_results_get(poll)["winner"] is None
    vote_cast(poll_uuid=poll.uuid, user=first, selected_options=["a"])
    vote_cast(poll_uuid=poll.uuid, user=second, selected_options=["b"])
    assert poll_results_get(Poll.objects.get(uuid=poll.uuid))["winner"] is None


# --- participation ---------------------------------------------------------------------------


def test_participation_is_the_power_cast_over_the_eligible_power(make_poll, fund, make_user):
    voter, abstainer, broke = make_user(), make_user(), make_user()
    _everyone_else_inactive(voter, abstainer, broke)
    fund(voter, {"USD": 300_00})
    fund(abstainer, {"USD": 900_00})
    fund(broke, {"USD": 50})
    poll = make_poll(strategy="asset_weighted", required_participation="25")
    vote_cast(poll_uuid=poll.uuid, user=voter, selected_options=["a"])
    poll = Poll.objects.get(uuid=poll.uuid)
    assert eligible_power(poll) == 3 + 9  # the broke user has no power to count
    results = poll_results_get(poll)
    assert results["participation"] == "25.00"
    assert results["required_participation"] == "25.00"
    assert results["participation_met"] is True


def test_one_user_one_vote_participation_counts_active_users(make_poll, make_user):
    voters = [make_user() for _ in range(3)]
    _everyone_else_inactive(*voters, make_user())
    poll = make_poll(required_participation="80")
    for voter in voters:
        vote_cast(poll_uuid=poll.uuid, user=voter, selected_options=["a"])
    results = poll_results_get(Poll.objects.get(uuid=poll.uuid))
    assert (results["eligible_power"], results["participation"]) == (4, "75.00")
    assert results["participation_met"] is False


def test_a_voters_fixed_power_counts_even_after_spending(make_poll, fund, make_user):
    voter = make_user()
    _everyone_else_inactive(voter)
    account = fund(voter, {"USD": 500_00})
    poll = make_poll(strategy="asset_weighted")
    vote_cast(poll_uuid=poll.uuid, user=voter, selected_options=["a"])
    withdrawal_create(account_uuid=account.uuid, amount=500_00, asset_code="USD")
    results = poll_results_get(Poll.objects.get(uuid=poll.uuid))
    assert (results["eligible_power"], results["participation"]) == (5, "100.00")


def test_results_arithmetic_rounds_participation_down_and_compares_exactly():
    results = poll_results(
        option_ids=["a", "b"],
        totals={"a": "2"},
        total_power=2,
        votes_count=2,
        eligible_power=3,
        required_participation=None,
        execution_workflow=None,
    )
    assert results["participation"] == "66.66"
    assert results["participation_met"] is True
    assert results["execution_due"] is False  # no workflow


# --- closing and the execution workflow ------------------------------------------------------


def test_closing_freezes_the_results(make_poll, make_user):
    voter = make_user()
    poll = make_poll()
    vote_cast(poll_uuid=poll.uuid, user=voter, selected_options=["c"])
    closed = poll_close(poll_uuid=poll.uuid)
    frozen = closed.results
    make_user()  # one more eligible user later changes nothing of a closed poll
    assert poll_results_get(Poll.objects.get(uuid=poll.uuid)) == frozen
    assert frozen["winner"] == "c" and frozen["execution_due"] is False


def test_a_poll_with_a_winner_and_participation_met_is_executed(
    make_poll, make_user, recording_workflow
):
    voter = make_user()
    _everyone_else_inactive(voter, make_user())
    poll = make_poll(required_participation="50", execution_workflow="test.record")
    vote_cast(poll_uuid=poll.uuid, user=voter, selected_options=["b"])
    executed = poll_close(poll_uuid=poll.uuid)
    assert executed.status == Poll.Status.EXECUTED
    assert executed.execution_outcome == {"winner": "b"}
    assert [run.poll_uuid for run in recording_workflow] == [poll.uuid]
    assert recording_workflow[0].results["participation"] == "50.00"


def test_a_poll_below_its_required_participation_is_not_executed(
    make_poll, make_user, recording_workflow
):
    voter = make_user()
    _everyone_else_inactive(voter, make_user(), make_user())
    poll = make_poll(required_participation="50", execution_workflow="test.record")
    vote_cast(poll_uuid=poll.uuid, user=voter, selected_options=["b"])
    closed = poll_close(poll_uuid=poll.uuid)
    assert closed.status == Poll.Status.CLOSED
    assert closed.results["winner"] == "b"
    assert closed.results["participation"] == "33.33"
    assert closed.results["participation_met"] is False
    assert closed.results["execution_due"] is False
    assert closed.executed_at is None and recording_workflow == []


def test_a_poll_without_a_winner_is_not_executed(make_poll, recording_workflow):
    poll = make_poll(execution_workflow="test.record")
    closed = poll_close(poll_uuid=poll.uuid)  # nobody voted
    assert closed.status == Poll.Status.CLOSED
    assert recording_workflow == []


def test_a_refused_workflow_fails_the_poll_and_undoes_its_work(make_poll, make_user, monkeypatch):
    def run(context):
        Vote.objects.filter(poll_id=context.poll_uuid).delete()  # undone by the savepoint
        raise InvalidInput("cannot apply", details={"why": ["test"]})

    workflow = ExecutionWorkflow(name="test.refuse", description="always refuses", run=run)
    monkeypatch.setitem(governance_services._workflows, workflow.name, workflow)
    voter = make_user()
    poll = make_poll(execution_workflow="test.refuse")
    vote_cast(poll_uuid=poll.uuid, user=voter, selected_options=["a"])
    failed = poll_close(poll_uuid=poll.uuid)
    assert failed.status == Poll.Status.FAILED
    assert failed.execution_error["error"] == "VALIDATION_ERROR"
    assert failed.results["winner"] == "a"
    assert Vote.objects.filter(poll_id=poll.uuid).count() == 1


def test_the_job_closes_only_expired_polls(make_poll, make_user, now):
    voter = make_user()
    expired = make_poll(start=now - dt.timedelta(days=2), end=now + dt.timedelta(minutes=1))
    running = make_poll()
    draft = make_poll(activate=False)
    vote_cast(poll_uuid=expired.uuid, user=voter, selected_options=["a"])
    assert polls_close_expired(now=now) == []
    later = now + dt.timedelta(minutes=2)
    assert polls_close_expired(now=later) == [expired.uuid]
    statuses = dict(Poll.objects.values_list("uuid", "status"))
    assert statuses == {expired.uuid: "closed", running.uuid: "active", draft.uuid: "draft"}
    assert Poll.objects.get(uuid=expired.uuid).results["totals"]["a"] == "1"


def test_the_celery_task_closes_expired_polls(make_poll, now):
    expired = make_poll(start=now - dt.timedelta(days=1), end=now + dt.timedelta(minutes=1))
    with mock.patch("django.utils.timezone.now", return_value=now + dt.timedelta(minutes=5)):
        result = close_expired_polls_task.apply().get()
    assert result == {"closed": [str(expired.uuid)]}
    closed = Poll.objects.get(uuid=expired.uuid)
    assert closed.status == "closed"
    actor = GovernanceEvent.objects.filter(event_type="governance.PollClosed").get().meta_data
    assert actor["actor"] == {"type": "task", "id": "governance.close_expired_polls"}


# --- the event store -------------------------------------------------------------------------


def test_read_models_equal_a_replay_and_the_chains_verify(
    make_poll, make_user, fund, recording_workflow
):
    voters = [make_user() for _ in range(3)]
    for index, voter in enumerate(voters):
        fund(voter, {"USD": (index + 1) * 100_00})
    weighted = make_poll(
        type="weighted_choice",
        options=[{"id": "x", "label": "X"}, {"id": "y", "label": "Y"}],
        strategy="asset_weighted",
        execution_workflow="test.record",
    )
    single = make_poll()
    for voter in voters:
        vote_cast(poll_uuid=weighted.uuid, user=voter, allocations={"x": "25", "y": "75"})
        vote_cast(poll_uuid=single.uuid, user=voter, selected_options=["b"])
    poll_close(poll_uuid=weighted.uuid)

    def snapshot():
        polls = list(Poll.objects.order_by("uuid").values())
        votes = list(Vote.objects.order_by("uuid").values())
        powers = list(VotingPower.objects.values_list("poll_id", "user_uuid", "voting_power"))
        return polls, votes, sorted(powers)

    live = snapshot()
    assert rebuild_projections("governance") > 0
    assert snapshot() == live
    assert broken_links() == []
    call_command("verify_events")
