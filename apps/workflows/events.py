"""Workflow run events: the durable log of a saga, one event per fact about a run or a step."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from apps.core.events import DomainEvent, event


@event("workflows.WorkflowStarted")
class WorkflowStarted(DomainEvent):
    workflow_type: str
    input: dict[str, Any]
    # The steps as planned when the run started: [{"name": str, "compensable": bool}, ...]. Kept
    # on the run so a later change of the code cannot change what an old run does or undoes.
    plan: list[Any]
    started_by: dict[str, Any]
    parent: uuid.UUID | None  # the run that started this one (a bulk payout's items)


@event("workflows.StepStarted")
class StepStarted(DomainEvent):
    """A step with an effect outside our database is about to run: from here on, its effect may
    exist even if the step never completes, so a compensation must look for it."""

    step: str
    attempt: int


@event("workflows.StepCompleted")
class StepCompleted(DomainEvent):
    step: str
    result: dict[str, Any]
    attempt: int


@event("workflows.StepAttemptFailed")
class StepAttemptFailed(DomainEvent):
    """A transient failure (custodian unavailable, timeout); the step runs again at `retry_at`."""

    step: str
    phase: str  # run | compensate
    attempt: int
    error: dict[str, Any]
    retry_at: dt.datetime


@event("workflows.StepFailed")
class StepFailed(DomainEvent):
    """The step cannot succeed; the run compensates what it did."""

    step: str
    error: dict[str, Any]


@event("workflows.CompensationRequested")
class CompensationRequested(DomainEvent):
    """Staff stopped the run and asked for what it did to be undone."""

    reason: str
    by: dict[str, Any]


@event("workflows.StepCompensated")
class StepCompensated(DomainEvent):
    step: str
    result: dict[str, Any]


@event("workflows.CompensationFailed")
class CompensationFailed(DomainEvent):
    """A compensation could not be done; the run waits for an operator (status failed)."""

    step: str
    error: dict[str, Any]


@event("workflows.WorkflowRetried")
class WorkflowRetried(DomainEvent):
    by: dict[str, Any]


@event("workflows.WorkflowCompleted")
class WorkflowCompleted(DomainEvent):
    pass


@event("workflows.WorkflowCompensated")
class WorkflowCompensated(DomainEvent):
    pass
