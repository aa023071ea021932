"""Read side of governance: polls, votes, voting power, results and signature checks."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet, Sum
from django.utils import timezone

from apps.accounts.models import Account, AccountBalance
from apps.core.errors import NotFound
from apps.core.events import decode
from apps.core.hashing import GENESIS_HASH, chain_hash
from apps.governance.aggregates import (
    ASSET_WEIGHTED,
    GCU_ASSET,
    GCU_WEIGHTED,
    QUADRATIC,
    USD_ASSET,
    poll_results,
    power_from_holdings,
)
from apps.governance.events import VoteCast
from apps.governance.models import GovernanceEvent, Poll, Vote, VotingPower
from apps.governance.signing import signature_matches
from apps.users.models import User

_ASSET_OF_STRATEGY = {
    ASSET_WEIGHTED: USD_ASSET,
    QUADRATIC: USD_ASSET,
    GCU_WEIGHTED: GCU_ASSET,
}


# --- polls ---------------------------------------------------------------------------------------


def poll_list(
    *, include_drafts: bool = False, status: str | None = None, type: str | None = None
) -> QuerySet[Poll]:
    """Polls newest first; drafts only for staff (`include_drafts`)."""
    polls = Poll.objects.order_by("-start_date", "uuid")
    if not include_drafts:
        polls = polls.exclude(status=Poll.Status.DRAFT)
    if status is not None:
        polls = polls.filter(status=status)
    if type is not None:
        polls = polls.filter(type=type)
    return polls


def poll_active_list(*, now: dt.datetime | None = None) -> QuerySet[Poll]:
    """Polls taking votes now: active and between their start and end."""
    now = now or timezone.now()
    return Poll.objects.filter(
        status=Poll.Status.ACTIVE, start_date__lte=now, end_date__gt=now
    ).order_by("end_date", "uuid")


def poll_get(poll_uuid: uuid.UUID, *, include_drafts: bool = True) -> Poll:
    poll = Poll.objects.filter(uuid=poll_uuid).first()
    if poll is None or (poll.status == Poll.Status.DRAFT and not include_drafts):
        raise NotFound("No such poll.", details={"uuid": str(poll_uuid)})
    return poll


def polls_expired(*, now: dt.datetime | None = None) -> list[uuid.UUID]:
    """Active polls whose end has passed: the close job's work list, oldest end first."""
    now = now or timezone.now()
    return list(
        Poll.objects.filter(status=Poll.Status.ACTIVE, end_date__lte=now)
        .order_by("end_date", "uuid")
        .values_list("uuid", flat=True)
    )


# --- voting power --------------------------------------------------------------------------------


def _customer_holdings(asset_code: str) -> QuerySet[AccountBalance]:
    """Balances of the asset in the open, unfrozen customer accounts of active users: frozen or
    closed money gives no voting power."""
    return AccountBalance.objects.filter(
        asset_code=asset_code,
        account__kind=Account.Kind.CUSTOMER,
        account__frozen=False,
        account__closed=False,
        account__owner__is_active=True,
    )


def voting_powers_now(
    strategy: str, *, user_uuids: list[uuid.UUID] | None = None
) -> dict[uuid.UUID, int]:
    """Every user's voting power under the strategy from the balances right now, users without
    power left out (of `user_uuids` only, when given). One set-wise query: the balances summed
    per owner in the database, never one load per account.

    What a poll's snapshot records when it is activated; votes never read it directly."""
    asset = _ASSET_OF_STRATEGY.get(strategy)
    if asset is None:  # one user, one vote (power_from_holdings refuses an unknown strategy)
        power = power_from_holdings(strategy)
        users = User.objects.filter(is_active=True)
        if user_uuids is not None:
            users = users.filter(uuid__in=user_uuids)
        return dict.fromkeys(users.values_list("uuid", flat=True).iterator(), power)
    holdings = _customer_holdings(asset)
    if user_uuids is not None:
        holdings = holdings.filter(account__owner_id__in=user_uuids)
    per_owner = (
        holdings.values("account__owner_id")
        .annotate(total=Sum("balance"))
        .values_list("account__owner_id", "total")
    )
    powers = {}
    for owner, total in per_owner.iterator():
        power = power_from_holdings(strategy, usd_cents=total, gcu_units=total)
        if power > 0:
            powers[owner] = power
    return powers


def snapshot_power_of(poll_uuid: uuid.UUID, user_uuid: uuid.UUID) -> int:
    """The user's power in the poll's snapshot (fixed at activation); 0 when not in it."""
    power = (
        VotingPower.objects.filter(poll_id=poll_uuid, user_uuid=user_uuid)
        .values_list("voting_power", flat=True)
        .first()
    )
    return power or 0


def voting_power_shown(poll: Poll, user: User) -> int:
    """The power the user has in the poll: the vote's if cast, else the snapshot's once the
    poll is activated; before that (a draft), what the snapshot would give if taken now."""
    vote = vote_of(poll.uuid, user.uuid)
    if vote is not None:
        return vote.voting_power
    if not user.is_active:
        return 0
    if poll.power_fixed_at is not None:
        return snapshot_power_of(poll.uuid, user.uuid)
    return voting_powers_now(poll.voting_power_strategy, user_uuids=[user.uuid]).get(user.uuid, 0)


def eligible_power(poll: Poll) -> int:
    """The power that may take part: the snapshot's total once the poll is activated (before
    that, what a snapshot taken now would total)."""
    if poll.power_fixed_at is not None:
        return poll.eligible_power or 0
    return sum(voting_powers_now(poll.voting_power_strategy).values())


# --- results -------------------------------------------------------------------------------------


def poll_results_get(poll: Poll) -> dict[str, Any]:
    """The frozen results of a closed poll, or the live ones (participation measured now)."""
    if poll.results is not None:
        return poll.results
    return poll_results(
        option_ids=[option["id"] for option in poll.options],
        totals=poll.totals,
        total_power=poll.total_power,
        votes_count=poll.votes_count,
        eligible_power=eligible_power(poll),
        required_participation=poll.required_participation,
        execution_workflow=poll.execution_workflow or None,
    )


# --- votes ---------------------------------------------------------------------------------------


def vote_get(vote_uuid: uuid.UUID) -> Vote:
    vote = Vote.objects.filter(uuid=vote_uuid).first()
    if vote is None:
        raise NotFound("No such vote.", details={"uuid": str(vote_uuid)})
    return vote


def vote_of(poll_uuid: uuid.UUID, user_uuid: uuid.UUID) -> Vote | None:
    return Vote.objects.filter(poll_id=poll_uuid, user_uuid=user_uuid).first()


def vote_list(*, poll_uuid: uuid.UUID) -> QuerySet[Vote]:
    return Vote.objects.filter(poll_id=poll_uuid).order_by("voted_at", "uuid")


@dataclass(frozen=True)
class VoteVerification:
    vote_uuid: uuid.UUID
    valid: bool
    problems: tuple[str, ...]


def vote_verify(vote: Vote) -> VoteVerification:
    """Check a vote three ways: its stored event is intact (its hash link), the event's
    signature matches poll, user, options, power and time, and the read model says the same."""
    problems: list[str] = []
    row = GovernanceEvent.objects.filter(
        aggregate_uuid=vote.uuid, event_type=VoteCast.event_type
    ).first()
    if row is None:
        return VoteVerification(vote.uuid, False, ("no VoteCast event for this vote",))
    if row.aggregate_version == 1:
        link = chain_hash(
            GENESIS_HASH,
            row.aggregate_uuid,
            row.aggregate_version,
            row.event_type,
            row.event_data,
            event_version=row.event_version,
            meta=row.meta_data,
        )
        if link != row.hash:
            problems.append("the stored event does not match its hash")
    evt: VoteCast = decode(row.event_type, row.event_version, row.event_data)  # type: ignore[assignment]
    fields = {
        "poll_uuid": evt.poll_uuid,
        "user_uuid": evt.user_uuid,
        "selected_options": evt.selected_options,
        "allocations": evt.allocations,
        "voting_power": evt.voting_power,
        "voted_at": evt.voted_at,
    }
    if not signature_matches(evt.signature, **fields):
        problems.append("the signature does not match the vote")
    shown = (
        vote.poll_id,
        vote.user_uuid,
        tuple(vote.selected_options),
        vote.allocations,
        vote.voting_power,
        vote.voted_at,
        vote.signature,
    )
    stored = (
        evt.poll_uuid,
        evt.user_uuid,
        tuple(evt.selected_options),
        evt.allocations,
        evt.voting_power,
        evt.voted_at,
        evt.signature,
    )
    if shown != stored:
        problems.append("the read model differs from the stored event")
    return VoteVerification(vote.uuid, not problems, tuple(problems))
