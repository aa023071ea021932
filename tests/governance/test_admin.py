"""The console's poll screens: results, votes with their signatures checked, and the actions
(new poll, activate, close, cancel, verify), each through a service."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from apps.governance.models import GovernanceEvent, Poll, Vote
from apps.governance.services import vote_cast
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:governance_poll_changelist"


@pytest.fixture
def console(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def operator_console(client, bank):
    operator = StaffFactory()
    operator.groups.add(Group.objects.get(name="operator"))
    client.force_login(operator)
    return client


def _act(console, action: str, polls, **form):
    data = {"action": action, "_selected_action": [str(p.uuid) for p in polls], **form}
    return console.post(reverse(CHANGELIST), data, follow=True)


def test_the_poll_page_shows_results_and_verified_votes(console, make_poll, make_user):
    voter = make_user()  # before the poll opens: its snapshot gives the voter power
    poll = make_poll()
    vote_cast(poll_uuid=poll.uuid, user=voter, selected_options=["b"])
    page = console.get(reverse("admin:governance_poll_change", args=[poll.uuid]))
    assert page.status_code == 200
    assert page.context["results"]["winner"] == "b"
    assert [row["verification"].valid for row in page.context["votes"]] == [True]
    assert b"verified" in page.content
    assert console.get(reverse(CHANGELIST)).status_code == 200
    assert console.get(reverse("admin:governance_vote_changelist")).status_code == 200
    assert console.get(reverse("admin:governance_votingpower_changelist")).status_code == 200
    events = console.get(reverse("admin:governance_governanceevent_changelist"))
    assert events.status_code == 200
    assert console.get(reverse("admin:governance_poll_add")).status_code == 403


def test_activate_close_and_cancel_actions(console, make_poll):
    draft, active, other = make_poll(activate=False), make_poll(), make_poll()
    asked = _act(console, "activate", [draft])
    assert b"I confirm opening the poll" in asked.content
    assert Poll.objects.get(uuid=draft.uuid).status == "draft"  # nothing before confirming
    _act(console, "activate", [draft], apply="1", confirm="on")
    assert Poll.objects.get(uuid=draft.uuid).status == "active"
    confirm = _act(console, "close", [active])
    assert b"I confirm closing" in confirm.content  # the confirmation step
    _act(console, "close", [active], apply="1", confirm="on")
    assert Poll.objects.get(uuid=active.uuid).status == "closed"
    _act(console, "cancel", [other, active], apply="1", reason="duplicate")
    statuses = dict(Poll.objects.values_list("uuid", "status"))
    assert statuses[other.uuid] == "cancelled"
    assert statuses[active.uuid] == "closed"  # refused: a closed poll cannot be cancelled
    actors = {e.meta_data["actor"]["type"] for e in GovernanceEvent.objects.all()}
    assert "staff" in actors


def test_the_verify_action_reports_tampering(console, make_poll, make_user):
    voter = make_user()
    poll = make_poll()
    vote = vote_cast(poll_uuid=poll.uuid, user=voter, selected_options=["a"])
    response = _act(console, "verify_signatures", [poll])
    assert "1 vote(s) verify" in response.content.decode()
    Vote.objects.filter(uuid=vote.uuid).update(selected_options=["c"])
    response = _act(console, "verify_signatures", [poll])
    assert "1 of 1 vote(s) fail" in response.content.decode()


def test_a_new_poll_from_the_console(console, now):
    url = reverse("admin:governance_poll_new_poll")
    assert console.get(url).status_code == 200
    form = {
        "title": "GCU: add CAD?",
        "type": "weighted_choice",
        "options": "USD | US Dollar | 20 | 80 | 60\nCAD | Canadian Dollar | 20 | 80 | 40",
        "start_date": (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "end_date": (now + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
        "voting_power_strategy": "gcu_weighted",
        "required_participation": "5",
    }
    response = console.post(url, form, follow=True)
    assert response.status_code == 200
    poll = Poll.objects.get(title="GCU: add CAD?")
    assert poll.status == "draft"
    assert poll.options[1] == {
        "id": "CAD",
        "label": "Canadian Dollar",
        "min_weight": "20.00",
        "max_weight": "80.00",
        "default_weight": "40.00",
    }
    bad = console.post(url, {**form, "title": "Bad", "options": "USD"})
    assert bad.status_code == 200 and not Poll.objects.filter(title="Bad").exists()


def test_operators_see_polls_but_may_not_change_them(operator_console, make_poll):
    poll = make_poll(activate=False)
    assert operator_console.get(reverse(CHANGELIST)).status_code == 200
    _act(operator_console, "activate", [poll], apply="1", confirm="on")
    assert Poll.objects.get(uuid=poll.uuid).status == "draft"
    assert operator_console.get(reverse("admin:governance_poll_new_poll")).status_code == 403
