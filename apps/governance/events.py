"""Governance events. Names and fields are a contract with every stored row.

A poll's lifecycle is the stream of the Poll aggregate; each vote is its own Vote aggregate (one
per poll and user), so a poll's stream stays short however many people vote. When a poll is
activated its stream also records every user's voting power at that moment
(`VotingPowerSnapshotted`, in parts), which is the only power its votes may use.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from apps.core.events import DomainEvent, event


@event("governance.PollCreated")
class PollCreated(DomainEvent):
    title: str
    description: str
    type: str  # single_choice | multiple_choice | weighted_choice | yes_no | ranked_choice
    # [{"id", "label"}]; weighted polls may add "min_weight", "max_weight", "default_weight"
    # (decimal strings, percent)
    options: list[Any]
    max_choices: int | None  # multiple_choice: at most this many options per ballot
    start_date: dt.datetime
    end_date: dt.datetime
    voting_power_strategy: str
    required_participation: Decimal | None  # percent of the eligible voting power
    execution_workflow: str | None
    metadata: dict[str, Any]
    key: str | None  # a natural key (e.g. "basket:GCU:2027-01"): such a poll exists once
    by: dict[str, Any]


@event("governance.PollActivated")
class PollActivated(DomainEvent):
    at: dt.datetime
    by: dict[str, Any]


@event("governance.VotingPowerSnapshotted")
class VotingPowerSnapshotted(DomainEvent):
    """One part of the voting power fixed when the poll was activated: user uuid -> power under
    the poll's strategy, from the balances at `at` (frozen and closed accounts excluded). Users
    without power are left out; a snapshot of many users is split over `parts` events, in user
    uuid order, so no single event grows without bound."""

    strategy: str
    at: dt.datetime
    part: int  # 1 to parts
    parts: int
    powers: dict[str, Any]  # user uuid (str) -> int, above zero


@event("governance.PollCancelled")
class PollCancelled(DomainEvent):
    reason: str
    at: dt.datetime
    by: dict[str, Any]


@event("governance.PollClosed")
class PollClosed(DomainEvent):
    """The results, frozen: totals per option, total and eligible power, participation, winner."""

    at: dt.datetime
    results: dict[str, Any]
    by: dict[str, Any]


@event("governance.PollExecuted")
class PollExecuted(DomainEvent):
    workflow: str
    outcome: dict[str, Any]
    at: dt.datetime


@event("governance.PollExecutionFailed")
class PollExecutionFailed(DomainEvent):
    workflow: str
    error: dict[str, Any]  # the DomainError's code, message and details
    at: dt.datetime


@event("governance.VoteCast")
class VoteCast(DomainEvent):
    """One user's ballot, with the voting power the poll's snapshot gave the user at activation
    (votes cast before snapshots existed carry the power the strategy gave at the vote)."""

    poll_uuid: uuid.UUID
    user_uuid: uuid.UUID
    selected_options: tuple[str, ...]
    allocations: dict[str, Any]  # weighted polls: option id -> percent (decimal string)
    voting_power: int
    strategy: str
    voted_at: dt.datetime
    signature: str  # HMAC over poll, user, options, power and time (apps.governance.signing)
