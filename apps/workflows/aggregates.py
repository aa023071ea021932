"""The WorkflowRun aggregate: the rules of a saga's life, independent of what its steps do.

A run walks its plan in order while `running`; a failure turns it `compensating`, and then the
steps that did something are undone newest first; a compensation that cannot be done leaves it
`failed` for an operator, who may retry. `completed` and `compensated` are final.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from apps.core.aggregates import AggregateRoot, applies
from apps.core.errors import DomainError, InvalidInput
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

RUNNING = "running"
COMPLETED = "completed"
COMPENSATING = "compensating"
COMPENSATED = "compensated"
FAILED = "failed"
ACTIVE = (RUNNING, COMPENSATING)


class WorkflowStateConflict(DomainError):
    code = "WORKFLOW_STATE_CONFLICT"
    default_message = "The workflow run is not in a state that allows this."
    http_status = 409


class StepAlreadyCompleted(WorkflowStateConflict):
    """Another worker recorded the step first; the caller moves on."""

    code = "WORKFLOW_STEP_ALREADY_COMPLETED"
    default_message = "The step has already been completed."


class WorkflowRun(AggregateRoot):
    """A run of a workflow, event-sourced rather than a state table with a step log.

    Its log records money leaving the bank through a custodian and what undid it, so it gets
    the ledger's guarantees: append-only rows, a hash chain that `verify_events` checks, the
    actor in every event's meta_data, read models that `reconcile` rebuilds and compares, and
    the stream-row lock that orders concurrent writers. Every fact is already an event
    (started, step completed, failed, compensated), so a state table would only duplicate
    them. What changes constantly and means nothing later, which worker holds the run and until
    when, stays out of the events, in the plain `WorkflowLease` table (see models.py).
    """

    aggregate_type = "workflows.WorkflowRun"

    def __init__(self, aggregate_uuid: uuid.UUID):
        super().__init__(aggregate_uuid)
        self.workflow_type = ""
        self.input: dict[str, Any] = {}
        self.plan: list[dict[str, Any]] = []
        self.status = "new"
        self.parent: str | None = None
        self.results: dict[str, dict[str, Any]] = {}
        self.completed: list[str] = []  # in the order they completed
        self.started: list[str] = []  # steps with outside effects that began (StepStarted)
        self.compensated: dict[str, dict[str, Any]] = {}
        self.error: dict[str, Any] | None = None

    # --- queries -------------------------------------------------------------------------------

    def step_names(self) -> list[str]:
        return [step["name"] for step in self.plan]

    def next_step(self) -> str | None:
        """The first planned step not completed yet, or None when every step is done."""
        return next((name for name in self.step_names() if name not in self.results), None)

    def next_compensation(self) -> str | None:
        """The step to undo next: newest first, and a step that began but never completed (its
        effect is in doubt) before everything that completed."""
        compensable = {step["name"] for step in self.plan if step["compensable"]}
        in_doubt = [name for name in self.started if name not in self.results]
        for name in [*reversed(in_doubt), *reversed(self.completed)]:
            if name in compensable and name not in self.compensated:
                return name
        return None

    # --- commands ------------------------------------------------------------------------------

    def start(
        self,
        *,
        workflow_type: str,
        input: dict[str, Any],
        plan: list[dict[str, Any]],
        started_by: dict[str, Any],
        parent: uuid.UUID | None,
    ) -> None:
        names = [step["name"] for step in plan]
        if not names:
            raise InvalidInput(details={"plan": ["a workflow needs at least one step"]})
        if len(set(names)) != len(names):
            raise InvalidInput(details={"plan": ["step names must be unique"]})
        self.record(
            WorkflowStarted(
                workflow_type=workflow_type,
                input=input,
                plan=plan,
                started_by=started_by,
                parent=parent,
            )
        )

    def start_step(self, *, step: str, attempt: int) -> None:
        self._require_next(step)
        self.record(StepStarted(step=step, attempt=attempt))

    def complete_step(self, *, step: str, result: dict[str, Any], attempt: int) -> None:
        if step in self.results:
            raise StepAlreadyCompleted(details={"run": str(self.uuid), "step": step})
        self._require_next(step)
        self.record(StepCompleted(step=step, result=result, attempt=attempt))

    def fail_attempt(
        self,
        *,
        step: str,
        phase: str,
        attempt: int,
        error: dict[str, Any],
        retry_at: dt.datetime,
    ) -> None:
        self._require_status(RUNNING if phase == "run" else COMPENSATING)
        self.record(
            StepAttemptFailed(
                step=step, phase=phase, attempt=attempt, error=error, retry_at=retry_at
            )
        )

    def fail_step(self, *, step: str, error: dict[str, Any]) -> None:
        self._require_next(step)
        self.record(StepFailed(step=step, error=error))

    def request_compensation(self, *, reason: str, by: dict[str, Any]) -> None:
        if self.status not in (RUNNING, FAILED):
            raise WorkflowStateConflict(
                f"A {self.status} run cannot be compensated.",
                details={"run": str(self.uuid), "status": self.status},
            )
        self.record(CompensationRequested(reason=reason, by=by))

    def compensate_step(self, *, step: str, result: dict[str, Any]) -> None:
        self._require_status(COMPENSATING)
        if step != self.next_compensation():
            # Reverse order is the point of a saga: a later step's effect may rest on this one.
            raise WorkflowStateConflict(
                "Steps are compensated newest first.",
                details={"step": step, "next": self.next_compensation()},
            )
        self.record(StepCompensated(step=step, result=result))

    def fail_compensation(self, *, step: str, error: dict[str, Any]) -> None:
        self._require_status(COMPENSATING)
        self.record(CompensationFailed(step=step, error=error))

    def retry(self, *, by: dict[str, Any]) -> None:
        """A failed run (a compensation could not be done) takes up its compensation again."""
        self._require_status(FAILED)
        self.record(WorkflowRetried(by=by))

    def complete(self) -> None:
        self._require_status(RUNNING)
        if self.next_step() is not None:
            raise WorkflowStateConflict(details={"next_step": self.next_step()})
        self.record(WorkflowCompleted())

    def finish_compensation(self) -> None:
        self._require_status(COMPENSATING)
        if self.next_compensation() is not None:
            raise WorkflowStateConflict(details={"next_compensation": self.next_compensation()})
        self.record(WorkflowCompensated())

    def _require_status(self, *allowed: str) -> None:
        if self.status not in allowed:
            raise WorkflowStateConflict(
                f"The run is {self.status}.",
                details={"run": str(self.uuid), "status": self.status, "allowed": list(allowed)},
            )

    def _require_next(self, step: str) -> None:
        self._require_status(RUNNING)
        if step != self.next_step():
            raise WorkflowStateConflict(
                "Steps run in the planned order.",
                details={"step": step, "next": self.next_step()},
            )

    # --- state ---------------------------------------------------------------------------------

    @applies(WorkflowStarted)
    def _started(self, evt: WorkflowStarted) -> None:
        self.workflow_type = evt.workflow_type
        self.input = evt.input
        self.plan = evt.plan
        self.parent = str(evt.parent) if evt.parent else None
        self.status = RUNNING

    @applies(StepStarted)
    def _step_started(self, evt: StepStarted) -> None:
        if evt.step not in self.started:
            self.started.append(evt.step)

    @applies(StepCompleted)
    def _step_completed(self, evt: StepCompleted) -> None:
        self.results[evt.step] = evt.result
        self.completed.append(evt.step)

    @applies(StepAttemptFailed)
    def _attempt_failed(self, evt: StepAttemptFailed) -> None:
        self.error = evt.error

    @applies(StepFailed)
    def _step_failed(self, evt: StepFailed) -> None:
        self.error = {"step": evt.step, **evt.error}
        self.status = COMPENSATING

    @applies(CompensationRequested)
    def _compensation_requested(self, evt: CompensationRequested) -> None:
        self.status = COMPENSATING

    @applies(StepCompensated)
    def _step_compensated(self, evt: StepCompensated) -> None:
        self.compensated[evt.step] = evt.result

    @applies(CompensationFailed)
    def _compensation_failed(self, evt: CompensationFailed) -> None:
        self.error = {"step": evt.step, **evt.error}
        self.status = FAILED

    @applies(WorkflowRetried)
    def _retried(self, evt: WorkflowRetried) -> None:
        self.status = COMPENSATING

    @applies(WorkflowCompleted)
    def _completed(self, evt: WorkflowCompleted) -> None:
        self.status = COMPLETED
        self.error = None

    @applies(WorkflowCompensated)
    def _compensated(self, evt: WorkflowCompensated) -> None:
        self.status = COMPENSATED
