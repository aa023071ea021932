"""The monthly composition vote: opened on the 20th for next month, an allocation per
component within bounds summing to 100, the power-weighted average (two decimals, drift to the
largest weight) or the defaults, applied on the 1st with a rebalance."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import timezone

from apps.assets.services import asset_define
from apps.baskets.models import BasketCompositionChange
from apps.baskets.selectors import basket_get
from apps.baskets.services import (
    basket_compositions_apply_monthly,
    basket_define,
    basket_vote_open,
    basket_votes_open_monthly,
)
from apps.baskets.tasks import (
    apply_monthly_compositions_task,
    open_monthly_composition_votes_task,
)
from apps.core.errors import BasketNotDynamic, InvalidInput, InvalidOptions
from apps.governance.models import Poll
from apps.governance.services import poll_close, poll_create, vote_cast

pytestmark = pytest.mark.django_db

DEFAULTS = {
    "USD": "40.00",
    "EUR": "30.00",
    "GBP": "15.00",
    "CHF": "10.00",
    "JPY": "3.00",
    "XAU": "2.00",
}


def _first_of_next_month(day: dt.datetime) -> dt.datetime:
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )


@pytest.fixture
def twentieth():
    """The 20th of next month (the rates recorded today are valid then)."""
    return _first_of_next_month(timezone.now()).replace(day=20)


@pytest.fixture
def first(twentieth):
    """The 1st of the month the vote opened on the 20th decides."""
    return _first_of_next_month(twentieth)


def _vote_opened(twentieth: dt.datetime) -> Poll:
    """Open the vote; it fixes each holder's power now, so voters are funded before."""
    poll_uuid = basket_votes_open_monthly(now=twentieth)["opened"]["GCU"]
    return Poll.objects.get(uuid=poll_uuid)


@pytest.fixture
def vote_poll(bank, twentieth):
    return _vote_opened(twentieth)


def _weights() -> dict[str, str]:
    return {c.asset_code: str(c.weight) for c in basket_get("GCU").components.all()}


def _allocation(**weights) -> dict[str, str]:
    return {code: str(weights.get(code, Decimal(value))) for code, value in DEFAULTS.items()}


def test_the_20th_opens_next_months_vote(vote_poll, twentieth, first):
    assert vote_poll.status == "active"
    assert vote_poll.type == "weighted_choice"
    assert (vote_poll.start_date, vote_poll.end_date) == (twentieth, first)
    assert vote_poll.voting_power_strategy == "gcu_weighted"
    assert vote_poll.required_participation == Decimal("10.00")
    assert vote_poll.execution_workflow == "update_basket_composition"
    assert vote_poll.metadata == {"basket_code": "GCU", "voting_month": f"{first:%Y-%m}"}
    assert vote_poll.options[0] == {
        "id": "USD",
        "label": "US Dollar",
        "min_weight": "20.00",
        "max_weight": "50.00",
        "default_weight": "40.00",
    }
    assert {o["id"]: o["default_weight"] for o in vote_poll.options} == DEFAULTS


def test_opening_it_again_returns_the_same_poll(vote_poll, twentieth, first):
    later = twentieth + dt.timedelta(hours=3)
    assert basket_vote_open(code="GCU", month=first.date(), now=later).uuid == vote_poll.uuid
    assert basket_votes_open_monthly(now=later)["opened"] == {"GCU": str(vote_poll.uuid)}
    assert Poll.objects.count() == 1


def test_allocation_votes_must_sum_to_100_within_the_bounds(fund, user, twentieth):
    fund(user, {"GCU": 10_00})
    vote_poll = _vote_opened(twentieth)
    at = twentieth + dt.timedelta(days=1)
    with pytest.raises(InvalidOptions):  # sums to 99
        vote_cast(poll_uuid=vote_poll.uuid, user=user, allocations=_allocation(USD=39), now=at)
    with pytest.raises(InvalidOptions):  # USD above its maximum of 50
        vote_cast(
            poll_uuid=vote_poll.uuid, user=user, allocations=_allocation(USD=55, EUR=25), now=at
        )
    vote = vote_cast(
        poll_uuid=vote_poll.uuid, user=user, allocations=_allocation(USD=45, EUR=25), now=at
    )
    assert vote.voting_power == 10_00


def test_the_power_weighted_average_is_applied_on_the_1st_with_a_rebalance(
    fund, make_user, twentieth, first
):
    big, small = make_user(), make_user()
    fund(big, {"GCU": 100_00})
    fund(small, {"GCU": 50_00})
    vote_poll = _vote_opened(twentieth)
    at = twentieth + dt.timedelta(days=2)
    vote_cast(
        poll_uuid=vote_poll.uuid,
        user=big,
        allocations={"USD": 50, "EUR": 25, "GBP": 10, "CHF": 10, "JPY": 3, "XAU": 2},
        now=at,
    )
    vote_cast(
        poll_uuid=vote_poll.uuid,
        user=small,
        allocations={"USD": 30, "EUR": 40, "GBP": 15, "CHF": 5, "JPY": 5, "XAU": 5},
        now=at,
    )
    assert _weights() == DEFAULTS  # nothing changes before the 1st
    summary = basket_compositions_apply_monthly(now=first + dt.timedelta(minutes=10))
    assert summary == {"baskets": {"GCU": {"applied": True, "rebalanced": True}}, "failed": {}}
    # (2 x 50 + 30) / 3 = 43.33, (2 x 25 + 40) / 3 = 30, (2 x 10 + 15) / 3 = 11.67, ...
    decided = {"USD": "43.33", "EUR": "30.00", "GBP": "11.67", "CHF": "8.33", "JPY": "3.67"}
    assert _weights() == decided | {"XAU": "3.00"}
    poll = Poll.objects.get(uuid=vote_poll.uuid)
    assert poll.status == "executed"
    assert poll.results["participation"] == "100.00"
    assert poll.execution_outcome["composition"]["USD"] == "43.33"
    kinds = list(BasketCompositionChange.objects.order_by("id").values_list("kind", flat=True))
    # each change of weights fixes the quantities per unit again
    assert kinds == [
        "defined",
        "quantities",
        "scheduled",
        "changed",
        "quantities",
        "rebalanced",
        "quantities",
    ]
    assert basket_get("GCU").last_rebalanced_at == first + dt.timedelta(minutes=10)


def test_the_rounding_drift_goes_to_the_largest_weight(fund, make_user, twentieth, first):
    voters = [make_user() for _ in range(3)]
    for voter in voters:
        fund(voter, {"GCU": 1_00})
    vote_poll = _vote_opened(twentieth)
    ballots = [
        {"USD": "40.01", "EUR": "29.99", "GBP": 15, "CHF": 10, "JPY": 3, "XAU": 2},
        {"USD": "40.01", "EUR": "29.99", "GBP": 15, "CHF": 10, "JPY": 3, "XAU": 2},
        {"USD": 40, "EUR": 30, "GBP": "15.01", "CHF": "9.99", "JPY": 3, "XAU": 2},
    ]
    for voter, ballot in zip(voters, ballots, strict=True):
        vote_cast(poll_uuid=vote_poll.uuid, user=voter, allocations=ballot, now=twentieth)
    # averages 40.00667 -> 40.01, 29.99333 -> 29.99, 15.00333 -> 15.00, 9.99667 -> 10.00: 100.00
    basket_compositions_apply_monthly(now=first)
    assert _weights()["USD"] == "40.01" and sum(Decimal(w) for w in _weights().values()) == 100


def test_closed_early_by_staff_it_waits_for_the_1st(fund, user, twentieth, first):
    fund(user, {"GCU": 10_00})
    vote_poll = _vote_opened(twentieth)
    ballot = _allocation(USD=45, EUR=25)
    vote_cast(poll_uuid=vote_poll.uuid, user=user, allocations=ballot, now=twentieth)
    closed = poll_close(poll_uuid=vote_poll.uuid, now=twentieth + dt.timedelta(days=3))
    assert closed.status == "executed"
    assert closed.execution_outcome["effective_on"] == f"{first:%Y-%m-%d}"
    pending = basket_get("GCU")
    assert pending.pending_effective_on == first.date()
    assert {c["asset_code"]: c["weight"] for c in pending.pending_components}["USD"] == "45.00"
    assert _weights() == DEFAULTS
    basket_compositions_apply_monthly(now=first)
    assert _weights()["USD"] == "45.00" and _weights()["EUR"] == "25.00"
    assert basket_get("GCU").pending_components is None


def test_below_the_required_participation_nothing_changes_but_the_rebalance(
    fund, make_user, twentieth, first
):
    voter, whale = make_user(), make_user()
    fund(voter, {"GCU": 5_00})
    fund(whale, {"GCU": 100_00})  # holds 95% of the power and does not vote
    vote_poll = _vote_opened(twentieth)
    ballot = _allocation(USD=45, EUR=25)
    vote_cast(poll_uuid=vote_poll.uuid, user=voter, allocations=ballot, now=twentieth)
    basket_compositions_apply_monthly(now=first)
    poll = Poll.objects.get(uuid=vote_poll.uuid)
    assert poll.status == "closed"
    assert poll.results["participation"] == "4.76"
    assert poll.results["participation_met"] is False
    assert _weights() == DEFAULTS
    assert basket_get("GCU").last_rebalanced_at == first


def test_the_defaults_if_nobody_voted(vote_poll, first):
    summary = basket_compositions_apply_monthly(now=first)
    assert summary["baskets"]["GCU"] == {"applied": False, "rebalanced": True}
    assert Poll.objects.get(uuid=vote_poll.uuid).status == "closed"
    assert _weights() == DEFAULTS


def test_the_scheduled_tasks_open_and_apply_the_vote(bank, fund, user, twentieth, first):
    fund(user, {"GCU": 10_00})
    with mock.patch("django.utils.timezone.now", return_value=twentieth):
        opened = open_monthly_composition_votes_task.apply().get()
    assert opened["month"] == f"{first:%Y-%m}" and opened["failed"] == {}
    poll_uuid = uuid.UUID(opened["opened"]["GCU"])
    vote_cast(
        poll_uuid=poll_uuid, user=user, now=twentieth, allocations=_allocation(USD=50, EUR=20)
    )
    with mock.patch("django.utils.timezone.now", return_value=first + dt.timedelta(minutes=10)):
        applied = apply_monthly_compositions_task.apply().get()
    assert applied["baskets"]["GCU"] == {"applied": True, "rebalanced": True}
    assert _weights()["USD"] == "50.00" and _weights()["EUR"] == "20.00"


def test_only_dynamic_baskets_have_composition_votes(bank, twentieth, first):
    asset_define(code="FXB", name="Fixed basket", type="basket", precision=2)
    basket_define(
        code="FXB",
        name="Fixed basket",
        type="fixed",
        rebalance_frequency="never",
        components=[
            {"asset_code": "USD", "weight": "100", "min_weight": "100", "max_weight": "100"}
        ],
    )
    with pytest.raises(BasketNotDynamic):
        basket_vote_open(code="FXB", month=first.date(), now=twentieth)


def test_a_misconfigured_composition_poll_is_refused(bank, twentieth, first):
    with pytest.raises(InvalidInput) as refused:
        poll_create(
            title="Not a basket vote",
            type="single_choice",
            options=[{"id": "USD", "label": "USD"}, {"id": "EUR", "label": "EUR"}],
            start_date=twentieth,
            end_date=first,
            voting_power_strategy="gcu_weighted",
            execution_workflow="update_basket_composition",
            metadata={"basket_code": "GCU", "voting_month": "next month"},
            now=twentieth,
        )
    problems = refused.value.details["execution_workflow"]
    assert len(problems) == 4  # type, options, default weights, month
