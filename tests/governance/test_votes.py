"""Votes: when they are taken, one per user, the option checks of each poll type, the voting
power of each strategy (from the snapshot the poll took when activated) and the signature staff
can verify. Users who vote are made before the poll opens, so its snapshot gives them power."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import override_settings

from apps.core.errors import AlreadyVoted, InvalidOptions, NoVotingPower, PollNotActive
from apps.governance.aggregates import asset_weighted_power, power_from_holdings
from apps.governance.models import Poll, Vote
from apps.governance.selectors import snapshot_power_of, vote_verify
from apps.governance.services import poll_cancel, poll_close, vote_cast
from apps.governance.signing import vote_signature
from apps.payments.services import deposit_create, withdrawal_create

pytestmark = pytest.mark.django_db

WEIGHTED = [
    {"id": "x", "label": "X", "min_weight": "10", "max_weight": "60"},
    {"id": "y", "label": "Y", "min_weight": "10", "max_weight": "60"},
    {"id": "z", "label": "Z", "min_weight": "0", "max_weight": "60"},
]


# --- when votes are taken --------------------------------------------------------------------


def test_a_vote_is_recorded_with_its_power_and_signature(make_poll, user):
    poll = make_poll()
    vote = vote_cast(poll_uuid=poll.uuid, user=user, selected_options=["b"])
    assert vote.selected_options == ["b"]
    assert vote.voting_power == 1
    assert vote.strategy == "one_user_one_vote"
    assert len(vote.signature) == 64
    poll = Poll.objects.get(uuid=poll.uuid)
    assert (poll.votes_count, poll.total_power, poll.totals["b"]) == (1, 1, "1")


def test_no_vote_in_a_draft_a_cancelled_or_a_closed_poll(make_poll, user):
    draft = make_poll(activate=False)
    cancelled, closed = make_poll(), make_poll()
    poll_cancel(poll_uuid=cancelled.uuid, reason="withdrawn")
    poll_close(poll_uuid=closed.uuid)
    for poll in (draft, cancelled, closed):
        with pytest.raises(PollNotActive):
            vote_cast(poll_uuid=poll.uuid, user=user, selected_options=["a"])
    assert not Vote.objects.exists()


def test_no_vote_at_or_after_the_end_even_while_still_active(make_poll, user):
    poll = make_poll()
    with pytest.raises(PollNotActive):
        vote_cast(poll_uuid=poll.uuid, user=user, selected_options=["a"], now=poll.end_date)
    just_before = poll.end_date - dt.timedelta(microseconds=1)
    assert vote_cast(poll_uuid=poll.uuid, user=user, selected_options=["a"], now=just_before)


def test_one_vote_per_user(make_poll, user, make_user):
    other = make_user()
    poll = make_poll()
    vote_cast(poll_uuid=poll.uuid, user=user, selected_options=["a"])
    with pytest.raises(AlreadyVoted):
        vote_cast(poll_uuid=poll.uuid, user=user, selected_options=["b"])
    vote_cast(poll_uuid=poll.uuid, user=other, selected_options=["b"])
    poll = Poll.objects.get(uuid=poll.uuid)
    assert poll.votes_count == 2 and poll.totals == {"a": "1", "b": "1", "c": "0"}


# --- option checks per type ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type", "ballot"),
    [
        ("single_choice", []),
        ("single_choice", ["a", "b"]),
        ("single_choice", ["d"]),
        ("yes_no", ["yes", "no"]),
        ("yes_no", ["maybe"]),
        ("multiple_choice", ["a", "a"]),
        ("multiple_choice", ["a", "b", "c"]),  # at most 2
        ("ranked_choice", ["a"]),
        ("ranked_choice", ["a", "a"]),
        ("weighted_choice", ["x"]),  # a weighted poll takes allocations
    ],
)
def test_ballots_that_break_the_type_rules_are_refused(make_poll, user, type, ballot):
    extra = {"max_choices": 2} if type == "multiple_choice" else {}
    options = WEIGHTED if type == "weighted_choice" else None
    poll = make_poll(type=type, options=options, **extra)
    with pytest.raises(InvalidOptions):
        vote_cast(poll_uuid=poll.uuid, user=user, selected_options=ballot)
    assert not Vote.objects.exists()


@pytest.mark.parametrize(
    ("type", "ballot"),
    [
        ("single_choice", ["c"]),
        ("yes_no", ["no"]),
        ("multiple_choice", ["a", "c"]),
        ("multiple_choice", ["b"]),
        ("ranked_choice", ["c", "a"]),
        ("ranked_choice", ["b", "c", "a"]),
    ],
)
def test_ballots_within_the_type_rules_are_taken(make_poll, user, type, ballot):
    extra = {"max_choices": 2} if type == "multiple_choice" else {}
    poll = make_poll(type=type, **extra)
    assert vote_cast(poll_uuid=poll.uuid, user=user, selected_options=ballot).selected_options == (
        ballot
    )


def test_allocations_only_in_weighted_polls(make_poll, user):
    poll = make_poll()
    with pytest.raises(InvalidOptions) as refused:
        vote_cast(poll_uuid=poll.uuid, user=user, allocations={"a": "100"})
    assert "allocations" in refused.value.details


@pytest.mark.parametrize(
    "allocations",
    [
        {"x": "40", "y": "40", "z": "19"},  # 99
        {"x": "40", "y": "40", "z": "21"},  # 101
        {"x": "70", "y": "30"},  # x above its maximum
        {"x": "5", "y": "60", "z": "35"},  # x below its minimum
        {"x": "33.333", "y": "33.333", "z": "33.334"},  # three decimals
        {"x": 50.0, "y": 50.0},  # floats never
        {"x": "40", "y": "40", "w": "20"},  # unknown option
        {},
    ],
)
def test_allocation_ballots_are_checked(make_poll, user, allocations):
    poll = make_poll(type="weighted_choice", options=WEIGHTED)
    with pytest.raises(InvalidOptions):
        vote_cast(poll_uuid=poll.uuid, user=user, allocations=allocations)
    assert not Vote.objects.exists()


def test_a_missing_allocation_counts_as_zero(make_poll, user):
    poll = make_poll(type="weighted_choice", options=WEIGHTED)
    vote = vote_cast(poll_uuid=poll.uuid, user=user, allocations={"x": "50", "y": 50})
    assert vote.allocations == {"x": "50.00", "y": "50.00", "z": "0.00"}
    assert vote.selected_options == ["x", "y"]


def test_an_allocation_summing_to_99_is_refused(make_poll, user):
    poll = make_poll(type="weighted_choice", options=WEIGHTED)
    with pytest.raises(InvalidOptions) as refused:
        vote_cast(poll_uuid=poll.uuid, user=user, allocations={"x": "40", "y": "30", "z": "29"})
    assert "sum to 100" in refused.value.details["allocations"][0]
    assert not Vote.objects.exists()


# --- voting power ----------------------------------------------------------------------------


def test_asset_weighted_power_arithmetic():
    assert asset_weighted_power(99) == 0
    assert asset_weighted_power(100) == 1  # one dollar: at least one vote
    assert asset_weighted_power(10_000) == 1
    assert asset_weighted_power(19_999) == 1
    assert asset_weighted_power(20_000) == 2
    assert power_from_holdings("quadratic", usd_cents=1_600_00) == 4  # sqrt(16 votes)
    assert power_from_holdings("gcu_weighted", gcu_units=12_345) == 12_345
    assert power_from_holdings("one_user_one_vote") == 1


def test_100_dollars_give_one_vote_and_99_cents_none(make_poll, fund, make_user):
    hundred, cents = make_user(), make_user()
    fund(hundred, {"USD": 100_00})
    fund(cents, {"USD": 99})
    poll = make_poll(strategy="asset_weighted")
    assert vote_cast(poll_uuid=poll.uuid, user=hundred, selected_options=["a"]).voting_power == 1
    with pytest.raises(NoVotingPower):
        vote_cast(poll_uuid=poll.uuid, user=cents, selected_options=["a"])


def test_asset_weighted_counts_usd_across_all_accounts_and_nothing_else(make_poll, fund, user):
    fund(user, {"USD": 150_00, "EUR": 1_000_000}, name="One")
    fund(user, {"USD": 100_00}, name="Two")
    poll = make_poll(strategy="asset_weighted")
    assert snapshot_power_of(poll.uuid, user.uuid) == 2  # 250 USD; euros do not count
    assert vote_cast(poll_uuid=poll.uuid, user=user, selected_options=["a"]).voting_power == 2


def test_gcu_weighted_and_quadratic_power(make_poll, fund, user, make_user):
    fund(user, {"USD": 1_600_00})
    gcu_holder = make_user()
    fund(gcu_holder, {"GCU": 2_50})
    quadratic = make_poll(strategy="quadratic")
    assert snapshot_power_of(quadratic.uuid, user.uuid) == 4
    poll = make_poll(strategy="gcu_weighted")
    assert snapshot_power_of(poll.uuid, user.uuid) == 0
    assert snapshot_power_of(poll.uuid, gcu_holder.uuid) == 250
    with pytest.raises(NoVotingPower):
        vote_cast(poll_uuid=poll.uuid, user=user, selected_options=["a"])
    assert vote_cast(poll_uuid=poll.uuid, user=gcu_holder, selected_options=["a"]).voting_power == (
        250
    )


def test_inactive_users_have_no_power(make_poll, user, make_user):
    """Neither one inactive at activation, nor one deactivated afterwards."""
    dormant = make_user(is_active=False)
    poll = make_poll()
    assert snapshot_power_of(poll.uuid, dormant.uuid) == 0
    user.is_active = False
    user.save()
    for voter in (dormant, user):
        with pytest.raises(NoVotingPower):
            vote_cast(poll_uuid=poll.uuid, user=voter, selected_options=["a"])


def test_the_power_is_fixed_with_the_vote_whatever_moves_afterwards(make_poll, fund, user):
    account = fund(user, {"USD": 300_00})
    poll = make_poll(strategy="asset_weighted")
    vote = vote_cast(poll_uuid=poll.uuid, user=user, selected_options=["a"])
    deposit_create(account_uuid=account.uuid, amount=10_000_00, asset_code="USD")
    withdrawal_create(account_uuid=account.uuid, amount=10_300_00, asset_code="USD")
    assert Vote.objects.get(uuid=vote.uuid).voting_power == 3
    closed = poll_close(poll_uuid=poll.uuid)
    assert closed.results["totals"]["a"] == "3"
    assert closed.results["total_power"] == 3


# --- signatures ------------------------------------------------------------------------------


def test_the_signature_covers_poll_user_options_power_and_time(make_poll, user):
    poll = make_poll()
    vote = vote_cast(poll_uuid=poll.uuid, user=user, selected_options=["a"])
    fields = {
        "poll_uuid": poll.uuid,
        "user_uuid": user.uuid,
        "selected_options": ["a"],
        "allocations": {},
        "voting_power": 1,
        "voted_at": vote.voted_at,
    }
    assert vote_signature(**fields) == vote.signature
    for change in (
        {"selected_options": ["b"]},
        {"voting_power": 2},
        {"voted_at": vote.voted_at + dt.timedelta(seconds=1)},
        {"user_uuid": poll.uuid},
        {"poll_uuid": user.uuid},
    ):
        assert vote_signature(**(fields | change)) != vote.signature
    assert vote_verify(vote).valid


def test_the_signing_key_is_its_own(make_poll, user):
    """Derived from EVENT_HASH_KEY under a label by default; a configured key replaces it, and
    signatures made under another key do not verify."""
    poll = make_poll()
    vote = vote_cast(poll_uuid=poll.uuid, user=user, selected_options=["a"])
    with override_settings(GOVERNANCE_VOTE_SIGNING_KEY="another-key"):
        check = vote_verify(vote)
    assert not check.valid
    assert check.problems == ("the signature does not match the vote",)
    with override_settings(EVENT_HASH_KEY="rotated"):
        assert not vote_verify(vote).valid  # the derived key changed too


def test_staff_verification_catches_a_tampered_read_model(make_poll, user, capsys):
    poll = make_poll()
    vote = vote_cast(poll_uuid=poll.uuid, user=user, selected_options=["a"])
    Vote.objects.filter(uuid=vote.uuid).update(voting_power=1000)
    check = vote_verify(Vote.objects.get(uuid=vote.uuid))
    assert not check.valid
    assert check.problems == ("the read model differs from the stored event",)
    with pytest.raises(SystemExit) as exited:
        call_command("verify_vote_signatures")
    assert exited.value.code == 1
    assert str(vote.uuid) in capsys.readouterr().out


def test_the_verify_command_passes_on_genuine_votes(make_poll, user, make_user, capsys):
    other = make_user()
    poll = make_poll(type="weighted_choice", options=WEIGHTED)
    vote_cast(poll_uuid=poll.uuid, user=user, allocations={"x": "40", "y": "40", "z": "20"})
    vote_cast(poll_uuid=poll.uuid, user=other, allocations={"x": Decimal("60"), "y": 40})
    call_command("verify_vote_signatures", "--poll", str(poll.uuid))
    assert "2 vote(s) verify." in capsys.readouterr().out
