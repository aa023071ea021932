"""The saga runtime through its services: steps in order, saved after each, idempotent by run
and step, compensated newest first, retried with backoff, waiting, leases, resumption."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from apps.core.errors import InvalidInput, NotFound
from apps.core.models import AggregateStream
from apps.core.replay import rebuild_projections
from apps.core.verification import broken_links
from apps.workflows import faults
from apps.workflows.aggregates import WorkflowStateConflict
from apps.workflows.models import WorkflowEvent, WorkflowLease, WorkflowRun, WorkflowStep
from apps.workflows.selectors import workflow_lease_get, workflow_run_get, workflow_steps
from apps.workflows.services import (
    WorkflowBusy,
    workflow_advance,
    workflow_compensate,
    workflow_resume_stale,
    workflow_retry,
    workflow_start,
)
from tests.eventstore_app.models import TallyEvent, TallyView
from tests.workflows import sample

pytestmark = pytest.mark.django_db


class SimulatedCrash(BaseException):
    """What os._exit does to a worker, minus the exit: nothing after it runs (no except
    Exception catches it), the lease stays held, the transaction in progress is rolled back."""


def start(tally, amount=5, **changes):
    return workflow_start(
        workflow_type=sample.TRIP, input={"tally": str(tally.uuid), "amount": amount, **changes}
    )


def event_types(run) -> list[str]:
    return list(
        WorkflowEvent.objects.filter(aggregate_uuid=run.uuid)
        .order_by("aggregate_version")
        .values_list("event_type", flat=True)
    )


def step_events(run) -> list[tuple[str, str]]:
    rows = WorkflowEvent.objects.filter(aggregate_uuid=run.uuid).order_by("aggregate_version")
    return [
        (row.event_type.split(".")[1], row.event_data.get("step", ""))
        for row in rows
        if "step" in row.event_data
    ]


def steps_of(run) -> dict[str, WorkflowStep]:
    return {step.name: step for step in workflow_steps(run.uuid)}


def tally_total(tally) -> int:
    return TallyView.objects.get(uuid=tally.uuid).total


# --- the happy path -------------------------------------------------------------------------


def test_a_run_walks_its_steps_in_order_and_completes(tally):
    run = start(tally)
    assert run.status == "running" and run.current_step == "flight"
    assert workflow_advance(run_uuid=run.uuid) == "completed"
    run = workflow_run_get(run.uuid)
    assert (run.status, run.current_step, run.error) == ("completed", "", None)
    assert run.finished_at is not None
    assert sample.world.log == ["book flight", "charge", "book hotel", "confirm"]
    assert event_types(run) == [
        "workflows.WorkflowStarted",
        "workflows.StepStarted",  # flight reaches outside and has a compensation
        "workflows.StepCompleted",
        "workflows.StepCompleted",  # charge is local: its completion commits with its effect
        "workflows.StepStarted",
        "workflows.StepCompleted",
        "workflows.StepCompleted",  # confirm has nothing to undo: no StepStarted
        "workflows.WorkflowCompleted",
    ]
    steps = steps_of(run)
    assert [s.status for s in steps.values()] == ["completed"] * 4
    assert steps["flight"].result == {"booking": f"{run.uuid}:flight"}
    assert steps["charge"].result == {"charged": 5}
    assert tally_total(tally) == 5
    assert workflow_lease_get(run.uuid).due_at is None  # nothing left to do
    assert workflow_advance(run_uuid=run.uuid) == "not_due"


def test_the_run_is_saved_after_every_step(tally):
    seen = []

    def look(ctx):
        seen.append({s.name: s.status for s in workflow_steps(ctx.run_uuid)})

    sample.world.plan("run", "hotel", look)
    sample.world.plan("run", "confirm", look)
    run = start(tally)
    workflow_advance(run_uuid=run.uuid)
    assert seen[0] == {
        "flight": "completed",
        "charge": "completed",
        "hotel": "started",
        "confirm": "pending",
    }
    assert seen[1]["hotel"] == "completed" and seen[1]["confirm"] == "pending"


def test_every_step_sees_the_results_before_it_and_one_key_per_run_and_step(tally):
    run = start(tally)
    workflow_advance(run_uuid=run.uuid)
    by_step = {ctx.step: ctx for ctx in sample.world.contexts}
    assert by_step["hotel"].results == {
        "flight": {"booking": f"{run.uuid}:flight"},
        "charge": {"charged": 5},
    }
    assert by_step["hotel"].idempotency_key == f"{run.uuid}:hotel"
    assert by_step["confirm"].attempt == 1


def test_events_written_by_a_step_name_the_run_as_actor_and_correlation(tally):
    run = start(tally)
    workflow_advance(run_uuid=run.uuid)
    charge = TallyEvent.objects.filter(aggregate_uuid=tally.uuid).order_by("id").last()
    assert charge.meta_data["actor"] == {
        "type": "workflow",
        "id": str(run.uuid),
        "workflow": sample.TRIP,
        "step": "charge",
    }
    assert charge.meta_data["correlation_id"] == str(run.uuid)
    assert charge.meta_data["causation_id"] == f"{run.uuid}:charge"


def test_starting_checks_the_type_and_input_and_is_idempotent_by_uuid(tally):
    with pytest.raises(InvalidInput):
        workflow_start(workflow_type="tests.nothing", input={})
    with pytest.raises(InvalidInput):
        workflow_start(workflow_type=sample.TRIP, input={"tally": str(tally.uuid), "amount": "5"})
    run_uuid = uuid.uuid4()
    first = workflow_start(
        workflow_type=sample.TRIP,
        input={"tally": str(tally.uuid), "amount": 5},
        run_uuid=run_uuid,
    )
    again = workflow_start(
        workflow_type=sample.TRIP,
        input={"tally": str(tally.uuid), "amount": 5},
        run_uuid=run_uuid,
    )
    assert first.uuid == again.uuid == run_uuid
    assert WorkflowEvent.objects.filter(aggregate_uuid=run_uuid).count() == 1
    with pytest.raises(NotFound):
        workflow_advance(run_uuid=uuid.uuid4())


# --- compensation ---------------------------------------------------------------------------


def test_a_failed_step_compensates_what_was_done_newest_first(tally):
    sample.world.plan("run", "hotel", "permanent")
    run = start(tally)
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    # hotel began and failed: its effect is in doubt, so it is undone first, without a result
    assert sample.world.log == [
        "book flight",
        "charge",
        "cancel hotel (in doubt)",
        "refund",
        "cancel flight",
    ]
    assert tally_total(tally) == 0
    assert sample.world.bookings[f"{run.uuid}:flight"]["cancelled"] is True
    run = workflow_run_get(run.uuid)
    assert run.status == "compensated"
    assert run.error["step"] == "hotel" and run.error["code"] == "WORKFLOW_STEP_FAILED"
    steps = steps_of(run)
    assert steps["hotel"].compensation_result == {"found": False}
    assert steps["charge"].compensation_result == {"refunded": 5}
    assert steps["flight"].compensation_result == {"found": True}
    assert steps["confirm"].status == "pending"
    assert [e for e in step_events(run) if e[0] == "StepCompensated"] == [
        ("StepCompensated", "hotel"),
        ("StepCompensated", "charge"),
        ("StepCompensated", "flight"),
    ]


def test_a_failing_local_step_changes_nothing_and_only_earlier_steps_are_undone(tally):
    sample.world.plan("run", "charge", "permanent")
    run = start(tally)
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    assert sample.world.log == ["book flight", "cancel flight"]
    assert tally_total(tally) == 0
    assert steps_of(run)["charge"].status == "failed"


def test_a_local_domain_error_is_a_failure_that_rolls_the_step_back(tally):
    run = start(tally, amount=2_000_000)  # above the tally's limit: TALLY_LIMIT_REACHED
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    run = workflow_run_get(run.uuid)
    assert run.error["code"] == "TALLY_LIMIT_REACHED" and run.error["step"] == "charge"
    assert TallyView.objects.get(uuid=tally.uuid).increments == 0


def test_failing_at_the_first_step_leaves_nothing_to_undo_but_its_own_doubt(tally):
    sample.world.plan("run", "flight", "permanent")
    run = start(tally)
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    assert sample.world.log == ["cancel flight (in doubt)"]


def test_a_failed_compensation_stops_the_run_for_an_operator_who_retries(tally):
    sample.world.plan("run", "hotel", "permanent")
    sample.world.plan("compensate", "flight", "permanent")
    run = start(tally)
    assert workflow_advance(run_uuid=run.uuid) == "failed"
    run = workflow_run_get(run.uuid)
    assert run.status == "failed"
    assert run.error["step"] == "flight" and run.error["phase"] == "compensate"
    assert steps_of(run)["flight"].status == "compensation_failed"
    assert steps_of(run)["charge"].status == "compensated"
    assert workflow_lease_get(run.uuid).due_at is None  # waits for a person, not a job
    assert workflow_resume_stale() == []

    workflow_retry(run_uuid=run.uuid)  # the outside is fixed now: the plan has run out
    assert workflow_run_get(run.uuid).status == "compensating"
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    assert sample.world.log[-1] == "cancel flight"
    assert "workflows.WorkflowRetried" in event_types(run)
    assert tally_total(tally) == 0


def test_compensating_a_running_run_on_request(tally, clock):
    sample.world.plan("run", "confirm", "pending")
    run = start(tally)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    workflow_compensate(run_uuid=run.uuid, reason="customer cancelled the trip")
    run = workflow_run_get(run.uuid)
    assert run.status == "compensating"
    assert run.error["code"] == "COMPENSATION_REQUESTED"
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    assert sample.world.log[-3:] == ["cancel hotel", "refund", "cancel flight"]
    assert tally_total(tally) == 0


def test_a_finished_run_can_be_neither_compensated_nor_retried(tally):
    run = start(tally)
    workflow_advance(run_uuid=run.uuid)
    with pytest.raises(WorkflowStateConflict):
        workflow_compensate(run_uuid=run.uuid, reason="too late")
    with pytest.raises(WorkflowStateConflict):
        workflow_retry(run_uuid=run.uuid)
    assert workflow_run_get(run.uuid).status == "completed"


# --- transient failures and waiting ---------------------------------------------------------


def test_transient_failures_are_retried_with_growing_backoff_then_succeed(tally, clock):
    sample.world.plan("run", "hotel", "transient", "transient")
    run = start(tally)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    first_due = workflow_lease_get(run.uuid).due_at - clock.now
    # base 10 s: the first wait is 5..10 s (equal jitter), the second 10..20 s
    assert dt.timedelta(seconds=5) <= first_due <= dt.timedelta(seconds=10)
    assert workflow_advance(run_uuid=run.uuid) == "not_due"
    clock.advance(first_due.total_seconds())
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    second_due = workflow_lease_get(run.uuid).due_at - clock.now
    assert dt.timedelta(seconds=10) <= second_due <= dt.timedelta(seconds=20)
    assert workflow_run_get(run.uuid).error["code"] == "TransientStepError"
    clock.advance(second_due.total_seconds())
    assert workflow_advance(run_uuid=run.uuid) == "completed"
    assert steps_of(run)["hotel"].attempts == 3
    assert [e for e in step_events(run) if e[0] == "StepAttemptFailed"] == [
        ("StepAttemptFailed", "hotel"),
        ("StepAttemptFailed", "hotel"),
    ]
    assert sample.world.log.count("book hotel") == 1


def test_an_unexpected_error_is_retried_and_after_the_last_attempt_compensated(
    tally, clock, settings
):
    settings.WORKFLOW_STEP_MAX_ATTEMPTS = 3
    sample.world.plan("run", "hotel", "unexpected", "unexpected", "unexpected")
    run = start(tally)
    for _ in range(2):
        assert workflow_advance(run_uuid=run.uuid) == "waiting"
        clock.advance(100)
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    run = workflow_run_get(run.uuid)
    assert run.error["code"] == "RuntimeError" and run.error["step"] == "hotel"
    assert tally_total(tally) == 0


def test_a_transient_compensation_failure_is_retried(tally, clock):
    sample.world.plan("run", "hotel", "permanent")
    sample.world.plan("compensate", "charge", "transient")
    run = start(tally)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    assert workflow_run_get(run.uuid).status == "compensating"
    assert tally_total(tally) == 5
    clock.advance(100)
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    assert tally_total(tally) == 0


def test_a_pending_step_waits_and_polls_without_using_up_attempts(tally, clock, settings):
    settings.WORKFLOW_STEP_MAX_ATTEMPTS = 2
    sample.world.plan("run", "confirm", "pending", "pending", "pending")
    run = start(tally)
    for _ in range(3):
        assert workflow_advance(run_uuid=run.uuid) == "waiting"
        assert workflow_lease_get(run.uuid).due_at == clock.now + dt.timedelta(seconds=10)
        clock.advance(10)
    assert workflow_advance(run_uuid=run.uuid) == "completed"


def test_a_step_pending_past_its_deadline_fails_and_compensates(tally, clock):
    sample.world.plan("run", "confirm", *["pending"] * 1000)
    run = start(tally)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    clock.advance(3590)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    # the wait never overshoots the deadline (the step's timeout is an hour)
    assert workflow_lease_get(run.uuid).due_at <= clock.now + dt.timedelta(seconds=10)
    clock.advance(10)
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    run = workflow_run_get(run.uuid)
    assert run.error["code"] == "WORKFLOW_STEP_TIMED_OUT" and run.error["step"] == "confirm"
    assert sample.world.log[-3:] == ["cancel hotel", "refund", "cancel flight"]


def test_retry_takes_a_waiting_run_up_at_once(tally, clock):
    sample.world.plan("run", "hotel", "transient")
    run = start(tally)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    assert workflow_advance(run_uuid=run.uuid) == "not_due"
    workflow_retry(run_uuid=run.uuid)
    assert workflow_advance(run_uuid=run.uuid) == "completed"


# --- leases, crashes and resumption ---------------------------------------------------------


@pytest.fixture
def crash_after(settings, monkeypatch):
    def arm(step: str) -> None:
        settings.WORKFLOW_CRASH_AFTER_STEP = f"{sample.TRIP}:{step}"

        def die():
            settings.WORKFLOW_CRASH_AFTER_STEP = ""  # the next worker is a fresh process
            raise SimulatedCrash

        monkeypatch.setattr(faults, "_die", die)

    return arm


def test_a_worker_that_dies_after_an_outside_effect_is_resumed_and_the_effect_is_not_repeated(
    tally, clock, crash_after, settings
):
    crash_after("hotel")
    run = start(tally)
    with pytest.raises(SimulatedCrash):
        workflow_advance(run_uuid=run.uuid)
    assert sample.world.log == ["book flight", "charge", "book hotel"]
    assert steps_of(run)["hotel"].status == "started"  # booked outside, not recorded
    lease = workflow_lease_get(run.uuid)
    assert lease.owner and lease.locked_until > clock.now
    assert workflow_resume_stale() == []  # the lease is still valid: maybe it is only slow
    assert workflow_advance(run_uuid=run.uuid) == "busy"

    clock.advance(settings.WORKFLOW_LEASE_SECONDS + 1)
    assert workflow_resume_stale() == [run.uuid]
    assert workflow_advance(run_uuid=run.uuid) == "completed"
    # booked once: the second attempt found the first one's booking by its key
    assert sample.world.log == ["book flight", "charge", "book hotel", "book hotel", "confirm"]
    assert len(sample.world.bookings) == 2
    assert steps_of(run)["hotel"].attempts == 2
    assert tally_total(tally) == 5


def test_a_worker_that_dies_inside_a_local_step_leaves_no_trace_of_it(
    tally, clock, crash_after, settings
):
    crash_after("charge")
    run = start(tally)
    with pytest.raises(SimulatedCrash):
        workflow_advance(run_uuid=run.uuid)
    assert tally_total(tally) == 0  # rolled back with the step's transaction
    assert steps_of(run)["charge"].status == "pending"
    clock.advance(settings.WORKFLOW_LEASE_SECONDS + 1)
    assert workflow_resume_stale() == [run.uuid]
    assert workflow_advance(run_uuid=run.uuid) == "completed"
    assert tally_total(tally) == 5
    assert TallyView.objects.get(uuid=tally.uuid).increments == 1


def test_a_step_every_worker_dies_on_is_abandoned_and_compensated(
    tally, clock, settings, monkeypatch
):
    settings.WORKFLOW_STEP_MAX_ATTEMPTS = 2
    settings.WORKFLOW_CRASH_AFTER_STEP = f"{sample.TRIP}:hotel"

    def die():
        raise SimulatedCrash

    monkeypatch.setattr(faults, "_die", die)
    run = start(tally)
    for _ in range(2):
        with pytest.raises(SimulatedCrash):
            workflow_advance(run_uuid=run.uuid)
        clock.advance(settings.WORKFLOW_LEASE_SECONDS + 1)
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    run = workflow_run_get(run.uuid)
    assert run.error["code"] == "WORKFLOW_STEP_ABANDONED"
    # the hotel was booked before each crash; undone although its step never completed
    assert sample.world.log[-3:] == ["cancel hotel (in doubt)", "refund", "cancel flight"]
    assert steps_of(run)["hotel"].compensation_result == {"found": True}
    assert all(booking["cancelled"] for booking in sample.world.bookings.values())


def test_a_worker_whose_lease_was_taken_over_cannot_record_its_step(tally):
    def taken_over(ctx):
        # Another worker claimed the run while this one was stalled in the step.
        WorkflowLease.objects.filter(run_uuid=ctx.run_uuid).update(owner="another-worker")

    sample.world.plan("run", "hotel", taken_over)
    run = start(tally)
    assert workflow_advance(run_uuid=run.uuid) == "lease_lost"
    assert steps_of(run)["hotel"].status == "started"
    assert "workflows.WorkflowCompleted" not in event_types(run)


def test_compensate_is_refused_while_a_worker_holds_the_run(tally, clock):
    run = start(tally)
    WorkflowLease.objects.filter(run_uuid=run.uuid).update(
        owner="busy-worker", locked_until=clock.now + dt.timedelta(seconds=60)
    )
    with pytest.raises(WorkflowBusy):
        workflow_compensate(run_uuid=run.uuid, reason="stop")
    assert workflow_run_get(run.uuid).status == "running"
    with pytest.raises(NotFound):
        workflow_compensate(run_uuid=uuid.uuid4(), reason="stop")


def test_resume_picks_dead_and_lost_runs_only(tally, clock, settings):
    dead, waiting, lost, done, fresh = (start(tally) for _ in range(5))
    WorkflowLease.objects.filter(run_uuid=dead.uuid).update(
        owner="dead-worker", locked_until=clock.now - dt.timedelta(seconds=1)
    )
    WorkflowLease.objects.filter(run_uuid=waiting.uuid).update(
        due_at=clock.now + dt.timedelta(seconds=30)
    )
    WorkflowLease.objects.filter(run_uuid=lost.uuid).update(
        due_at=clock.now - dt.timedelta(seconds=settings.WORKFLOW_STALE_AFTER_SECONDS + 1)
    )
    WorkflowLease.objects.filter(run_uuid=fresh.uuid).update(due_at=clock.now)
    workflow_advance(run_uuid=done.uuid)
    assert set(workflow_resume_stale()) == {dead.uuid, lost.uuid}
    assert workflow_resume_stale(limit=1) in ([dead.uuid], [lost.uuid])


# --- the log is an event store like any other -----------------------------------------------


def test_the_run_and_step_read_models_equal_a_replay_and_the_chains_verify(tally, clock):
    sample.world.plan("run", "hotel", "transient", "permanent")
    sample.world.plan("compensate", "flight", "permanent")
    failed = start(tally)
    workflow_advance(run_uuid=failed.uuid)
    clock.advance(100)
    workflow_advance(run_uuid=failed.uuid)
    completed = start(tally)
    workflow_advance(run_uuid=completed.uuid)

    def snapshot():
        runs = sorted(WorkflowRun.objects.values_list(), key=str)
        steps = sorted(
            (s[1:] for s in WorkflowStep.objects.values_list()), key=str
        )  # without the surrogate id
        return runs, steps

    before = snapshot()
    rebuild_projections("workflows")
    assert snapshot() == before
    assert broken_links() == []
    assert AggregateStream.objects.filter(aggregate_type="workflows.WorkflowRun").count() == 2
