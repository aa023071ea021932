"""governance events -> Poll, VotingPower and Vote read models (inside the write transaction)."""

from __future__ import annotations

import uuid

from django.db.models import F, Value
from django.db.models.functions import Coalesce

from apps.core import sql
from apps.core.projection import EventRecord, Projector
from apps.governance.aggregates import ballot_points, tally_add
from apps.governance.events import (
    PollActivated,
    PollCancelled,
    PollClosed,
    PollCreated,
    PollExecuted,
    PollExecutionFailed,
    VoteCast,
    VotingPowerSnapshotted,
)
from apps.governance.models import Poll, Vote, VotingPower

governance_projector = Projector("governance", read_models=(Vote, VotingPower, Poll))


def _update(record: EventRecord, **changes) -> None:
    Poll.objects.filter(uuid=record.aggregate_uuid).update(updated_at=record.created_at, **changes)


@governance_projector.on(PollCreated)
def _created(evt: PollCreated, record: EventRecord) -> None:
    Poll.objects.create(
        uuid=record.aggregate_uuid,
        key=evt.key,
        title=evt.title,
        description=evt.description,
        type=evt.type,
        status=Poll.Status.DRAFT,
        options=evt.options,
        max_choices=evt.max_choices,
        start_date=evt.start_date,
        end_date=evt.end_date,
        voting_power_strategy=evt.voting_power_strategy,
        required_participation=evt.required_participation,
        execution_workflow=evt.execution_workflow or "",
        metadata=evt.metadata,
        created_by=evt.by,
        totals={option["id"]: "0" for option in evt.options},
        created_at=record.created_at,
        updated_at=record.created_at,
    )


@governance_projector.on(PollActivated)
def _activated(evt: PollActivated, record: EventRecord) -> None:
    _update(record, status=Poll.Status.ACTIVE, activated_at=evt.at)


@governance_projector.on(VotingPowerSnapshotted)
def _power_fixed(evt: VotingPowerSnapshotted, record: EventRecord) -> None:
    sql.insert_rows(
        VotingPower,
        ("poll", "user_uuid", "voting_power"),
        [(record.aggregate_uuid, uuid.UUID(user), power) for user, power in evt.powers.items()],
    )
    _update(
        record,
        power_fixed_at=evt.at,
        eligible_power=Coalesce(F("eligible_power"), Value(0)) + sum(evt.powers.values()),
    )


@governance_projector.on(PollCancelled)
def _cancelled(evt: PollCancelled, record: EventRecord) -> None:
    _update(
        record, status=Poll.Status.CANCELLED, cancelled_at=evt.at, cancel_reason=evt.reason[:500]
    )


@governance_projector.on(PollClosed)
def _closed(evt: PollClosed, record: EventRecord) -> None:
    _update(record, status=Poll.Status.CLOSED, closed_at=evt.at, results=evt.results)


@governance_projector.on(PollExecuted)
def _executed(evt: PollExecuted, record: EventRecord) -> None:
    _update(record, status=Poll.Status.EXECUTED, executed_at=evt.at, execution_outcome=evt.outcome)


@governance_projector.on(PollExecutionFailed)
def _failed(evt: PollExecutionFailed, record: EventRecord) -> None:
    _update(record, status=Poll.Status.FAILED, executed_at=evt.at, execution_error=evt.error)


@governance_projector.on(VoteCast)
def _vote_cast(evt: VoteCast, record: EventRecord) -> None:
    Vote.objects.create(
        uuid=record.aggregate_uuid,
        poll_id=evt.poll_uuid,
        user_uuid=evt.user_uuid,
        selected_options=list(evt.selected_options),
        allocations=evt.allocations,
        voting_power=evt.voting_power,
        strategy=evt.strategy,
        signature=evt.signature,
        voted_at=evt.voted_at,
        created_at=record.created_at,
    )
    # The vote command holds the poll's stream lock, so this read-modify-write cannot race.
    poll = Poll.objects.get(uuid=evt.poll_uuid)
    points = ballot_points(
        poll.type,
        [option["id"] for option in poll.options],
        evt.selected_options,
        evt.allocations,
        evt.voting_power,
    )
    Poll.objects.filter(uuid=poll.uuid).update(
        totals=tally_add(poll.totals, points),
        total_power=poll.total_power + evt.voting_power,
        votes_count=poll.votes_count + 1,
        updated_at=record.created_at,
    )
