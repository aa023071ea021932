"""workflows events -> WorkflowRun and its WorkflowStep log (inside the write transaction)."""

from __future__ import annotations

from typing import Any

from apps.core.projection import EventRecord, Projector
from apps.workflows.events import (
    CompensationFailed,
    CompensationRequested,
    StepAttemptFailed,
    StepCompensated,
    StepCompleted,
    StepFailed,
    StepStarted,
    WorkflowCompensated,
    WorkflowCompleted,
    WorkflowRetried,
    WorkflowStarted,
)
from apps.workflows.models import WorkflowRun, WorkflowStep

workflows_projector = Projector("workflows", read_models=(WorkflowStep, WorkflowRun))

Status = WorkflowRun.Status
StepStatus = WorkflowStep.Status


def _touch(record: EventRecord, **changes: Any) -> None:
    WorkflowRun.objects.filter(uuid=record.aggregate_uuid).update(
        version=record.aggregate_version, updated_at=record.created_at, **changes
    )


def _step(record: EventRecord, name: str, **changes: Any) -> None:
    WorkflowStep.objects.filter(run_id=record.aggregate_uuid, name=name).update(**changes)


def _first_open_step(record: EventRecord) -> str:
    return (
        WorkflowStep.objects.filter(run_id=record.aggregate_uuid)
        .exclude(status=StepStatus.COMPLETED)
        .order_by("position")
        .values_list("name", flat=True)
        .first()
    ) or ""


@workflows_projector.on(WorkflowStarted)
def _started(evt: WorkflowStarted, record: EventRecord) -> None:
    WorkflowRun.objects.create(
        uuid=record.aggregate_uuid,
        workflow_type=evt.workflow_type,
        status=Status.RUNNING,
        input=evt.input,
        current_step=evt.plan[0]["name"],
        started_by=evt.started_by,
        parent_id=evt.parent,
        version=record.aggregate_version,
        created_at=record.created_at,
        updated_at=record.created_at,
    )
    WorkflowStep.objects.bulk_create(
        WorkflowStep(
            run_id=record.aggregate_uuid,
            position=position,
            name=step["name"],
            compensable=step["compensable"],
        )
        for position, step in enumerate(evt.plan)
    )


@workflows_projector.on(StepStarted)
def _step_started(evt: StepStarted, record: EventRecord) -> None:
    _step(record, evt.step, status=StepStatus.STARTED, attempts=evt.attempt)
    _touch(record)


@workflows_projector.on(StepCompleted)
def _step_completed(evt: StepCompleted, record: EventRecord) -> None:
    external_id = evt.result.get("external_id")
    _step(
        record,
        evt.step,
        status=StepStatus.COMPLETED,
        result=evt.result,
        attempts=evt.attempt,
        external_id=str(external_id)[:200] if external_id else "",
        completed_at=record.created_at,
    )
    _touch(record, current_step=_first_open_step(record))


@workflows_projector.on(StepAttemptFailed)
def _attempt_failed(evt: StepAttemptFailed, record: EventRecord) -> None:
    error = {"step": evt.step, "phase": evt.phase, **evt.error}
    _step(
        record, evt.step, error=error, **({"attempts": evt.attempt} if evt.phase == "run" else {})
    )
    _touch(record, error=error)


@workflows_projector.on(StepFailed)
def _step_failed(evt: StepFailed, record: EventRecord) -> None:
    error = {"step": evt.step, **evt.error}
    _step(record, evt.step, status=StepStatus.FAILED, error=error)
    _touch(record, status=Status.COMPENSATING, current_step="", error=error)


@workflows_projector.on(CompensationRequested)
def _compensation_requested(evt: CompensationRequested, record: EventRecord) -> None:
    error = {"code": "COMPENSATION_REQUESTED", "message": evt.reason, "by": evt.by}
    _touch(record, status=Status.COMPENSATING, current_step="", error=error)


@workflows_projector.on(StepCompensated)
def _step_compensated(evt: StepCompensated, record: EventRecord) -> None:
    _step(
        record,
        evt.step,
        status=StepStatus.COMPENSATED,
        compensation_result=evt.result,
        compensated_at=record.created_at,
    )
    _touch(record)


@workflows_projector.on(CompensationFailed)
def _compensation_failed(evt: CompensationFailed, record: EventRecord) -> None:
    error = {"step": evt.step, "phase": "compensate", **evt.error}
    _step(record, evt.step, status=StepStatus.COMPENSATION_FAILED, error=error)
    _touch(record, status=Status.FAILED, error=error)


@workflows_projector.on(WorkflowRetried)
def _retried(evt: WorkflowRetried, record: EventRecord) -> None:
    _touch(record, status=Status.COMPENSATING)


@workflows_projector.on(WorkflowCompleted)
def _completed(evt: WorkflowCompleted, record: EventRecord) -> None:
    _touch(
        record,
        status=Status.COMPLETED,
        current_step="",
        error=None,
        finished_at=record.created_at,
    )


@workflows_projector.on(WorkflowCompensated)
def _compensated(evt: WorkflowCompensated, record: EventRecord) -> None:
    _touch(record, status=Status.COMPENSATED, current_step="", finished_at=record.created_at)
