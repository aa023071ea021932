"""Write side of governance: polls, votes, closing and the execution workflows.

A vote locks its poll's stream row while it is checked and recorded, so votes of one poll and
its close run one after the other: a vote is either in the frozen results or refused. Activating
a poll fixes every user's voting power (the poll's strategy over the balances at that moment, in
one query) as events of the poll; a vote takes the voter's power from that snapshot, never from
the balances, so money moved after activation cannot vote twice. The power is stored with the
vote, signed.

Execution workflows are what a poll decides (for example "update_basket_composition", which the
baskets app registers). When a poll closes with a winner and its required participation met,
its workflow runs in a savepoint of the same transaction: success marks the poll executed, a
refusal (a DomainError) rolls the workflow back and marks the poll failed.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core import store
from apps.core.context import current_actor
from apps.core.errors import AggregateNotFound, AlreadyVoted, DomainError, InvalidInput, NotFound
from apps.governance.aggregates import (
    ONE_USER_ONE_VOTE,
    YES_NO,
    Poll,
    Vote,
    poll_uuid_for_key,
    vote_uuid_for,
)
from apps.governance.models import Poll as PollView
from apps.governance.models import Vote as VoteView
from apps.governance.selectors import polls_expired, snapshot_power_of, voting_powers_now
from apps.governance.signing import vote_signature

logger = logging.getLogger(__name__)

MAX_KEY_LENGTH = 100
MAX_REASON_LENGTH = 500


# --- execution workflows -------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionContext:
    """What a workflow learns of the poll that decided it."""

    poll_uuid: uuid.UUID
    title: str
    type: str
    options: list[dict[str, str]]
    metadata: dict[str, Any]
    results: dict[str, Any]
    closed_at: dt.datetime


@dataclass(frozen=True)
class ExecutionWorkflow:
    name: str
    description: str
    # Runs inside the closing transaction (a savepoint); returns a JSON outcome, or raises a
    # DomainError to fail the poll.
    run: Callable[[ExecutionContext], dict[str, Any]]
    # Called when a poll naming the workflow is created; raises InvalidInput to refuse it.
    check: Callable[..., None] | None = None


_workflows: dict[str, ExecutionWorkflow] = {}


def execution_workflow_register(workflow: ExecutionWorkflow) -> None:
    """Make a workflow available to polls (apps register theirs in AppConfig.ready)."""
    _workflows[workflow.name] = workflow


def execution_workflows() -> dict[str, ExecutionWorkflow]:
    return dict(_workflows)


# --- helpers -------------------------------------------------------------------------------------


def _load_poll(poll_uuid: uuid.UUID) -> Poll:
    try:
        return store.load_one(Poll, poll_uuid)
    except AggregateNotFound:
        raise NotFound("No such poll.", details={"uuid": str(poll_uuid)}) from None


def _plain_json(value: Any, path: str = "metadata") -> Any:
    """Metadata as plain JSON (tuples become lists); other types, floats included, are refused."""
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise InvalidInput(details={path: ["keys must be strings"]})
        return {key: _plain_json(item, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_json(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if value is None or isinstance(value, str | bool | int):
        return value
    raise InvalidInput(details={path: [f"{type(value).__name__} is not allowed; use str or int"]})


def _now(now: dt.datetime | None) -> dt.datetime:
    return (now or timezone.now()).astimezone(dt.UTC)


# --- polls ---------------------------------------------------------------------------------------


@store.command
def poll_create(
    *,
    title: str,
    type: str,
    options: list[dict[str, Any]],
    start_date: dt.datetime,
    end_date: dt.datetime,
    voting_power_strategy: str,
    description: str = "",
    required_participation: Any = None,
    execution_workflow: str | None = None,
    max_choices: int | None = None,
    metadata: dict[str, Any] | None = None,
    key: str | None = None,
    now: dt.datetime | None = None,
) -> PollView:
    """Create a poll as a draft. With a `key` the poll is created once: the same key again
    returns the existing poll unchanged."""
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH):
        raise InvalidInput(details={"key": [f"1 to {MAX_KEY_LENGTH} characters"]})
    poll_uuid = poll_uuid_for_key(key) if key else uuid.uuid4()
    if key:
        existing = PollView.objects.filter(uuid=poll_uuid).first()
        if existing is not None:
            return existing
    metadata = _plain_json({} if metadata is None else metadata)
    poll = Poll(poll_uuid)
    poll.create(
        title=title,
        description=description,
        type=type,
        options=options,
        max_choices=max_choices,
        start_date=start_date,
        end_date=end_date,
        voting_power_strategy=voting_power_strategy,
        required_participation=required_participation,
        execution_workflow=execution_workflow,
        metadata=metadata,
        key=key,
        now=_now(now),
        by=current_actor(),
        workflows=_workflows.keys(),
    )
    workflow = _workflows.get(execution_workflow) if execution_workflow else None
    if workflow is not None and workflow.check is not None:
        workflow.check(poll_type=poll.type, options=poll.options, metadata=poll.metadata)
    store.save(poll)
    return PollView.objects.get(uuid=poll_uuid)


def _save_with_power(poll: Poll) -> None:
    """Save a poll that just recorded its voting-power snapshot, and store its state too: later
    loads (each vote) then start after the snapshot's events instead of decoding them again."""
    store.save(poll)
    store.take_snapshot(poll)


@store.command
def poll_activate(*, poll_uuid: uuid.UUID, now: dt.datetime | None = None) -> PollView:
    """Open a draft for votes, only inside its window, and fix every user's voting power now.

    Every channel (API, console, the basket's monthly vote) comes through here, so no poll is
    open without its snapshot."""
    now = _now(now)
    poll = _load_poll(poll_uuid)
    poll.ensure_activatable(now)  # before the snapshot query, which reads every balance
    poll.activate(now=now, by=current_actor(), powers=voting_powers_now(poll.voting_power_strategy))
    _save_with_power(poll)
    return PollView.objects.get(uuid=poll_uuid)


def _fix_power_if_missing(poll: Poll, now: dt.datetime) -> None:
    """A poll activated before snapshots were recorded gets its snapshot at its first vote or
    its close after the upgrade, once, under the poll's lock."""
    if poll.needs_power_snapshot:
        poll.record_power_snapshot(powers=voting_powers_now(poll.voting_power_strategy), now=now)
        _save_with_power(poll)


@store.command
def poll_cancel(*, poll_uuid: uuid.UUID, reason: str, now: dt.datetime | None = None) -> PollView:
    """Cancel a draft or active poll; a closed poll cannot be cancelled."""
    if not isinstance(reason, str) or len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(
            details={"reason": [f"a text of at most {MAX_REASON_LENGTH} characters"]}
        )
    poll = _load_poll(poll_uuid)
    poll.cancel(reason=reason, now=_now(now), by=current_actor())
    store.save(poll)
    return PollView.objects.get(uuid=poll_uuid)


@store.command
def poll_close(*, poll_uuid: uuid.UUID, now: dt.datetime | None = None) -> PollView:
    """Close an active poll (staff may close it early), freeze its results and, with a winner
    and the required participation met, run its execution workflow."""
    now = _now(now)
    poll = _load_poll(poll_uuid)
    _fix_power_if_missing(poll, now)
    view = PollView.objects.get(uuid=poll_uuid)  # the tally, read under the poll's lock
    results = poll.close(
        now=now,
        by=current_actor(),
        totals=view.totals,
        total_power=view.total_power,
        votes_count=view.votes_count,
    )
    store.save(poll)
    if results["execution_due"]:
        _execute(poll, results, now)
    return PollView.objects.get(uuid=poll_uuid)


def _execute(poll: Poll, results: dict[str, Any], now: dt.datetime) -> None:
    name = poll.execution_workflow or ""
    context = ExecutionContext(
        poll_uuid=poll.uuid,
        title=poll.title,
        type=poll.type,
        options=[dict(option) for option in poll.options],
        metadata=dict(poll.metadata),
        results=results,
        closed_at=now,
    )
    try:
        workflow = _workflows.get(name)
        if workflow is None:
            raise InvalidInput(
                "The poll's execution workflow is not installed.",
                details={"execution_workflow": [name]},
            )
        with transaction.atomic():  # a refusal undoes whatever the workflow did, nothing else
            outcome = _plain_json(workflow.run(context), "outcome")
    except DomainError as exc:
        logger.warning("poll %s: execution workflow %s failed: %s", poll.uuid, name, exc.code)
        poll.record_execution_failure(error=exc.as_dict(), now=now)
    else:
        poll.record_execution(outcome=outcome, now=now)
    store.save(poll)


def polls_close_expired(*, now: dt.datetime | None = None) -> list[uuid.UUID]:
    """Close every active poll whose end has passed, each in its own transaction; returns the
    polls closed. One that cannot be closed (closed meanwhile by staff) is logged and skipped."""
    now = _now(now)
    closed = []
    for poll_uuid in polls_expired(now=now):
        try:
            poll_close(poll_uuid=poll_uuid, now=now)
        except DomainError as exc:
            logger.warning("expired poll %s was not closed: %s", poll_uuid, exc.code)
            continue
        closed.append(poll_uuid)
    return closed


# --- votes ---------------------------------------------------------------------------------------


def _load_vote(vote_uuid: uuid.UUID) -> Vote:
    try:
        return store.load_one(Vote, vote_uuid)
    except AggregateNotFound:
        return Vote(vote_uuid)


@store.command
def vote_cast(
    *,
    poll_uuid: uuid.UUID,
    user,
    selected_options: list[str] | None = None,
    allocations: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> VoteView:
    """Cast the user's one vote: `selected_options`, or `allocations` in a weighted poll.

    The power is the user's in the poll's snapshot (none for a user without power at
    activation, or inactive now). Refused with POLL_NOT_ACTIVE, ALREADY_VOTED, INVALID_OPTIONS
    or NO_VOTING_POWER.
    """
    voted_at = _now(now)
    poll = _load_poll(poll_uuid)
    poll.ensure_open_for_votes(voted_at)
    vote = _load_vote(vote_uuid_for(poll_uuid, user.uuid))
    if vote.poll_uuid is not None:
        raise AlreadyVoted(details={"poll": str(poll_uuid)})
    selected, allocated = poll.ballot(selected_options or [], allocations or {})
    _fix_power_if_missing(poll, voted_at)
    power = snapshot_power_of(poll_uuid, user.uuid) if user.is_active else 0
    signature = vote_signature(
        poll_uuid=poll_uuid,
        user_uuid=user.uuid,
        selected_options=selected,
        allocations=allocated,
        voting_power=power,
        voted_at=voted_at,
    )
    vote.cast(
        poll_uuid=poll_uuid,
        user_uuid=user.uuid,
        selected_options=selected,
        allocations=allocated,
        voting_power=power,
        strategy=poll.voting_power_strategy,
        voted_at=voted_at,
        signature=signature,
    )
    store.save(vote)
    return VoteView.objects.get(uuid=vote.uuid)


# --- demo data -----------------------------------------------------------------------------------

DEMO_POLL_KEY = "demo:add-cad"


def demo_polls_seed(*, users: dict) -> None:
    """An open yes/no poll (one user, one vote) in which Kenji has voted. Runs once."""
    poll_uuid = poll_uuid_for_key(DEMO_POLL_KEY)
    if PollView.objects.filter(uuid=poll_uuid).exists():
        return
    now = timezone.now()
    poll_create(
        title="Add the Canadian dollar to the GCU basket?",
        description="Should CAD become a component of the Global Currency Unit next quarter?",
        type=YES_NO,
        options=[{"id": "yes", "label": "Yes, add CAD"}, {"id": "no", "label": "No"}],
        start_date=now - dt.timedelta(hours=1),
        end_date=now + dt.timedelta(days=14),
        voting_power_strategy=ONE_USER_ONE_VOTE,
        required_participation="10",
        key=DEMO_POLL_KEY,
    )
    poll_activate(poll_uuid=poll_uuid)
    vote_cast(poll_uuid=poll_uuid, user=users["kenji"], selected_options=["yes"])
