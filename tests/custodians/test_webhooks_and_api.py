"""POST /api/v1/webhooks/custodians/{code}: signature, timestamp tolerance, one processing per
event id; GET /api/v1/custodians: the connectors and their circuit breakers."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from apps.custodians.models import CustodianEvent, CustodianWebhookEvent, MockBankTransaction
from apps.custodians.resilience import CircuitBreaker
from apps.custodians.services import custodian_withdrawal_start, webhook_signature
from apps.users.services import token_create
from apps.workflows.selectors import workflow_lease_get, workflow_run_get
from apps.workflows.services import workflow_advance
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhooks/custodians/mock_bank"
SECRET = "dev-only-webhook-secret-mock_bank"


def post(body: dict | bytes, *, timestamp: int, secret: str = SECRET, signature=None, url=URL):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"HTTP_X_CUSTODIAN_TIMESTAMP": str(timestamp)}
    signature = webhook_signature(secret, str(timestamp), raw) if signature is None else signature
    if signature:
        headers["HTTP_X_CUSTODIAN_SIGNATURE"] = signature
    return APIClient().post(url, raw, content_type="application/json", **headers)


def event(event_id="evt_1", type="transaction.completed", **data):
    return {"id": event_id, "type": type, "data": data}


def error_code(response) -> str:
    body = response.json()
    assert set(body) == {"error", "message", "details"}
    return body["error"]


@pytest.fixture
def now(clock):
    return int(clock.now.timestamp())


def test_a_signed_event_is_processed_once_and_a_replay_is_acknowledged_but_ignored(bank, now):
    first = post(event(amount=5), timestamp=now)
    assert first.status_code == 200
    assert first.json() == {"received": True, "duplicate": False, "event_id": "evt_1"}
    replay = post(event(amount=5), timestamp=now + 30)  # the custodian's retry, signed anew
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    assert CustodianWebhookEvent.objects.count() == 1
    stored = CustodianWebhookEvent.objects.get()
    assert stored.payload["data"] == {"amount": 5}
    assert stored.effect == {"action": "recorded"}  # it names no transaction
    assert CustodianEvent.objects.filter(event_type="custodians.WebhookReceived").count() == 1


def test_a_wrong_or_missing_signature_is_401_and_changes_nothing(bank, now):
    assert error_code(post(event(), timestamp=now, secret="not-the-secret")) == "INVALID_SIGNATURE"
    assert post(event(), timestamp=now, signature="").status_code == 401
    signed_other_body = webhook_signature(SECRET, str(now), b'{"id": "evt_2"}')
    tampered = post(event(), timestamp=now, signature=signed_other_body)
    assert (tampered.status_code, error_code(tampered)) == (401, "INVALID_SIGNATURE")
    prefixed = post(event(), timestamp=now, signature="sha256=" + "0" * 64)
    assert prefixed.status_code == 401
    assert not CustodianWebhookEvent.objects.exists()


@pytest.mark.parametrize("skew", [-301, 301, 86_400])
def test_a_timestamp_outside_the_tolerance_is_refused_even_when_signed(bank, now, skew):
    response = post(event(), timestamp=now + skew)
    assert response.status_code == 401
    assert error_code(response) == "WEBHOOK_TIMESTAMP_REJECTED"
    assert not CustodianWebhookEvent.objects.exists()


def test_a_replay_of_a_captured_request_after_the_tolerance_is_refused(bank, now, clock):
    captured = post(event("evt_9"), timestamp=now)
    assert captured.status_code == 200
    clock.advance(301)
    replay = post(event("evt_9"), timestamp=now)  # the very same bytes and signature
    assert replay.status_code == 401 and error_code(replay) == "WEBHOOK_TIMESTAMP_REJECTED"


def test_a_malformed_timestamp_body_or_custodian(bank, now):
    raw = json.dumps(event()).encode()
    response = APIClient().post(
        URL,
        raw,
        content_type="application/json",
        HTTP_X_CUSTODIAN_TIMESTAMP="yesterday",
        HTTP_X_CUSTODIAN_SIGNATURE=webhook_signature(SECRET, "yesterday", raw),
    )
    assert response.status_code == 401
    assert error_code(post(b"not json", timestamp=now)) == "VALIDATION_ERROR"
    assert post({"type": "x"}, timestamp=now).status_code == 400  # no id
    assert post([1, 2], timestamp=now).status_code == 400
    unknown = post(event(), timestamp=now, url="/api/v1/webhooks/custodians/nobank")
    assert (unknown.status_code, error_code(unknown)) == (404, "NOT_FOUND")


def test_without_a_configured_secret_nothing_is_accepted(bank, now, settings):
    connectors = {code: dict(c) for code, c in settings.CUSTODIAN_CONNECTORS.items()}
    connectors["mock_bank"]["webhook_secret"] = ""
    settings.CUSTODIAN_CONNECTORS = connectors
    response = post(event(), timestamp=now, secret="")
    assert response.status_code == 401 and error_code(response) == "INVALID_SIGNATURE"


def test_a_transaction_event_wakes_the_run_waiting_for_that_transaction(
    funded_account, mock_options, now, clock
):
    bank = mock_options(settle_after_seconds=5)
    run = custodian_withdrawal_start(
        account_uuid=funded_account.uuid, amount=1_000, asset_code="USD", destination="EXT-X-1"
    )
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    due = workflow_lease_get(run.uuid).due_at
    assert due > clock.now
    tx = MockBankTransaction.objects.get()
    clock.advance(5)
    bank.get_transaction_status(tx.transaction_id)  # it settles at the bank ...
    body = event("evt_settled", transaction_id=tx.transaction_id)
    response = post(body, timestamp=int(clock.now.timestamp()))  # ... which tells us
    assert response.status_code == 200
    stored = CustodianWebhookEvent.objects.get(event_id="evt_settled")
    assert stored.effect == {"action": "woke_runs", "runs": [str(run.uuid)]}
    assert workflow_lease_get(run.uuid).due_at == clock.now  # due now, not at the next poll
    assert workflow_advance(run_uuid=run.uuid) == "completed"
    assert workflow_run_get(run.uuid).status == "completed"


# --- GET /custodians ------------------------------------------------------------------------


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(user=user, name='t').secret}")
    return client


def _operator():
    from django.contrib.auth.models import Group

    staff = StaffFactory()
    staff.groups.add(Group.objects.get(name="operator"))
    return staff


def test_the_custodian_list_shows_each_connector_and_its_circuit(bank, clock):
    client = client_for(_operator())
    (mock,) = client.get("/api/v1/custodians").json()
    assert mock["code"] == "mock_bank" and mock["connector"] == "MockBank"
    assert mock["is_default"] is True and mock["status"] == "available"
    assert mock["circuit"]["state"] == "closed" and mock["circuit"]["retry_at"] is None

    breaker = CircuitBreaker("mock_bank", clock=clock)
    for _ in range(5):
        breaker.record_failure(RuntimeError("down"))
    (mock,) = client.get("/api/v1/custodians").json()
    assert mock["status"] == "unavailable"
    assert mock["circuit"]["state"] == "open"
    assert mock["circuit"]["consecutive_failures"] == 5
    assert mock["circuit"]["recent_failure_rate"] == "1.00"
    assert mock["circuit"]["retry_at"] is not None


def test_a_customer_does_not_see_the_custodians_health(bank):
    """Circuit states and open discrepancies tell an attacker when to strike."""
    response = client_for(UserFactory()).get("/api/v1/custodians")
    assert response.status_code == 403 and error_code(response) == "PERMISSION_DENIED"


def test_the_custodian_list_needs_a_token(bank):
    response = APIClient().get("/api/v1/custodians")
    assert response.status_code == 401 and error_code(response) == "NOT_AUTHENTICATED"
