"""Write side of workflows: start a run, advance it step by step, retry, compensate, resume.

The runtime is a loop over one run at a time. A worker first claims the run's lease (see
`WorkflowLease`); then, while it holds it, it takes the next step (or, when compensating, the
next step to undo), runs it, and records the outcome as an event on the run before it looks at
the next one, so the run is saved after every step. Each record checks that the worker still
holds the lease, so two workers never both write a step. When a step must wait (a pending
transfer, a backoff), the worker lets go of the lease, notes when the run is due, and asks for
it to be advanced then; a worker that dies simply stops renewing its lease, and the scheduled
`resume_stale_workflows` job gives the run to another worker when the lease has expired.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from apps.core import store
from apps.core.context import command_context, current_actor
from apps.core.errors import AggregateNotFound, ConcurrencyError, DomainError, NotFound
from apps.workflows import faults
from apps.workflows.aggregates import (
    ACTIVE,
    FAILED,
    RUNNING,
    StepAlreadyCompleted,
    WorkflowRun,
    WorkflowStateConflict,
)
from apps.workflows.definition import (
    Step,
    StepContext,
    StepDelayed,
    StepPending,
    TransientStepError,
    workflow_definition,
)
from apps.workflows.models import JobRun, WorkflowLease
from apps.workflows.models import WorkflowRun as WorkflowRunView
from apps.workflows.schedule import MANAGED_MARK, PeriodicJob, periodic_jobs

logger = logging.getLogger(__name__)

# A run due within this much is advanced now: the clocks of beat, broker and workers differ a bit.
DUE_TOLERANCE = dt.timedelta(seconds=1)


def _now() -> dt.datetime:
    """The runtime's clock; tests replace it to move time forward."""
    return timezone.now()


class WorkflowBusy(DomainError):
    code = "WORKFLOW_BUSY"
    default_message = "A worker is running a step of this workflow right now; try again shortly."
    http_status = 409


class LeaseLost(Exception):
    """Another worker took the run over (this one stalled past its lease): stop touching it."""


@dataclass(frozen=True)
class _Wait:
    at: dt.datetime
    poll: bool  # a StepPending poll, which does not count as an attempt


def _new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _load(run_uuid: uuid.UUID, *, lock: bool = True) -> WorkflowRun:
    try:
        return store.load_one(WorkflowRun, run_uuid, lock=lock)
    except AggregateNotFound:
        raise NotFound("No such workflow run.", details={"uuid": str(run_uuid)}) from None


def _lease_until(now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(seconds=settings.WORKFLOW_LEASE_SECONDS)


# --- the lease -------------------------------------------------------------------------------


def _lease_claim(run_uuid: uuid.UUID, worker: str, now: dt.datetime) -> bool:
    """Take the run if nobody holds it, or its holder's lease has expired (the holder died)."""
    free = Q(locked_until__isnull=True) | Q(locked_until__lt=now)
    claimed = (
        WorkflowLease.objects.filter(run_uuid=run_uuid)
        .filter(free)
        .update(owner=worker, locked_until=_lease_until(now), heartbeat_at=now)
    )
    return claimed == 1


def _lease_fence(run_uuid: uuid.UUID, worker: str) -> None:
    """Renew the lease, or raise LeaseLost if another worker has claimed the run meanwhile.

    Run inside the transaction that records a step, the UPDATE also holds the lease row until
    commit, so a claim by another worker cannot slip in between this check and the record.
    """
    now = _now()
    renewed = WorkflowLease.objects.filter(run_uuid=run_uuid, owner=worker).update(
        locked_until=_lease_until(now), heartbeat_at=now
    )
    if renewed != 1:
        raise LeaseLost(f"{run_uuid}: the lease of {worker} was taken over")


def _lease_begin_step(
    run_uuid: uuid.UUID, worker: str, step: str, phase: str, now: dt.datetime
) -> tuple[int, dt.datetime]:
    """Count one more attempt of the step (a crashed attempt counts too); returns the attempt
    number and when the step was first attempted, for its deadline."""
    with transaction.atomic():
        lease = WorkflowLease.objects.select_for_update().get(run_uuid=run_uuid)
        if lease.owner != worker:
            raise LeaseLost(f"{run_uuid}: the lease of {worker} was taken over")
        if (lease.step, lease.phase) != (step, phase) or lease.step_started_at is None:
            lease.step, lease.phase, lease.attempt, lease.step_started_at = step, phase, 0, now
        lease.attempt += 1
        lease.locked_until = _lease_until(now)
        lease.heartbeat_at = now
        lease.save()
    return lease.attempt, lease.step_started_at


def _lease_release(
    run_uuid: uuid.UUID, worker: str, *, due_at: dt.datetime | None, poll: bool = False
) -> None:
    changes: dict[str, Any] = {"owner": "", "locked_until": None, "due_at": due_at}
    if poll:
        changes["attempt"] = F("attempt") - 1
    WorkflowLease.objects.filter(run_uuid=run_uuid, owner=worker).update(**changes)


def _dispatch(run_uuid: uuid.UUID, at: dt.datetime | None = None) -> None:
    """Ask a worker to advance the run (at `at`), once the current transaction has committed."""
    transaction.on_commit(lambda: _send(run_uuid, at), robust=True)


def _send(run_uuid: uuid.UUID, at: dt.datetime | None) -> None:
    from apps.workflows.tasks import workflow_advance_task
    from finaegis.celery import app

    # A queue of their own keeps runs moving while long jobs occupy the default queue's workers.
    options = {"queue": settings.WORKFLOW_QUEUE} if settings.WORKFLOW_QUEUE else {}
    try:
        if at is None or at <= _now():
            workflow_advance_task.apply_async((str(run_uuid),), **options)
        elif not app.conf.task_always_eager:
            workflow_advance_task.apply_async((str(run_uuid),), eta=at, **options)
        # Run eagerly (the embedded default), a task cannot wait: a delayed advance is left to
        # the resume_stale_workflows job, which finds the run once it is due.
    except KombuOperationalError as exc:
        # The broker is down (Celery has already retried the publish). Nothing is lost: the run
        # is recorded with its due time and nobody holds it, so resume_stale_workflows hands it
        # out once the broker is back and the run has been due for WORKFLOW_STALE_AFTER_SECONDS.
        logger.warning(
            "workflow %s: the broker is unreachable (%s); the run waits for resume_stale_workflows",
            run_uuid,
            exc,
        )


# --- recording outcomes ----------------------------------------------------------------------


@store.command
def _record(run_uuid: uuid.UUID, worker: str | None, change: Callable[[WorkflowRun], Any]) -> None:
    if worker is not None:
        _lease_fence(run_uuid, worker)
    run = _load(run_uuid)
    change(run)
    store.save(run)


@contextmanager
def _acting_for(run: WorkflowRun, step: str) -> Iterator[None]:
    """Events a step writes (a ledger posting) name the run and step as their actor and cause,
    and carry the run's uuid as correlation id, so an auditor finds everything a run did."""
    actor = {"type": "workflow", "id": str(run.uuid), "workflow": run.workflow_type, "step": step}
    with command_context(
        actor=actor, correlation_id=str(run.uuid), causation_id=f"{run.uuid}:{step}"
    ):
        yield


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)  # Decimal, UUID, datetime, float: as text, never as a float


def _checked_result(step: Step, result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise TypeError(f"step {step.name} returned {type(result).__name__}, not a dict")
    return _jsonable(result)


def _error_dict(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, DomainError):
        code, message, details = exc.code, exc.message, exc.details
    else:
        code, message, details = type(exc).__name__, str(exc), {}
    return {
        "code": code,
        "message": message[:1000],
        "details": _jsonable(details),
        "type": type(exc).__name__,
    }


def _is_transient(exc: BaseException, step: Step) -> bool:
    if isinstance(exc, (TransientStepError, ConcurrencyError, OperationalError, InterfaceError)):
        return True
    if step.transient and isinstance(exc, step.transient):
        return True
    # A broken business rule will not heal by waiting; an unexpected error might (a network
    # blip inside a connector), so it gets the step's attempts before it counts as a failure.
    return not isinstance(exc, DomainError)


def _backoff(attempt: int) -> dt.timedelta:
    """Exponential backoff with "equal jitter": half the delay fixed, half random, so retries of
    many runs spread out but each still waits at least half its share."""
    delay = min(
        settings.WORKFLOW_RETRY_MAX_SECONDS,
        settings.WORKFLOW_RETRY_BASE_SECONDS * 2 ** (attempt - 1),
    )
    return dt.timedelta(seconds=delay / 2 + random.uniform(0, delay / 2))


def _context(
    run: WorkflowRun,
    step: Step,
    attempt: int,
    started_at: dt.datetime,
    now: dt.datetime,
    *,
    compensating: bool = False,
) -> StepContext:
    return StepContext(
        run_uuid=run.uuid,
        workflow_type=run.workflow_type,
        step=step.name,
        input=run.input,
        results=dict(run.results),
        attempt=attempt,
        idempotency_key=f"{run.uuid}:{step.name}",
        started_at=started_at,
        now=now,
        result=run.results.get(step.name) if compensating else None,
    )


# --- running and compensating one step -------------------------------------------------------


@store.command
def _run_local_step(run_uuid: uuid.UUID, worker: str, step: Step, ctx: StepContext) -> None:
    """The step and the record of its completion commit together, or not at all."""
    _lease_fence(run_uuid, worker)
    run = _load(run_uuid)
    if step.name in run.results:
        return
    with _acting_for(run, step.name):
        result = _checked_result(step, step.action(ctx))
    faults.crash_point(run.workflow_type, step.name)
    run.complete_step(step=step.name, result=result, attempt=ctx.attempt)
    store.save(run)


@store.command
def _run_local_compensation(run_uuid: uuid.UUID, worker: str, step: Step, ctx: StepContext) -> None:
    _lease_fence(run_uuid, worker)
    run = _load(run_uuid)
    if step.name in run.compensated:
        return
    assert step.compensation is not None
    with _acting_for(run, f"{step.name}:compensate"):
        result = _checked_result(step, step.compensation(ctx))
    run.compensate_step(step=step.name, result=result)
    store.save(run)


def _record_completion(
    run_uuid: uuid.UUID, worker: str, step: str, result: dict[str, Any], attempt: int
) -> None:
    try:
        _record(
            run_uuid, worker, lambda r: r.complete_step(step=step, result=result, attempt=attempt)
        )
    except StepAlreadyCompleted:
        logger.info("workflow %s: step %s was already recorded", run_uuid, step)


def _run_step(run: WorkflowRun, step: Step, worker: str) -> _Wait | None:
    now = _now()
    attempt, started_at = _lease_begin_step(run.uuid, worker, step.name, "run", now)
    max_attempts = step.max_attempts or settings.WORKFLOW_STEP_MAX_ATTEMPTS
    if attempt > max_attempts:
        # Started this often without an outcome: every worker that tried it died on it.
        error = {
            "code": "WORKFLOW_STEP_ABANDONED",
            "message": f"the step was started {attempt - 1} times without finishing",
            "details": {},
            "type": "",
        }
        _record(run.uuid, worker, lambda r: r.fail_step(step=step.name, error=error))
        return None
    ctx = _context(run, step, attempt, started_at, now)
    try:
        if step.local:
            _run_local_step(run.uuid, worker, step, ctx)
        else:
            if step.compensable:
                _record(run.uuid, worker, lambda r: r.start_step(step=step.name, attempt=attempt))
            with _acting_for(run, step.name):
                result = _checked_result(step, step.action(ctx))
            faults.crash_point(run.workflow_type, step.name)
            _record_completion(run.uuid, worker, step.name, result, attempt)
    except LeaseLost:
        raise
    except StepDelayed as exc:
        return _delayed(run, step, "run", exc, now)
    except StepPending as exc:
        return _pending(run, step, "run", exc, started_at, now, worker)
    except Exception as exc:
        return _failed(run, step, "run", exc, attempt, max_attempts, now, worker)
    return None


def _compensate_step(run: WorkflowRun, step: Step, worker: str) -> _Wait | None:
    now = _now()
    attempt, started_at = _lease_begin_step(run.uuid, worker, step.name, "compensate", now)
    max_attempts = settings.WORKFLOW_COMPENSATION_MAX_ATTEMPTS
    ctx = _context(run, step, attempt, started_at, now, compensating=True)
    try:
        if step.local:
            _run_local_compensation(run.uuid, worker, step, ctx)
        else:
            assert step.compensation is not None
            with _acting_for(run, f"{step.name}:compensate"):
                result = _checked_result(step, step.compensation(ctx))
            _record(run.uuid, worker, lambda r: r.compensate_step(step=step.name, result=result))
    except LeaseLost:
        raise
    except StepDelayed as exc:
        return _delayed(run, step, "compensate", exc, now)
    except StepPending as exc:
        return _pending(run, step, "compensate", exc, started_at, now, worker)
    except Exception as exc:
        return _failed(run, step, "compensate", exc, attempt, max_attempts, now, worker)
    return None


def _give_up(run: WorkflowRun, step: Step, phase: str, error: dict[str, Any], worker: str) -> None:
    if phase == "run":
        _record(run.uuid, worker, lambda r: r.fail_step(step=step.name, error=error))
    else:
        _record(run.uuid, worker, lambda r: r.fail_compensation(step=step.name, error=error))


def _pending(
    run: WorkflowRun,
    step: Step,
    phase: str,
    exc: StepPending,
    started_at: dt.datetime,
    now: dt.datetime,
    worker: str,
) -> _Wait | None:
    timeout = step.timeout_seconds or settings.WORKFLOW_STEP_TIMEOUT_SECONDS
    deadline = started_at + dt.timedelta(seconds=timeout)
    if now >= deadline:
        error = {
            "code": "WORKFLOW_STEP_TIMED_OUT",
            "message": f"still waiting after {timeout} s: {exc}",
            "details": {},
            "type": "StepPending",
        }
        logger.warning("workflow %s: %s %s timed out", run.uuid, phase, step.name)
        _give_up(run, step, phase, error, worker)
        return None
    return _Wait(min(now + dt.timedelta(seconds=exc.retry_after), deadline), poll=True)


def _delayed(run: WorkflowRun, step: Step, phase: str, exc: StepDelayed, now: dt.datetime) -> _Wait:
    """Not tried (an open circuit breaker): due again after the delay, the attempt given back
    like a poll's, and no deadline: waiting out an outage must not undo money already sent."""
    logger.warning(
        "workflow %s: %s %s delayed %.0f s (%s)", run.uuid, phase, step.name, exc.retry_after, exc
    )
    return _Wait(now + dt.timedelta(seconds=exc.retry_after), poll=True)


def _failed(
    run: WorkflowRun,
    step: Step,
    phase: str,
    exc: Exception,
    attempt: int,
    max_attempts: int,
    now: dt.datetime,
    worker: str,
) -> _Wait | None:
    error = _error_dict(exc)
    if _is_transient(exc, step) and attempt < max_attempts:
        retry_at = now + _backoff(attempt)
        logger.warning(
            "workflow %s: %s %s attempt %d failed (%s); again at %s",
            run.uuid,
            phase,
            step.name,
            attempt,
            error["code"],
            retry_at.isoformat(),
        )
        _record(
            run.uuid,
            worker,
            lambda r: r.fail_attempt(
                step=step.name, phase=phase, attempt=attempt, error=error, retry_at=retry_at
            ),
        )
        return _Wait(retry_at, poll=False)
    logger.error(
        "workflow %s: %s %s failed for good: %s",
        run.uuid,
        phase,
        step.name,
        error["message"],
        exc_info=not isinstance(exc, DomainError),
    )
    _give_up(run, step, phase, error, worker)
    return None


def _drive(run_uuid: uuid.UUID, worker: str) -> str:
    while True:
        run = _load(run_uuid, lock=False)
        if run.status not in ACTIVE:
            _lease_release(run_uuid, worker, due_at=None)
            if run.parent:
                workflow_wake(run_uuid=uuid.UUID(run.parent))
            return run.status
        definition = workflow_definition(run.workflow_type)
        steps = {step.name: step for step in definition.steps(run.input)}
        if run.status == RUNNING:
            name = run.next_step()
            if name is None:
                _record(run_uuid, worker, lambda r: r.complete())
                continue
            wait = _run_step(run, steps[name], worker)
        else:
            name = run.next_compensation()
            if name is None:
                _record(run_uuid, worker, lambda r: r.finish_compensation())
                continue
            wait = _compensate_step(run, steps[name], worker)
        if wait is not None:
            _lease_release(run_uuid, worker, due_at=wait.at, poll=wait.poll)
            _dispatch(run_uuid, wait.at)
            return "waiting"


# --- the services ----------------------------------------------------------------------------


@store.command
def workflow_start(
    *,
    workflow_type: str,
    input: dict[str, Any],
    run_uuid: uuid.UUID | None = None,
    parent: uuid.UUID | None = None,
) -> WorkflowRunView:
    """Record a new run and have a worker start it once this transaction commits.

    With `run_uuid` the start is idempotent: a run that already exists under it is returned.
    """
    definition = workflow_definition(workflow_type)
    input = _jsonable(definition.validate(dict(input)))
    run_uuid = run_uuid or uuid.uuid4()
    existing = WorkflowRunView.objects.filter(uuid=run_uuid).first()
    if existing is not None:
        if existing.workflow_type != workflow_type:
            raise WorkflowStateConflict(
                "Another workflow run exists under this uuid.", details={"uuid": str(run_uuid)}
            )
        return existing
    run = WorkflowRun(run_uuid)
    run.start(
        workflow_type=workflow_type,
        input=input,
        plan=definition.plan(input),
        started_by=current_actor(),
        parent=parent,
    )
    store.save(run)
    WorkflowLease.objects.create(run_uuid=run_uuid, due_at=_now())
    _dispatch(run_uuid)
    return WorkflowRunView.objects.get(uuid=run_uuid)


def workflow_advance(*, run_uuid: uuid.UUID, force: bool = False) -> str:
    """Run the run as far as it can go now (a worker's job).

    Returns the run's status when it stopped (completed, compensated, failed), "waiting" when a
    step must wait, "busy" when another worker holds it, "not_due" when it is not due yet (a
    backoff) unless `force`.
    """
    now = _now()
    lease = WorkflowLease.objects.filter(run_uuid=run_uuid).first()
    if lease is None:
        raise NotFound("No such workflow run.", details={"uuid": str(run_uuid)})
    if not force and (lease.due_at is None or lease.due_at > now + DUE_TOLERANCE):
        return "not_due"
    worker = _new_worker_id()
    if not _lease_claim(run_uuid, worker, now):
        return "busy"
    with command_context(correlation_id=str(run_uuid)):
        try:
            return _drive(run_uuid, worker)
        except LeaseLost:
            logger.warning("workflow %s: lease lost to another worker; stopping", run_uuid)
            return "lease_lost"


@store.command
def workflow_retry(*, run_uuid: uuid.UUID) -> WorkflowRunView:
    """Take the run up again now: a failed run resumes its compensation; a running or
    compensating one skips what is left of its backoff or poll interval, with fresh attempts."""
    run = _load(run_uuid)
    if run.status == FAILED:
        run.retry(by=current_actor())
        store.save(run)
    elif run.status not in ACTIVE:
        raise WorkflowStateConflict(
            f"A {run.status} run has nothing left to do.",
            details={"uuid": str(run_uuid), "status": run.status},
        )
    WorkflowLease.objects.filter(run_uuid=run_uuid).update(due_at=_now(), step_started_at=None)
    _dispatch(run_uuid)
    return WorkflowRunView.objects.get(uuid=run_uuid)


@store.command
def workflow_compensate(*, run_uuid: uuid.UUID, reason: str) -> WorkflowRunView:
    """Stop a running (or failed) run and undo what it did, newest step first.

    Refused while a worker is in the middle of a step: the lease is taken for the turn-around,
    so no step can complete unnoticed after the run has started compensating.
    """
    now = _now()
    worker = _new_worker_id()
    if not _lease_claim(run_uuid, worker, now):
        if not WorkflowLease.objects.filter(run_uuid=run_uuid).exists():
            raise NotFound("No such workflow run.", details={"uuid": str(run_uuid)})
        raise WorkflowBusy(details={"uuid": str(run_uuid)})
    run = _load(run_uuid)
    run.request_compensation(reason=reason, by=current_actor())
    store.save(run)
    WorkflowLease.objects.filter(run_uuid=run_uuid, owner=worker).update(
        owner="", locked_until=None, due_at=now, step_started_at=None
    )
    _dispatch(run_uuid)
    return WorkflowRunView.objects.get(uuid=run_uuid)


@store.command
def workflow_wake(*, run_uuid: uuid.UUID) -> bool:
    """Something the run waits for has happened (a webhook, a child run finished): advance it
    now instead of at its next poll. False when the run waits for nothing."""
    woken = WorkflowLease.objects.filter(run_uuid=run_uuid, due_at__isnull=False).update(
        due_at=_now()
    )
    if woken:
        _dispatch(run_uuid)
    return bool(woken)


def workflow_resume_stale(*, limit: int | None = None) -> list[uuid.UUID]:
    """Hand to a worker every run whose worker died (its lease expired) and every run that is
    overdue though nobody holds it (its dispatch was lost, or tasks run eagerly and could not
    wait). Returns the runs dispatched, oldest due first."""
    now = _now()
    overdue = now - dt.timedelta(seconds=settings.WORKFLOW_STALE_AFTER_SECONDS)
    stale = (
        WorkflowLease.objects.filter(due_at__isnull=False)
        .filter(Q(locked_until__lt=now) | Q(locked_until__isnull=True, due_at__lte=overdue))
        .order_by("due_at")
        .values_list("run_uuid", "owner", "locked_until")[: limit or settings.WORKFLOW_RESUME_BATCH]
    )
    resumed = []
    for run_uuid, owner, locked_until in stale:
        if locked_until is not None:
            logger.warning(
                "workflow %s: the lease of %s expired at %s; resuming",
                run_uuid,
                owner,
                locked_until.isoformat(),
            )
        _dispatch(run_uuid)
        resumed.append(run_uuid)
    return resumed


# --- scheduled jobs --------------------------------------------------------------------------


@dataclass(frozen=True)
class InstallReport:
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    disabled: list[str]


def _schedule_for(job: PeriodicJob) -> dict[str, Any]:
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule

    if job.every_seconds is not None:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=job.every_seconds, period=IntervalSchedule.SECONDS
        )
        return {"interval": interval, "crontab": None}
    crontab, _ = CrontabSchedule.objects.get_or_create(**job.crontab, timezone="UTC")
    return {"interval": None, "crontab": crontab}


@transaction.atomic
def periodic_jobs_install(*, jobs: list[PeriodicJob] | None = None) -> InstallReport:
    """Install the declared jobs into django-celery-beat; running it again changes nothing.

    A row is only written when something differs, so beat is not told to reload for nothing.
    Jobs installed earlier by this command and no longer declared are disabled, not deleted:
    their history (last run, run count) stays readable in the console.
    """
    from django_celery_beat.models import PeriodicTask

    jobs = periodic_jobs() if jobs is None else jobs
    report = InstallReport([], [], [], [])
    for job in jobs:
        wanted = {
            "task": job.task,
            **_schedule_for(job),
            "kwargs": json.dumps(job.kwargs, sort_keys=True),
            "description": f"{job.description} {MANAGED_MARK}",
            "expire_seconds": job.expire_seconds,
            "enabled": True,
        }
        task = PeriodicTask.objects.filter(name=job.name).first()
        if task is None:
            PeriodicTask.objects.create(name=job.name, **wanted)
            report.created.append(job.name)
            continue
        changed = {k: v for k, v in wanted.items() if getattr(task, k) != v}
        if changed:
            for key, value in changed.items():
                setattr(task, key, value)
            task.save()
            report.updated.append(job.name)
        else:
            report.unchanged.append(job.name)
    declared = {job.name for job in jobs}
    for task in PeriodicTask.objects.filter(description__endswith=MANAGED_MARK, enabled=True):
        if task.name not in declared:
            task.enabled = False
            task.save(update_fields=["enabled"])
            report.disabled.append(task.name)
    return report


def job_run_start(*, job: str, task_id: str = "") -> JobRun:
    return JobRun.objects.create(
        job=job, task_id=task_id, status=JobRun.Status.RUNNING, started_at=timezone.now()
    )


def job_run_finish(*, job_run: JobRun, succeeded: bool, summary: dict[str, Any]) -> JobRun:
    job_run.status = JobRun.Status.SUCCEEDED if succeeded else JobRun.Status.FAILED
    job_run.summary = _jsonable(summary)
    job_run.finished_at = timezone.now()
    job_run.save(update_fields=["status", "summary", "finished_at"])
    # A job that runs every minute would fill the table; the console needs recent history only.
    keep_from = job_run.started_at - dt.timedelta(days=settings.JOB_RUN_RETENTION_DAYS)
    JobRun.objects.filter(job=job_run.job, started_at__lt=keep_from).delete()
    return job_run
