"""The Poll and Vote aggregates, and the pure arithmetic of ballots and results.

Pure Python: the services pass in the time, every user's voting power when a poll is activated
(which the poll records as its snapshot), the voter's power from that snapshot and the tally, so
every rule here is deterministic.
State holds JSON values only (datetimes and decimals as strings) so the default snapshot works.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Collection, Mapping
from decimal import ROUND_DOWN, Decimal, InvalidOperation, localcontext
from typing import Any

from apps.core.aggregates import AggregateRoot, applies
from apps.core.errors import (
    AlreadyVoted,
    DomainError,
    InvalidInput,
    InvalidOptions,
    NoVotingPower,
    PollNotActive,
)
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

# Fixed forever: the uuids of keyed polls and of votes are derived from it.
NAMESPACE = uuid.UUID("0b7f3c52-6f0e-4d8a-a7a4-3f1f2d9c8e61")

SINGLE_CHOICE = "single_choice"
MULTIPLE_CHOICE = "multiple_choice"
WEIGHTED_CHOICE = "weighted_choice"
YES_NO = "yes_no"
RANKED_CHOICE = "ranked_choice"
POLL_TYPES = (SINGLE_CHOICE, MULTIPLE_CHOICE, WEIGHTED_CHOICE, YES_NO, RANKED_CHOICE)

DRAFT, ACTIVE, CLOSED, EXECUTED, CANCELLED, FAILED = (
    "draft",
    "active",
    "closed",
    "executed",
    "cancelled",
    "failed",
)
STATUSES = (DRAFT, ACTIVE, CLOSED, EXECUTED, CANCELLED, FAILED)

ONE_USER_ONE_VOTE = "one_user_one_vote"
ASSET_WEIGHTED = "asset_weighted"
GCU_WEIGHTED = "gcu_weighted"
QUADRATIC = "quadratic"
STRATEGIES = (ONE_USER_ONE_VOTE, ASSET_WEIGHTED, GCU_WEIGHTED, QUADRATIC)

# Voting power: asset_weighted counts the USD a user holds across all accounts, in cents.
GCU_ASSET = "GCU"
USD_ASSET = "USD"
MIN_USD_CENTS = 100
CENTS_PER_VOTE = 10_000

# Users per VotingPowerSnapshotted event: a few hundred kilobytes of JSON at most.
POWER_SNAPSHOT_PART = 2000

OPTION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,50}$")
MAX_OPTIONS = 50
MAX_TITLE = 200
MAX_DESCRIPTION = 5000
HUNDRED = Decimal(100)
CENT = Decimal("0.01")


class PollNotDraft(DomainError):
    code = "POLL_NOT_DRAFT"
    default_message = "Only a draft poll can be activated."


class PollOutsideWindow(DomainError):
    code = "POLL_OUTSIDE_WINDOW"
    default_message = "A poll can be activated only between its start and end dates."


class PollNotCancellable(DomainError):
    code = "POLL_NOT_CANCELLABLE"
    default_message = "Only a draft or active poll can be cancelled; a closed poll cannot."


class PowerAlreadyFixed(DomainError):
    code = "POWER_ALREADY_FIXED"
    default_message = "The poll's voting power was fixed when it was activated."


class PollNotClosed(DomainError):
    code = "POLL_NOT_CLOSED"
    default_message = "The poll must be closed, with its execution due, to record the execution."


def poll_uuid_for_key(key: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"poll:{key}")


def vote_uuid_for(poll_uuid: uuid.UUID, user_uuid: uuid.UUID) -> uuid.UUID:
    """One user has at most one vote per poll: its aggregate uuid is derived from the pair."""
    return uuid.uuid5(NAMESPACE, f"vote:{poll_uuid}:{user_uuid}")


# --- percentages ---------------------------------------------------------------------------------


def parse_percent(value: Any) -> Decimal | None:
    """A percentage from 0 to 100 with at most two decimals, or None when it is not one.

    Strings, ints and Decimals are accepted; floats never are (they are inexact).
    """
    if isinstance(value, bool | float) or value is None:
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or not 0 <= number <= HUNDRED:
        return None
    if number != number.quantize(CENT, rounding=ROUND_DOWN):
        return None
    return number.quantize(CENT)


def percent_text(value: Decimal) -> str:
    """A percentage as stored and shown: two decimals ("40.00")."""
    return str(value.quantize(CENT))


def plain(value: Decimal) -> str:
    """An exact decimal without exponent or trailing zeros ("12", "0.3333")."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


# --- voting power ------------------------------------------------------------------------------


def asset_weighted_power(usd_cents: int) -> int:
    """Under one dollar no vote; else one vote per 100 USD, and at least one."""
    if usd_cents < MIN_USD_CENTS:
        return 0
    return max(1, usd_cents // CENTS_PER_VOTE)


def power_from_holdings(strategy: str, *, usd_cents: int = 0, gcu_units: int = 0) -> int:
    """The voting power a strategy gives for what a user holds (one_user_one_vote: 1)."""
    if strategy == ONE_USER_ONE_VOTE:
        return 1
    if strategy == ASSET_WEIGHTED:
        return asset_weighted_power(usd_cents)
    if strategy == GCU_WEIGHTED:
        return max(0, gcu_units)
    if strategy == QUADRATIC:
        return math.isqrt(asset_weighted_power(usd_cents))
    raise InvalidInput(details={"voting_power_strategy": [f"one of {', '.join(STRATEGIES)}"]})


# --- ballots and results -------------------------------------------------------------------------


def ballot_points(
    poll_type: str,
    option_ids: list[str],
    selected: tuple[str, ...],
    allocations: Mapping[str, str],
    power: int,
) -> dict[str, Decimal]:
    """What one ballot adds to each option's total.

    single, yes/no and multiple choice: the voter's full power to each option chosen;
    weighted choice: power x percent / 100 to each option; ranked choice (a Borda count):
    with N options the first preference gets N x power, the second N - 1 x power, and so on.
    """
    if poll_type == WEIGHTED_CHOICE:
        with localcontext() as ctx:
            ctx.prec = 60
            return {
                option: Decimal(power) * Decimal(allocations[option]) / HUNDRED
                for option in option_ids
                if Decimal(allocations.get(option, "0"))
            }
    if poll_type == RANKED_CHOICE:
        count = len(option_ids)
        return {option: Decimal(power * (count - rank)) for rank, option in enumerate(selected)}
    return {option: Decimal(power) for option in selected}


def tally_add(totals: Mapping[str, str], points: Mapping[str, Decimal]) -> dict[str, str]:
    """Totals (option -> exact decimal string) with one ballot's points added."""
    with localcontext() as ctx:
        ctx.prec = 60
        added = dict(totals)
        for option, value in points.items():
            added[option] = plain(Decimal(added.get(option, "0")) + value)
        return added


def poll_results(
    *,
    option_ids: list[str],
    totals: Mapping[str, str],
    total_power: int,
    votes_count: int,
    eligible_power: int,
    required_participation: Decimal | None,
    execution_workflow: str | None,
) -> dict[str, Any]:
    """The results of a poll from its tally.

    Participation is the voting power cast as a percentage of the eligible power (rounded
    down to two decimals; the comparison with the required participation is exact). The winner
    is the option with the largest total; a tie, or no vote at all, means no winner. The
    execution workflow is due only with a winner and the participation met.
    """
    full = {option: Decimal(totals.get(option, "0")) for option in option_ids}
    with localcontext() as ctx:
        ctx.prec = 60
        participation = (
            (Decimal(total_power) * HUNDRED / eligible_power).quantize(CENT, rounding=ROUND_DOWN)
            if eligible_power
            else Decimal("0.00")
        )
        if not required_participation:
            met = True
        elif not eligible_power:
            met = False
        else:
            met = Decimal(total_power) * HUNDRED >= required_participation * eligible_power
    best = max(full.values(), default=Decimal(0))
    leaders = [option for option, value in full.items() if value == best]
    winner = leaders[0] if best > 0 and len(leaders) == 1 else None
    return {
        "totals": {option: plain(value) for option, value in full.items()},
        "total_power": total_power,
        "votes_count": votes_count,
        "eligible_power": eligible_power,
        "participation": str(participation),
        "required_participation": (
            None if required_participation is None else percent_text(required_participation)
        ),
        "participation_met": met,
        "winner": winner,
        "execution_due": bool(execution_workflow and winner and met),
    }


# --- the Poll --------------------------------------------------------------------------------


def _normalised_options(
    poll_type: str, options: Any, errors: dict[str, list[str]]
) -> list[dict[str, str]]:
    if not isinstance(options, list | tuple) or not 2 <= len(options) <= MAX_OPTIONS:
        errors["options"] = [f"a list of 2 to {MAX_OPTIONS} options"]
        return []
    if poll_type == YES_NO and len(options) != 2:
        errors["options"] = ["a yes/no poll has exactly two options"]
        return []
    normalised: list[dict[str, str]] = []
    problems: list[str] = []
    for index, option in enumerate(options):
        if not isinstance(option, Mapping):
            problems.append(f"option {index}: must be an object with id and label")
            continue
        option_id, label = option.get("id"), option.get("label")
        if not isinstance(option_id, str) or not OPTION_ID.match(option_id):
            problems.append(f"option {index}: id must be 1-50 letters, digits or _.:-")
            continue
        if not isinstance(label, str) or not label.strip() or len(label) > MAX_TITLE:
            problems.append(f"option {option_id}: label must be 1-{MAX_TITLE} characters")
            continue
        entry = {"id": option_id, "label": label.strip()}
        bounds = {k: option.get(k) for k in ("min_weight", "max_weight", "default_weight")}
        if poll_type != WEIGHTED_CHOICE:
            if any(value is not None for value in bounds.values()):
                problems.append(f"option {option_id}: weights are for weighted_choice polls only")
            normalised.append(entry)
            continue
        low = parse_percent(bounds["min_weight"] if bounds["min_weight"] is not None else 0)
        high = parse_percent(bounds["max_weight"] if bounds["max_weight"] is not None else 100)
        default = bounds["default_weight"]
        default_value = None if default is None else parse_percent(default)
        if low is None or high is None or low > high:
            problems.append(f"option {option_id}: min_weight <= max_weight, each 0-100")
            continue
        if default is not None and (default_value is None or not low <= default_value <= high):
            problems.append(f"option {option_id}: default_weight must lie within its bounds")
            continue
        entry |= {"min_weight": percent_text(low), "max_weight": percent_text(high)}
        if default_value is not None:
            entry["default_weight"] = percent_text(default_value)
        normalised.append(entry)
    ids = [o["id"] for o in normalised]
    if len(set(ids)) != len(ids):
        problems.append("option ids must be unique")
    if poll_type == WEIGHTED_CHOICE and not problems:
        lows = sum((Decimal(o["min_weight"]) for o in normalised), Decimal(0))
        highs = sum((Decimal(o["max_weight"]) for o in normalised), Decimal(0))
        if not lows <= HUNDRED <= highs:
            problems.append("the bounds must allow weights summing to 100")
        defaults = [o.get("default_weight") for o in normalised]
        if any(d is not None for d in defaults) and (
            None in defaults or sum(Decimal(d) for d in defaults) != HUNDRED
        ):
            problems.append("default weights must be given for every option and sum to 100")
    if problems:
        errors["options"] = problems
    return normalised


class Poll(AggregateRoot):
    """A poll: draft -> active -> closed -> executed (or failed); draft or active -> cancelled."""

    aggregate_type = "governance.Poll"

    def __init__(self, aggregate_uuid: uuid.UUID):
        super().__init__(aggregate_uuid)
        self.status = ""
        self.title = ""
        self.type = ""
        self.options: list[dict[str, str]] = []
        self.max_choices: int | None = None
        self.start_date = ""
        self.end_date = ""
        self.voting_power_strategy = ""
        self.required_participation: str | None = None
        self.execution_workflow: str | None = None
        self.metadata: dict[str, Any] = {}
        self.results: dict[str, Any] | None = None
        # The voting-power snapshot: when it was taken and the power it gives everyone in all.
        self.power_fixed_at: str | None = None
        self.eligible_power = 0

    @property
    def exists(self) -> bool:
        return bool(self.status)

    @property
    def option_ids(self) -> list[str]:
        return [option["id"] for option in self.options]

    @property
    def starts(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.start_date)

    @property
    def ends(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.end_date)

    @property
    def required(self) -> Decimal | None:
        return None if self.required_participation is None else Decimal(self.required_participation)

    # --- commands ----------------------------------------------------------------------------

    def create(
        self,
        *,
        title: Any,
        description: Any,
        type: Any,
        options: Any,
        max_choices: Any,
        start_date: Any,
        end_date: Any,
        voting_power_strategy: Any,
        required_participation: Any,
        execution_workflow: Any,
        metadata: Any,
        key: str | None,
        now: dt.datetime,
        by: dict[str, Any],
        workflows: Collection[str],
    ) -> None:
        if self.exists:
            raise InvalidInput("This poll already exists.", details={"uuid": [str(self.uuid)]})
        errors: dict[str, list[str]] = {}
        if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE:
            errors["title"] = [f"a title of 1 to {MAX_TITLE} characters"]
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            errors["description"] = [f"at most {MAX_DESCRIPTION} characters"]
        if type not in POLL_TYPES:
            errors["type"] = [f"one of {', '.join(POLL_TYPES)}"]
        normalised = _normalised_options(type, options, errors) if type in POLL_TYPES else []
        if type == MULTIPLE_CHOICE and normalised:
            if max_choices is None:
                max_choices = len(normalised)
            if (
                not isinstance(max_choices, int)
                or isinstance(max_choices, bool)
                or not 1 <= max_choices <= len(normalised)
            ):
                errors["max_choices"] = [f"an integer from 1 to {len(normalised)}"]
        elif max_choices is not None:
            errors["max_choices"] = ["only for multiple_choice polls"]
        for field, moment in (("start_date", start_date), ("end_date", end_date)):
            if not isinstance(moment, dt.datetime) or moment.tzinfo is None:
                errors[field] = ["a timezone-aware date and time"]
        if "start_date" not in errors and "end_date" not in errors:
            if end_date <= start_date:
                errors["end_date"] = ["must be after start_date"]
            elif end_date <= now:
                errors["end_date"] = ["must be in the future"]
        if voting_power_strategy not in STRATEGIES:
            errors["voting_power_strategy"] = [f"one of {', '.join(STRATEGIES)}"]
        required = None
        if required_participation is not None:
            required = parse_percent(required_participation)
            if required is None:
                errors["required_participation"] = ["a percentage from 0 to 100, two decimals"]
        if execution_workflow is not None and execution_workflow not in workflows:
            errors["execution_workflow"] = [f"one of {', '.join(sorted(workflows)) or 'none'}"]
        if not isinstance(metadata, dict):
            errors["metadata"] = ["must be an object"]
        if errors:
            raise InvalidInput(details=errors)
        self.record(
            PollCreated(
                title=title.strip(),
                description=description,
                type=type,
                options=normalised,
                max_choices=max_choices,
                start_date=start_date,
                end_date=end_date,
                voting_power_strategy=voting_power_strategy,
                required_participation=required,
                execution_workflow=execution_workflow,
                metadata=metadata,
                key=key,
                by=by,
            )
        )

    @property
    def needs_power_snapshot(self) -> bool:
        """An active poll without a snapshot: one activated before snapshots were recorded."""
        return self.status == ACTIVE and self.power_fixed_at is None

    def ensure_activatable(self, now: dt.datetime) -> None:
        if self.status != DRAFT:
            raise PollNotDraft(details={"poll": str(self.uuid), "status": self.status})
        if not self.starts <= now < self.ends:
            raise PollOutsideWindow(
                details={"start_date": self.start_date, "end_date": self.end_date}
            )

    def activate(
        self, *, now: dt.datetime, by: dict[str, Any], powers: Mapping[uuid.UUID, int]
    ) -> None:
        """Open the poll and fix every user's voting power as it is now (`powers`, by the
        poll's strategy): its votes use that power, whatever moves afterwards."""
        self.ensure_activatable(now)
        self.record(PollActivated(at=now, by=by))
        self._fix_power(powers, now)

    def record_power_snapshot(self, *, powers: Mapping[uuid.UUID, int], now: dt.datetime) -> None:
        """Fix the power of an active poll that has none (see `needs_power_snapshot`)."""
        if not self.needs_power_snapshot:
            raise PowerAlreadyFixed(details={"poll": str(self.uuid), "status": self.status})
        self._fix_power(powers, now)

    def _fix_power(self, powers: Mapping[uuid.UUID, int], now: dt.datetime) -> None:
        if any(isinstance(power, bool) or not isinstance(power, int) for power in powers.values()):
            raise InvalidInput(details={"powers": ["whole numbers"]})
        entries = sorted((str(user), power) for user, power in powers.items() if power > 0)
        # At least one part, so an empty snapshot is still a snapshot.
        parts = max(1, math.ceil(len(entries) / POWER_SNAPSHOT_PART))
        for part in range(parts):
            chunk = entries[part * POWER_SNAPSHOT_PART : (part + 1) * POWER_SNAPSHOT_PART]
            self.record(
                VotingPowerSnapshotted(
                    strategy=self.voting_power_strategy,
                    at=now,
                    part=part + 1,
                    parts=parts,
                    powers=dict(chunk),
                )
            )

    def cancel(self, *, reason: str, now: dt.datetime, by: dict[str, Any]) -> None:
        if self.status not in (DRAFT, ACTIVE):
            raise PollNotCancellable(details={"poll": str(self.uuid), "status": self.status})
        self.record(PollCancelled(reason=reason, at=now, by=by))

    def ensure_open_for_votes(self, now: dt.datetime) -> None:
        """Votes are taken only while the poll is active and before its end."""
        if self.status != ACTIVE or not self.starts <= now < self.ends:
            raise PollNotActive(
                details={"poll": str(self.uuid), "status": self.status, "end_date": self.end_date}
            )

    def ballot(self, selected_options: Any, allocations: Any) -> tuple[tuple[str, ...], dict]:
        """Check a ballot against the poll's type and options; returns it normalised:
        the options chosen (in ballot order; weighted: those above zero, in option order) and,
        for a weighted poll, every option's percentage as a two-decimal string."""
        known = self.option_ids
        if self.type == WEIGHTED_CHOICE:
            if selected_options:
                raise InvalidOptions(
                    details={"selected_options": ["a weighted poll takes allocations instead"]}
                )
            return self._allocation_ballot(allocations, known)
        if allocations:
            raise InvalidOptions(details={"allocations": ["only for weighted_choice polls"]})
        if not isinstance(selected_options, list | tuple) or not all(
            isinstance(option, str) for option in selected_options
        ):
            raise InvalidOptions(details={"selected_options": ["a list of option ids"]})
        chosen = tuple(selected_options)
        unknown = [option for option in chosen if option not in known]
        if unknown:
            raise InvalidOptions(details={"selected_options": [f"unknown: {', '.join(unknown)}"]})
        if len(set(chosen)) != len(chosen):
            raise InvalidOptions(details={"selected_options": ["an option may appear only once"]})
        if self.type in (SINGLE_CHOICE, YES_NO) and len(chosen) != 1:
            raise InvalidOptions(details={"selected_options": ["choose exactly one option"]})
        if self.type == MULTIPLE_CHOICE and not 1 <= len(chosen) <= (self.max_choices or 0):
            raise InvalidOptions(
                details={"selected_options": [f"choose 1 to {self.max_choices} options"]}
            )
        if self.type == RANKED_CHOICE and len(chosen) < 2:
            raise InvalidOptions(
                details={"selected_options": ["rank at least two distinct options"]}
            )
        return chosen, {}

    def _allocation_ballot(self, allocations: Any, known: list[str]) -> tuple[tuple, dict]:
        if not isinstance(allocations, Mapping) or not allocations:
            raise InvalidOptions(details={"allocations": ["an object of option id -> percent"]})
        unknown = sorted(str(option) for option in allocations if option not in known)
        if unknown:
            raise InvalidOptions(details={"allocations": [f"unknown: {', '.join(unknown)}"]})
        weights: dict[str, Decimal] = {}
        problems = []
        for option in self.options:
            raw = allocations.get(option["id"], 0)
            weight = parse_percent(raw)
            if weight is None:
                problems.append(f"{option['id']}: a percentage from 0 to 100, two decimals")
                continue
            low, high = Decimal(option["min_weight"]), Decimal(option["max_weight"])
            if not low <= weight <= high:
                problems.append(f"{option['id']}: must lie between {low} and {high}")
            weights[option["id"]] = weight
        if problems:
            raise InvalidOptions(details={"allocations": problems})
        total = sum(weights.values(), Decimal(0))
        if total != HUNDRED:
            raise InvalidOptions(
                details={"allocations": [f"the percentages must sum to 100, not {total}"]}
            )
        chosen = tuple(option for option in known if weights[option])
        return chosen, {option: percent_text(weights[option]) for option in known}

    def close(
        self,
        *,
        now: dt.datetime,
        by: dict[str, Any],
        totals: Mapping[str, str],
        total_power: int,
        votes_count: int,
    ) -> dict[str, Any]:
        """Freeze the results; returns them (`execution_due` says whether to run the workflow).
        The eligible power is the snapshot's: everyone's power fixed at activation."""
        if self.status != ACTIVE:
            raise PollNotActive(details={"poll": str(self.uuid), "status": self.status})
        results = poll_results(
            option_ids=self.option_ids,
            totals=totals,
            total_power=total_power,
            votes_count=votes_count,
            eligible_power=max(self.eligible_power, total_power),
            required_participation=self.required,
            execution_workflow=self.execution_workflow,
        )
        self.record(PollClosed(at=now, results=results, by=by))
        return results

    def record_execution(self, *, outcome: dict[str, Any], now: dt.datetime) -> None:
        self._require_execution_due()
        self.record(PollExecuted(workflow=self.execution_workflow or "", outcome=outcome, at=now))

    def record_execution_failure(self, *, error: dict[str, Any], now: dt.datetime) -> None:
        self._require_execution_due()
        self.record(
            PollExecutionFailed(workflow=self.execution_workflow or "", error=error, at=now)
        )

    def _require_execution_due(self) -> None:
        if self.status != CLOSED or not (self.results or {}).get("execution_due"):
            raise PollNotClosed(details={"poll": str(self.uuid), "status": self.status})

    # --- state -------------------------------------------------------------------------------

    @applies(PollCreated)
    def _created(self, evt: PollCreated) -> None:
        self.status = DRAFT
        self.title = evt.title
        self.type = evt.type
        self.options = [dict(option) for option in evt.options]
        self.max_choices = evt.max_choices
        self.start_date = evt.start_date.isoformat()
        self.end_date = evt.end_date.isoformat()
        self.voting_power_strategy = evt.voting_power_strategy
        self.required_participation = (
            None if evt.required_participation is None else str(evt.required_participation)
        )
        self.execution_workflow = evt.execution_workflow
        self.metadata = dict(evt.metadata)

    @applies(PollActivated)
    def _activated(self, evt: PollActivated) -> None:
        self.status = ACTIVE

    @applies(VotingPowerSnapshotted)
    def _power_fixed(self, evt: VotingPowerSnapshotted) -> None:
        self.power_fixed_at = evt.at.isoformat()
        self.eligible_power += sum(evt.powers.values())

    @applies(PollCancelled)
    def _cancelled(self, evt: PollCancelled) -> None:
        self.status = CANCELLED

    @applies(PollClosed)
    def _closed(self, evt: PollClosed) -> None:
        self.status = CLOSED
        self.results = dict(evt.results)

    @applies(PollExecuted)
    def _executed(self, evt: PollExecuted) -> None:
        self.status = EXECUTED

    @applies(PollExecutionFailed)
    def _failed(self, evt: PollExecutionFailed) -> None:
        self.status = FAILED


class Vote(AggregateRoot):
    """One user's vote in one poll; cast once, never changed."""

    aggregate_type = "governance.Vote"

    def __init__(self, aggregate_uuid: uuid.UUID):
        super().__init__(aggregate_uuid)
        self.poll_uuid: str | None = None
        self.user_uuid: str | None = None
        self.voting_power = 0

    def cast(
        self,
        *,
        poll_uuid: uuid.UUID,
        user_uuid: uuid.UUID,
        selected_options: tuple[str, ...],
        allocations: dict[str, str],
        voting_power: int,
        strategy: str,
        voted_at: dt.datetime,
        signature: str,
    ) -> None:
        if self.poll_uuid is not None:
            raise AlreadyVoted(details={"poll": str(poll_uuid)})
        if voting_power <= 0:
            raise NoVotingPower(details={"poll": str(poll_uuid), "strategy": strategy})
        self.record(
            VoteCast(
                poll_uuid=poll_uuid,
                user_uuid=user_uuid,
                selected_options=selected_options,
                allocations=allocations,
                voting_power=voting_power,
                strategy=strategy,
                voted_at=voted_at,
                signature=signature,
            )
        )

    @applies(VoteCast)
    def _cast(self, evt: VoteCast) -> None:
        self.poll_uuid = str(evt.poll_uuid)
        self.user_uuid = str(evt.user_uuid)
        self.voting_power = evt.voting_power
