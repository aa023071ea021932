"""The governance endpoints of API.md through the HTTP client."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.governance.models import Poll, Vote
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db


def _poll_body(**changes):
    now = timezone.now()
    body = {
        "title": "Which feature next?",
        "description": "Tell us.",
        "type": "single_choice",
        "options": [{"id": "cards", "label": "Cards"}, {"id": "loans", "label": "Loans"}],
        "start_date": (now - dt.timedelta(minutes=5)).isoformat(),
        "end_date": (now + dt.timedelta(days=7)).isoformat(),
        "voting_power_strategy": "one_user_one_vote",
        "required_participation": "10.00",
    }
    return body | changes


@pytest.fixture
def staff_api(staff, client_for):
    return client_for(staff)


@pytest.fixture
def api(user, client_for):
    return client_for(user)


@pytest.fixture
def active_poll(staff_api):
    created = staff_api.post("/api/v1/polls", _poll_body(), format="json")
    assert created.status_code == 201, created.json()
    uuid = created.json()["uuid"]
    activated = staff_api.post(f"/api/v1/polls/{uuid}/activate")
    assert activated.status_code == 200, activated.json()
    return activated.json()


def test_staff_create_a_draft_and_activate_it(staff_api):
    response = staff_api.post("/api/v1/polls", _poll_body(), format="json")
    assert response.status_code == 201, response.json()
    poll = response.json()
    assert poll["status"] == "draft"
    assert set(poll) >= {
        "uuid",
        "title",
        "description",
        "type",
        "status",
        "options",
        "start_date",
        "end_date",
        "voting_power_strategy",
        "required_participation",
    }
    assert poll["required_participation"] == "10.00"
    assert poll["options"] == [{"id": "cards", "label": "Cards"}, {"id": "loans", "label": "Loans"}]
    activated = staff_api.post(f"/api/v1/polls/{poll['uuid']}/activate")
    assert activated.status_code == 200
    assert activated.json()["status"] == "active"
    again = staff_api.post(f"/api/v1/polls/{poll['uuid']}/activate")
    assert_error(again, 422, "POLL_NOT_DRAFT")


def test_customers_may_not_create_or_activate_polls(api, active_poll, staff_api):
    assert_error(api.post("/api/v1/polls", _poll_body(), format="json"), 403, "PERMISSION_DENIED")
    draft = staff_api.post("/api/v1/polls", _poll_body(), format="json").json()
    # a draft is invisible to customers: 404, like a poll that does not exist
    assert_error(api.post(f"/api/v1/polls/{draft['uuid']}/activate"), 404, "NOT_FOUND")
    assert_error(
        api.post(f"/api/v1/polls/{active_poll['uuid']}/activate"), 403, "PERMISSION_DENIED"
    )


def test_bad_poll_definitions_are_validation_errors(staff_api):
    body = _poll_body(type="yes_no")  # options are fine, but...
    response = staff_api.post(
        "/api/v1/polls", body | {"options": [{"id": "a", "label": "A"}]}, format="json"
    )
    assert_error(response, 400, "VALIDATION_ERROR")
    response = staff_api.post("/api/v1/polls", _poll_body(voting_power_strategy="x"), format="json")
    assert "voting_power_strategy" in assert_error(response, 400, "VALIDATION_ERROR")["details"]
    response = staff_api.post(
        "/api/v1/polls", _poll_body(end_date=_poll_body()["start_date"]), format="json"
    )
    assert "end_date" in assert_error(response, 400, "VALIDATION_ERROR")["details"]


def test_lists_filters_and_drafts(api, staff_api, active_poll):
    yes_no = [{"id": "yes", "label": "Yes"}, {"id": "no", "label": "No"}]
    body = _poll_body(type="yes_no", options=yes_no)
    draft = staff_api.post("/api/v1/polls", body, format="json").json()
    mine = api.get("/api/v1/polls").json()
    assert mine["count"] == 1 and mine["results"][0]["uuid"] == active_poll["uuid"]
    assert staff_api.get("/api/v1/polls").json()["count"] == 2
    assert staff_api.get("/api/v1/polls?status=draft").json()["results"][0]["uuid"] == draft["uuid"]
    assert staff_api.get("/api/v1/polls?type=yes_no").json()["count"] == 1
    assert_error(api.get("/api/v1/polls?status=open"), 400, "VALIDATION_ERROR")
    active = api.get("/api/v1/polls/active").json()
    assert [p["uuid"] for p in active["results"]] == [active_poll["uuid"]]
    assert api.get(f"/api/v1/polls/{active_poll['uuid']}").status_code == 200
    assert_error(api.get(f"/api/v1/polls/{draft['uuid']}"), 404, "NOT_FOUND")
    assert staff_api.get(f"/api/v1/polls/{draft['uuid']}").status_code == 200


def test_vote_results_and_voting_power(api, user, active_poll):
    url = f"/api/v1/polls/{active_poll['uuid']}"
    power = api.get(f"{url}/voting-power").json()
    assert power == {"voting_power": 1, "strategy": "one_user_one_vote", "has_voted": False}
    response = api.post(f"{url}/vote", {"selected_options": ["loans"]}, format="json")
    assert response.status_code == 201, response.json()
    vote = response.json()
    assert set(vote) >= {"uuid", "poll_uuid", "selected_options", "voting_power", "signature"}
    assert vote["poll_uuid"] == active_poll["uuid"]
    assert vote["selected_options"] == ["loans"] and vote["voting_power"] == 1
    assert len(vote["signature"]) == 64
    assert "created_at" in vote
    assert api.get(f"{url}/voting-power").json()["has_voted"] is True
    results = api.get(f"{url}/results").json()
    assert results["poll_uuid"] == active_poll["uuid"]
    assert results["totals"] == {"cards": 0, "loans": 1}
    assert results["total_power"] == 1 and results["winner"] == "loans"
    assert set(results) >= {"participation", "required_participation", "participation_met"}
    again = api.post(f"{url}/vote", {"selected_options": ["cards"]}, format="json")
    assert_error(again, 422, "ALREADY_VOTED")


def test_vote_refusals(client_for, make_user, active_poll, staff_api, fund):
    url = f"/api/v1/polls/{active_poll['uuid']}/vote"
    voter = client_for(make_user())
    both = voter.post(url, {"selected_options": ["cards", "loans"]}, format="json")
    assert_error(both, 422, "INVALID_OPTIONS")
    assert_error(voter.post(url, {}, format="json"), 400, "VALIDATION_ERROR")
    body = _poll_body(voting_power_strategy="asset_weighted")
    weighted = staff_api.post("/api/v1/polls", body, format="json").json()
    staff_api.post(f"/api/v1/polls/{weighted['uuid']}/activate")
    ballot = {"selected_options": ["cards"]}
    no_money = voter.post(f"/api/v1/polls/{weighted['uuid']}/vote", ballot, format="json")
    assert_error(no_money, 422, "NO_VOTING_POWER")
    draft = staff_api.post("/api/v1/polls", _poll_body(), format="json").json()
    in_draft = staff_api.post(f"/api/v1/polls/{draft['uuid']}/vote", ballot, format="json")
    assert_error(in_draft, 422, "POLL_NOT_ACTIVE")


def test_an_allocation_vote_over_http(client_for, staff_api, make_user, fund):
    options = [
        {"id": "USD", "label": "US Dollar", "min_weight": 20, "max_weight": 60},
        {"id": "EUR", "label": "Euro", "min_weight": "20", "max_weight": 60},
    ]
    body = _poll_body(type="weighted_choice", options=options, voting_power_strategy="gcu_weighted")
    poll = staff_api.post("/api/v1/polls", body, format="json")
    assert poll.status_code == 201, poll.json()
    uuid = poll.json()["uuid"]
    holder = make_user()
    fund(holder, {"GCU": 10_00})  # before activation, which fixes the power
    staff_api.post(f"/api/v1/polls/{uuid}/activate")
    voter = client_for(holder)
    url = f"/api/v1/polls/{uuid}/vote"
    short = voter.post(url, {"allocations": {"USD": 60, "EUR": 39}}, format="json")
    assert_error(short, 422, "INVALID_OPTIONS")
    # a JSON number is read exactly as written (55.5), never through binary floating point
    ok = voter.post(url, {"allocations": {"USD": 55.5, "EUR": "44.5"}}, format="json")
    assert ok.status_code == 201, ok.json()
    assert ok.json()["allocations"] == {"USD": "55.50", "EUR": "44.50"}
    assert ok.json()["voting_power"] == 1000
    results = voter.get(f"/api/v1/polls/{uuid}/results").json()
    assert results["totals"] == {"USD": "555", "EUR": "445"}


def test_the_idempotency_key_replays_a_vote(api, active_poll):
    url = f"/api/v1/polls/{active_poll['uuid']}/vote"
    first = api.post(url, {"selected_options": ["cards"]}, format="json", HTTP_IDEMPOTENCY_KEY="v1")
    again = api.post(url, {"selected_options": ["cards"]}, format="json", HTTP_IDEMPOTENCY_KEY="v1")
    assert (first.status_code, first.json()) == (again.status_code, again.json())
    assert again["Idempotent-Replayed"] == "true"
    assert Vote.objects.count() == 1
    other = api.post(url, {"selected_options": ["loans"]}, format="json", HTTP_IDEMPOTENCY_KEY="v1")
    assert_error(other, 409, "IDEMPOTENCY_KEY_REUSED")


def test_voting_needs_the_vote_scope(client_for, make_user, active_poll):
    reader = client_for(make_user(), scopes=["read"])
    url = f"/api/v1/polls/{active_poll['uuid']}"
    assert reader.get(f"{url}/results").status_code == 200
    refused = reader.post(f"{url}/vote", {"selected_options": ["cards"]}, format="json")
    assert_error(refused, 403, "PERMISSION_DENIED")
    assert not Poll.objects.get(uuid=active_poll["uuid"]).votes_count


def test_anonymous_callers_are_refused(client, active_poll):
    assert_error(client.get("/api/v1/polls"), 401, "NOT_AUTHENTICATED")
    response = client.post(
        f"/api/v1/polls/{active_poll['uuid']}/vote", {}, content_type="application/json"
    )
    assert_error(response, 401, "NOT_AUTHENTICATED")
