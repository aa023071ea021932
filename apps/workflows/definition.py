"""How a workflow is declared: a type name, a check of its input, and its steps.

A step is a function of a `StepContext` that returns a JSON dict (its result, stored on the run)
and may have a compensation that undoes it. Two kinds of step:

- a *local* step changes only our database (a ledger posting through the payments services). It
  runs inside the same transaction that records its completion, so it happens exactly once:
  either both commit or neither does.
- any other step reaches outside (a custodian). It cannot share our transaction, so it must be
  idempotent by `ctx.idempotency_key` (the same for every attempt and every worker): run again
  after a crash, it finds what the first attempt did instead of doing it twice. If it has a
  compensation, the run records that it started, and a compensation may then be called with
  `ctx.result = None` (the step's effect is in doubt) and must find out what happened.

A step signals how it went by what it raises: nothing (done), `StepPending` (not yet: ask again
later, up to the step's deadline), `StepDelayed` (it could not even be tried, e.g. the
custodian's circuit breaker is open: run it again later, with no attempt used and no deadline
applied, so an outage never compensates a run), `TransientStepError` or one of the step's
`transient` exception types (try again with backoff, up to its attempts), anything else a
`DomainError` included (the step failed: compensate).
"""

from __future__ import annotations

import datetime as dt
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from django.core.exceptions import ImproperlyConfigured

from apps.core.errors import DomainError, InvalidInput


class StepPending(Exception):
    """The step's outcome is not known yet (a transfer still pending at the custodian)."""

    def __init__(self, message: str = "not yet", *, retry_after: float = 30):
        super().__init__(message)
        self.retry_after = retry_after


class StepDelayed(Exception):
    """The step was not tried at all (a circuit breaker refused the call): run it again after
    `retry_after` seconds. Uses up no attempt and never fails or compensates the run."""

    def __init__(self, message: str = "delayed", *, retry_after: float = 30):
        super().__init__(message)
        self.retry_after = retry_after


class TransientStepError(Exception):
    """A failure that may go away by itself; the step is retried with backoff."""


class StepError(DomainError):
    """The step cannot succeed; raising it starts the compensation."""

    code = "WORKFLOW_STEP_FAILED"
    default_message = "The workflow step failed."


class UnknownWorkflowType(InvalidInput):
    default_message = "No workflow of this type is registered."


@dataclass(frozen=True)
class StepContext:
    run_uuid: uuid.UUID
    workflow_type: str
    step: str
    input: dict[str, Any]
    results: dict[str, dict[str, Any]]  # the completed steps' results by step name
    attempt: int
    idempotency_key: str  # "<run uuid>:<step>": the same for every attempt and every worker
    started_at: dt.datetime  # the first attempt of this step (or of its compensation)
    now: dt.datetime
    result: dict[str, Any] | None = None  # for a compensation: the step's result, if it completed


StepFunction = Callable[[StepContext], dict[str, Any]]


@dataclass(frozen=True)
class Step:
    name: str
    action: StepFunction
    compensation: StepFunction | None = None
    local: bool = False
    # None: the WORKFLOW_STEP_MAX_ATTEMPTS / WORKFLOW_STEP_TIMEOUT_SECONDS settings.
    max_attempts: int | None = None
    timeout_seconds: int | None = None
    transient: tuple[type[BaseException], ...] = field(default=())

    @property
    def compensable(self) -> bool:
        return self.compensation is not None


class Workflow(ABC):
    """Base of a workflow type; subclasses set `type` and implement `steps`."""

    type: ClassVar[str]

    def validate(self, input: dict[str, Any]) -> dict[str, Any]:
        """Check and normalise the input before a run starts (raise InvalidInput)."""
        return input

    @abstractmethod
    def steps(self, input: dict[str, Any]) -> list[Step]:
        """The steps of a run with this input, in order."""

    def plan(self, input: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"name": s.name, "compensable": s.compensable} for s in self.steps(input)]


_registry: dict[str, Workflow] = {}
W = TypeVar("W", bound=type[Workflow])


def register(cls: W) -> W:
    """Class decorator: make the workflow type known to the runtime under `cls.type`."""
    existing = _registry.get(cls.type)
    if existing is not None and type(existing).__qualname__ != cls.__qualname__:
        raise ImproperlyConfigured(f"workflow type {cls.type!r} is registered twice")
    _registry[cls.type] = cls()
    return cls


def workflow_definition(workflow_type: str) -> Workflow:
    try:
        return _registry[workflow_type]
    except KeyError:
        raise UnknownWorkflowType(details={"workflow_type": [workflow_type]}) from None
