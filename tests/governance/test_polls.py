"""The poll lifecycle: draft -> active -> closed -> executed, plus cancelled and failed."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from apps.core.errors import InvalidInput, NotFound, PollNotActive
from apps.governance.aggregates import PollNotCancellable, PollNotDraft, PollOutsideWindow
from apps.governance.models import Poll
from apps.governance.services import poll_activate, poll_cancel, poll_close, poll_create
from tests.governance.conftest import OPTIONS

pytestmark = pytest.mark.django_db


def _create(now, **changes):
    fields = {
        "title": "Poll",
        "type": "single_choice",
        "options": OPTIONS["default"],
        "start_date": now - dt.timedelta(hours=1),
        "end_date": now + dt.timedelta(days=1),
        "voting_power_strategy": "one_user_one_vote",
    }
    return poll_create(**(fields | changes))


def test_a_new_poll_is_a_draft_with_its_definition(bank, now):
    poll = _create(now, description="Pick one", required_participation="12.5")
    assert poll.status == Poll.Status.DRAFT
    assert poll.options == OPTIONS["default"]
    assert poll.required_participation == Decimal("12.50")
    assert poll.totals == {"a": "0", "b": "0", "c": "0"}
    assert poll.created_by["type"] == "system"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": " "}, "title"),
        ({"type": "approval"}, "type"),
        ({"options": [{"id": "a", "label": "A"}]}, "options"),
        ({"options": [{"id": "a", "label": "A"}, {"id": "a", "label": "B"}]}, "options"),
        ({"options": [{"id": "a b", "label": "A"}, {"id": "c", "label": "C"}]}, "options"),
        ({"type": "yes_no"}, "options"),  # three options for a yes/no poll
        ({"max_choices": 2}, "max_choices"),  # only for multiple choice
        ({"type": "multiple_choice", "max_choices": 4}, "max_choices"),
        ({"voting_power_strategy": "plutocracy"}, "voting_power_strategy"),
        ({"required_participation": "100.5"}, "required_participation"),
        ({"required_participation": 12.5}, "required_participation"),  # floats never
        ({"execution_workflow": "no.such.workflow"}, "execution_workflow"),
        ({"metadata": {"ratio": 0.5}}, "metadata.ratio"),
    ],
)
def test_bad_definitions_are_refused(bank, now, changes, field):
    with pytest.raises(InvalidInput) as refused:
        _create(now, **changes)
    assert field in refused.value.details
    assert not Poll.objects.exists()


def test_the_window_must_end_after_it_starts_and_in_the_future(bank, now):
    with pytest.raises(InvalidInput) as refused:
        _create(now, end_date=now - dt.timedelta(hours=2))
    assert "end_date" in refused.value.details
    with pytest.raises(InvalidInput):
        _create(now, start_date=now - dt.timedelta(days=2), end_date=now - dt.timedelta(days=1))


def test_weighted_options_carry_bounds_that_can_reach_100(bank, now):
    options = [
        {"id": "x", "label": "X", "min_weight": "10", "max_weight": "40", "default_weight": "30"},
        {"id": "y", "label": "Y", "min_weight": "20", "max_weight": "70", "default_weight": "70"},
    ]
    poll = _create(now, type="weighted_choice", options=options)
    assert poll.options[0] == {
        "id": "x",
        "label": "X",
        "min_weight": "10.00",
        "max_weight": "40.00",
        "default_weight": "30.00",
    }
    too_tight = [{**options[0], "max_weight": "20", "default_weight": "20"}, options[1]]
    with pytest.raises(InvalidInput):
        _create(now, type="weighted_choice", options=too_tight)  # at most 90
    bad_defaults = [options[0], {**options[1], "default_weight": "60"}]
    with pytest.raises(InvalidInput):
        _create(now, type="weighted_choice", options=bad_defaults)  # defaults sum to 90
    with pytest.raises(InvalidInput):
        _create(now, options=[{**OPTIONS["default"][0], "min_weight": "5"}, OPTIONS["default"][1]])


def test_a_keyed_poll_is_created_once(bank, now):
    first = _create(now, key="monthly:2027-01")
    again = _create(now, key="monthly:2027-01", title="Another title")
    assert again.uuid == first.uuid and again.title == "Poll"
    assert Poll.objects.count() == 1


def test_only_a_draft_is_activated(make_poll):
    poll = make_poll()
    assert poll.status == Poll.Status.ACTIVE
    assert poll.activated_at is not None
    with pytest.raises(PollNotDraft):
        poll_activate(poll_uuid=poll.uuid)


def test_a_draft_is_activated_only_inside_its_window(make_poll, now):
    later = make_poll(
        activate=False, start=now + dt.timedelta(hours=1), end=now + dt.timedelta(days=1)
    )
    with pytest.raises(PollOutsideWindow):
        poll_activate(poll_uuid=later.uuid)
    with pytest.raises(PollOutsideWindow):
        poll_activate(poll_uuid=later.uuid, now=later.end_date)
    assert poll_activate(poll_uuid=later.uuid, now=later.start_date).status == "active"


def test_draft_and_active_polls_can_be_cancelled(make_poll):
    draft, active = make_poll(activate=False), make_poll()
    for poll in (draft, active):
        cancelled = poll_cancel(poll_uuid=poll.uuid, reason="wrong question")
        assert cancelled.status == Poll.Status.CANCELLED
        assert cancelled.cancel_reason == "wrong question"
    with pytest.raises(PollNotCancellable):
        poll_cancel(poll_uuid=draft.uuid, reason="again")


def test_a_closed_poll_cannot_be_cancelled(make_poll):
    poll = make_poll()
    assert poll_close(poll_uuid=poll.uuid).status == Poll.Status.CLOSED
    with pytest.raises(PollNotCancellable):
        poll_cancel(poll_uuid=poll.uuid, reason="too late")
    assert Poll.objects.get(uuid=poll.uuid).status == Poll.Status.CLOSED


def test_only_an_active_poll_is_closed(make_poll):
    draft = make_poll(activate=False)
    with pytest.raises(PollNotActive):
        poll_close(poll_uuid=draft.uuid)
    active = make_poll()
    poll_close(poll_uuid=active.uuid)
    with pytest.raises(PollNotActive):
        poll_close(poll_uuid=active.uuid)


def test_an_unknown_poll_is_not_found(bank):
    with pytest.raises(NotFound):
        poll_activate(poll_uuid=uuid.uuid4())
