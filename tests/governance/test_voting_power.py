"""Voting power is counted once: a poll fixes every user's power when it is activated (the
balances of that moment, frozen and closed accounts left out), recorded as events of the poll
and projected into VotingPower; votes use that power and nothing moved afterwards changes it.
Every channel that activates a poll takes the snapshot, and a rebuild reproduces it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse

from apps.accounts.models import Account
from apps.accounts.services import account_freeze, account_unfreeze
from apps.core import store
from apps.core.errors import NoVotingPower
from apps.core.replay import rebuild_projections
from apps.governance import aggregates
from apps.governance.aggregates import Poll as PollAggregate
from apps.governance.events import PollActivated, VotingPowerSnapshotted
from apps.governance.models import GovernanceEvent, Poll, VotingPower
from apps.governance.selectors import poll_results_get, snapshot_power_of
from apps.governance.services import poll_close, poll_create, vote_cast
from apps.payments.services import deposit_create, transfer_create, withdrawal_create
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db

GCU_OPTIONS = [{"id": "more", "label": "More"}, {"id": "less", "label": "Less"}]


def _powers(poll_uuid) -> dict:
    return dict(
        VotingPower.objects.filter(poll_id=poll_uuid).values_list("user_uuid", "voting_power")
    )


def _snapshot_events(poll_uuid) -> list:
    return list(
        GovernanceEvent.objects.filter(
            aggregate_uuid=poll_uuid, event_type=VotingPowerSnapshotted.event_type
        ).order_by("aggregate_version")
    )


def _draft(now, strategy="gcu_weighted", title="GCU: more or less?"):
    return poll_create(
        title=title,
        type="single_choice",
        options=GCU_OPTIONS,
        start_date=now - dt.timedelta(hours=1),
        end_date=now + dt.timedelta(days=1),
        voting_power_strategy=strategy,
    )


# --- the attack ------------------------------------------------------------------------------


def test_money_moved_after_activation_votes_once(make_poll, make_user, fund):
    """1,000 GCU vote, move to the accounts of two other users, who vote with it again: with
    power read from the balances at each vote that counted 300,000 against a real 200,000."""
    alice, bob, carol, sybil = make_user(), make_user(), make_user(), make_user()
    alices = fund(alice, {"GCU": 100_000})  # 1,000.00 GCU
    bobs = fund(bob, {"GCU": 60_000})
    carols = fund(carol, {"GCU": 40_000})
    sybils = fund(sybil, {})  # opened before the poll, empty at its activation
    poll = make_poll(type="single_choice", options=GCU_OPTIONS, strategy="gcu_weighted")

    assert vote_cast(poll_uuid=poll.uuid, user=alice, selected_options=["more"]).voting_power == (
        100_000
    )
    for account, amount in ((bobs, 50_000), (carols, 40_000), (sybils, 10_000)):
        transfer_create(
            from_account=alices.uuid, to_account=account.uuid, amount=amount, asset_code="GCU"
        )
    # Bob now holds 110,000 and Carol 80,000: each votes with what they held at activation.
    assert vote_cast(poll_uuid=poll.uuid, user=bob, selected_options=["more"]).voting_power == (
        60_000
    )
    assert vote_cast(poll_uuid=poll.uuid, user=carol, selected_options=["more"]).voting_power == (
        40_000
    )
    with pytest.raises(NoVotingPower):
        vote_cast(poll_uuid=poll.uuid, user=sybil, selected_options=["more"])

    results = poll_close(poll_uuid=poll.uuid).results
    assert results["totals"] == {"more": "200000", "less": "0"}
    assert results["total_power"] == 200_000
    assert results["eligible_power"] == 200_000
    assert results["participation"] == "100.00"


def test_the_attack_over_http_counts_the_money_once(client_for, staff, make_user, fund, now):
    """Activated through the API; /voting-power answers the snapshot before and after the money
    moves, and the votes over HTTP carry it."""
    alice, bob = make_user(), make_user()
    alices = fund(alice, {"GCU": 100_000})
    bobs = fund(bob, {"GCU": 50_000})
    staff_api, alice_api, bob_api = client_for(staff), client_for(alice), client_for(bob)
    draft = _draft(now)
    url = f"/api/v1/polls/{draft.uuid}"
    # A draft (seen by staff only) answers what the power would be now.
    staffs = fund(staff, {"GCU": 700})
    assert staff_api.get(f"{url}/voting-power").json()["voting_power"] == 700
    assert staff_api.post(f"{url}/activate").status_code == 200
    assert _powers(draft.uuid) == {alice.uuid: 100_000, bob.uuid: 50_000, staff.uuid: 700}
    transfer_create(from_account=staffs.uuid, to_account=bobs.uuid, amount=700, asset_code="GCU")
    assert staff_api.get(f"{url}/voting-power").json()["voting_power"] == 700

    ballot = {"selected_options": ["more"]}
    assert alice_api.post(f"{url}/vote", ballot, format="json").json()["voting_power"] == 100_000
    transfer_create(
        from_account=alices.uuid, to_account=bobs.uuid, amount=100_000, asset_code="GCU"
    )
    power = bob_api.get(f"{url}/voting-power").json()
    assert power == {"voting_power": 50_000, "strategy": "gcu_weighted", "has_voted": False}
    assert bob_api.post(f"{url}/vote", ballot, format="json").json()["voting_power"] == 50_000
    late = client_for(make_user())
    assert late.get(f"{url}/voting-power").json()["voting_power"] == 0
    assert_error(late.post(f"{url}/vote", ballot, format="json"), 422, "NO_VOTING_POWER")
    results = alice_api.get(f"{url}/results").json()
    assert results["totals"] == {"more": 150_000, "less": 0}
    assert results["eligible_power"] == 150_700


# --- what the snapshot counts ----------------------------------------------------------------


def test_frozen_and_closed_accounts_give_no_power(make_poll, make_user, fund):
    holder, frozen_only, closed_only = make_user(), make_user(), make_user()
    fund(holder, {"USD": 300_00}, name="Open")
    frozen = fund(holder, {"USD": 500_00}, name="Frozen")
    account_freeze(account_uuid=frozen.uuid, reason="investigation")
    frozen_alone = fund(frozen_only, {"USD": 900_00})
    account_freeze(account_uuid=frozen_alone.uuid, reason="investigation")
    # The services close only empty accounts; the read model is marked closed directly to
    # show that money in a closed account (a restored backup, a future path) would not count.
    closed = fund(closed_only, {"USD": 700_00})
    Account.objects.filter(uuid=closed.uuid).update(closed=True)
    poll = make_poll(strategy="asset_weighted")

    assert _powers(poll.uuid) == {holder.uuid: 3}
    account_unfreeze(account_uuid=frozen.uuid)  # unfrozen after activation: still not counted
    account_unfreeze(account_uuid=frozen_alone.uuid)
    assert vote_cast(poll_uuid=poll.uuid, user=holder, selected_options=["a"]).voting_power == 3
    with pytest.raises(NoVotingPower):
        vote_cast(poll_uuid=poll.uuid, user=frozen_only, selected_options=["a"])
    with pytest.raises(NoVotingPower):
        vote_cast(poll_uuid=poll.uuid, user=closed_only, selected_options=["a"])
    assert Poll.objects.get(uuid=poll.uuid).eligible_power == 3


def test_the_power_is_fixed_at_activation(make_poll, make_user, fund, now):
    saver, spender, newcomer = make_user(), make_user(), make_user()
    savers = fund(saver, {"USD": 300_00})
    spenders = fund(spender, {"USD": 800_00})
    draft = _draft(now, strategy="asset_weighted")
    deposit_create(account_uuid=savers.uuid, amount=100_00, asset_code="USD")  # still a draft
    poll = make_poll(strategy="asset_weighted")
    assert _powers(poll.uuid) == {saver.uuid: 4, spender.uuid: 8}
    assert Poll.objects.get(uuid=poll.uuid).eligible_power == 12

    deposit_create(account_uuid=savers.uuid, amount=10_000_00, asset_code="USD")
    withdrawal_create(account_uuid=spenders.uuid, amount=800_00, asset_code="USD")
    account_freeze(account_uuid=spenders.uuid, reason="frozen after activation")
    fund(newcomer, {"USD": 5_000_00})
    assert vote_cast(poll_uuid=poll.uuid, user=saver, selected_options=["a"]).voting_power == 4
    assert vote_cast(poll_uuid=poll.uuid, user=spender, selected_options=["b"]).voting_power == 8
    with pytest.raises(NoVotingPower):
        vote_cast(poll_uuid=poll.uuid, user=newcomer, selected_options=["a"])
    assert poll_results_get(Poll.objects.get(uuid=poll.uuid))["eligible_power"] == 12
    # A draft has no snapshot yet: its results show what one taken now would give.
    assert _powers(draft.uuid) == {}
    assert poll_results_get(Poll.objects.get(uuid=draft.uuid))["eligible_power"] == 104 + 50


def test_one_user_one_vote_counts_the_users_active_at_activation(make_poll, make_user):
    early = make_user()
    dormant = make_user(is_active=False)
    poll = make_poll()
    late = make_user()
    powers = _powers(poll.uuid)
    assert powers[early.uuid] == 1 and dormant.uuid not in powers and late.uuid not in powers
    assert set(powers.values()) == {1}
    assert vote_cast(poll_uuid=poll.uuid, user=early, selected_options=["a"]).voting_power == 1
    with pytest.raises(NoVotingPower):
        vote_cast(poll_uuid=poll.uuid, user=late, selected_options=["a"])


def test_a_large_snapshot_is_split_over_events(make_poll, make_user, fund, monkeypatch):
    monkeypatch.setattr(aggregates, "POWER_SNAPSHOT_PART", 2)
    holders = [make_user() for _ in range(5)]
    for index, holder in enumerate(holders):
        fund(holder, {"GCU": (index + 1) * 100})
    poll = make_poll(strategy="gcu_weighted")
    parts = _snapshot_events(poll.uuid)
    assert [(e.event_data["part"], e.event_data["parts"]) for e in parts] == [
        (1, 3),
        (2, 3),
        (3, 3),
    ]
    assert sum(len(e.event_data["powers"]) for e in parts) == 5
    assert Poll.objects.get(uuid=poll.uuid).eligible_power == 1500
    assert vote_cast(poll_uuid=poll.uuid, user=holders[4], selected_options=["a"]).voting_power == (
        500
    )


# --- the event store -------------------------------------------------------------------------


def test_a_rebuild_reproduces_the_snapshot_from_its_events(make_poll, make_user, fund, monkeypatch):
    monkeypatch.setattr(aggregates, "POWER_SNAPSHOT_PART", 2)
    users = [make_user() for _ in range(4)]
    accounts = [fund(user, {"USD": (i + 1) * 100_00, "GCU": 250}) for i, user in enumerate(users)]
    by_usd = make_poll(strategy="quadratic")
    by_gcu = make_poll(strategy="gcu_weighted")
    make_poll(strategy="one_user_one_vote")
    vote_cast(poll_uuid=by_usd.uuid, user=users[3], selected_options=["a"])
    # Balances change after activation: the rebuild replays the snapshot, it does not retake it.
    withdrawal_create(account_uuid=accounts[0].uuid, amount=100_00, asset_code="USD")
    poll_close(poll_uuid=by_gcu.uuid)

    def read_models():
        polls = list(Poll.objects.order_by("uuid").values())
        powers = VotingPower.objects.values_list("poll_id", "user_uuid", "voting_power")
        return polls, sorted(powers)

    live = read_models()
    assert len(_snapshot_events(by_usd.uuid)) == 2  # four holders, two per event
    call_command("rebuild_projections", "governance")
    assert read_models() == live
    assert rebuild_projections("governance", batch_size=3) > 0
    assert read_models() == live
    call_command("verify_events")


def test_a_poll_activated_before_snapshots_gets_one_at_its_first_vote(make_user, fund, now):
    """Polls opened by the code before snapshots have a PollActivated without them: the first
    vote (or the close) after the upgrade fixes the power then, once."""
    holder, other = make_user(), make_user()
    fund(holder, {"GCU": 700})
    fund(other, {"GCU": 300})
    draft = _draft(now)
    with transaction.atomic():  # what the old poll_activate wrote
        legacy = store.load_one(PollAggregate, draft.uuid)
        legacy.record(PollActivated(at=now, by={"type": "system"}))
        store.save(legacy)
    assert not _powers(draft.uuid)
    assert (
        vote_cast(poll_uuid=draft.uuid, user=holder, selected_options=["more"]).voting_power == 700
    )
    assert (
        vote_cast(poll_uuid=draft.uuid, user=other, selected_options=["less"]).voting_power == 300
    )
    assert len(_snapshot_events(draft.uuid)) == 1
    assert poll_close(poll_uuid=draft.uuid).results["eligible_power"] == 1000


# --- every channel that activates a poll -----------------------------------------------------


def test_the_console_activation_snapshots(client, staff, make_user, fund, now):
    holder = make_user()
    fund(holder, {"GCU": 1_234})
    draft = _draft(now)
    client.force_login(staff)
    data = {
        "action": "activate",
        "_selected_action": [str(draft.uuid)],
        "apply": "1",
        "confirm": "on",
    }
    client.post(reverse("admin:governance_poll_changelist"), data, follow=True)
    assert Poll.objects.get(uuid=draft.uuid).status == "active"
    assert _powers(draft.uuid) == {holder.uuid: 1_234}
    assert len(_snapshot_events(draft.uuid)) == 1
    assert snapshot_power_of(draft.uuid, holder.uuid) == 1_234
    page = client.get(reverse("admin:governance_votingpower_changelist"))
    assert page.status_code == 200 and str(holder.uuid).encode() in page.content


def test_the_monthly_basket_vote_snapshots(bank, make_user, fund):
    from apps.baskets.services import basket_votes_open_monthly

    holder = make_user()
    fund(holder, {"GCU": 5_000})
    opened = basket_votes_open_monthly()["opened"]
    poll_uuid = opened["GCU"]
    assert Poll.objects.get(uuid=poll_uuid).status == "active"
    assert _powers(poll_uuid)[holder.uuid] == 5_000
