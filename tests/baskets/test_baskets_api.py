"""The basket and bank-allocation endpoints of API.md through the HTTP client."""

from __future__ import annotations

import pytest

from apps.accounts.reconciliation import ledger_reconcile
from apps.assets.models import ExchangeRate
from apps.assets.services import exchange_rate_deactivate
from apps.baskets.models import BasketOperation
from apps.baskets.services import basket_value_record
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(user, client_for):
    return client_for(user)


@pytest.fixture
def staff_api(staff, client_for):
    return client_for(staff)


def test_baskets_list_and_detail(api):
    listing = api.get("/api/v1/baskets").json()
    assert listing["count"] == 1
    gcu = api.get("/api/v1/baskets/GCU").json()
    assert listing["results"][0] == gcu
    assert {k: gcu[k] for k in ("code", "name", "type", "rebalance_frequency")} == {
        "code": "GCU",
        "name": "Global Currency Unit",
        "type": "dynamic",
        "rebalance_frequency": "monthly",
    }
    assert gcu["last_rebalanced_at"] is None
    assert gcu["components"][0] == {
        "asset_code": "USD",
        "weight": "40.00",
        "min_weight": "20.00",
        "max_weight": "50.00",
    }
    assert [c["asset_code"] for c in gcu["components"]] == [
        "USD",
        "EUR",
        "GBP",
        "CHF",
        "JPY",
        "XAU",
    ]
    assert_error(api.get("/api/v1/baskets/NOPE"), 404, "NOT_FOUND")


def test_value_and_history(api):
    value = api.get("/api/v1/baskets/GCU/value").json()
    assert {k: value[k] for k in ("code", "value", "currency")} == {
        "code": "GCU",
        "value": "1",
        "currency": "USD",
    }
    shares = {part["asset_code"]: part["share"] for part in value["components"]}
    assert shares == {"USD": "40.00", "EUR": "30.00", "GBP": "15.00", "CHF": "10.00"} | {
        "JPY": "3.00",
        "XAU": "2.00",
    }
    assert "calculated_at" in value
    assert api.get("/api/v1/baskets/GCU/history").json()["count"] == 0
    basket_value_record(code="GCU")
    history = api.get("/api/v1/baskets/GCU/history").json()
    assert history["count"] == 1 and history["results"][0]["value"] == "1"
    assert_error(api.get("/api/v1/baskets/GCU/history?since=yesterday"), 400, "VALIDATION_ERROR")


def test_a_missing_rate_answers_422(api):
    for rate in ExchangeRate.objects.filter(from_asset="XAU", to_asset="USD") | (
        ExchangeRate.objects.filter(from_asset="USD", to_asset="XAU")
    ):
        exchange_rate_deactivate(rate_id=rate.id)
    assert_error(api.get("/api/v1/baskets/GCU/value"), 422, "EXCHANGE_RATE_NOT_FOUND")


def test_only_staff_rebalance(api, staff_api):
    assert_error(api.post("/api/v1/baskets/GCU/rebalance"), 403, "PERMISSION_DENIED")
    response = staff_api.post("/api/v1/baskets/GCU/rebalance")
    assert response.status_code == 200, response.json()
    assert response.json()["last_rebalanced_at"] is not None
    assert_error(staff_api.post("/api/v1/baskets/NOPE/rebalance"), 404, "NOT_FOUND")


def test_compose_and_decompose_over_http(api, user, gcu_account):
    account = gcu_account(5000)
    base = f"/api/v1/accounts/{account.uuid}/baskets"
    composed = api.post(f"{base}/compose", {"basket_code": "GCU", "amount": 5000}, format="json")
    assert composed.status_code == 201, composed.json()
    body = composed.json()
    assert (body["type"], body["basket_code"], body["amount"]) == ("compose", "GCU", 5000)
    assert body["account_uuid"] == str(account.uuid)
    assert {c["asset_code"]: c["amount"] for c in body["components"]}["USD"] == 2000
    balances = api.get(f"/api/v1/accounts/{account.uuid}/balances").json()
    assert {b["asset_code"]: b["balance"] for b in balances if b["balance"]} == {"GCU": 5000}
    decomposed = api.post(
        f"{base}/decompose", {"basket_code": "GCU", "amount": 5000}, format="json"
    )
    assert decomposed.status_code == 201, decomposed.json()
    usd = next(c for c in decomposed.json()["components"] if c["asset_code"] == "USD")
    assert usd["amount"] == 2000
    history = api.get(f"/api/v1/accounts/{account.uuid}/transactions?asset_code=GCU").json()
    assert [entry["uuid"] for entry in history["results"]] == [
        decomposed.json()["uuid"],
        body["uuid"],
    ]
    assert ledger_reconcile().clean


def test_refusals_over_http(api, gcu_account, client_for, make_user):
    account = gcu_account(5000)
    base = f"/api/v1/accounts/{account.uuid}/baskets"
    too_small = api.post(f"{base}/decompose", {"basket_code": "GCU", "amount": 1}, format="json")
    body = assert_error(too_small, 400, "VALIDATION_ERROR")
    assert "would round to zero" in body["details"]["amount"][0]
    short = api.post(f"{base}/compose", {"basket_code": "GCU", "amount": 6000}, format="json")
    body = assert_error(short, 422, "INSUFFICIENT_FUNDS")
    assert set(body["details"]) >= {"current_balance", "requested"}
    units = api.post(f"{base}/decompose", {"basket_code": "GCU", "amount": 5000}, format="json")
    assert_error(units, 422, "INSUFFICIENT_FUNDS")
    for bad in ({"basket_code": "GCU", "amount": 0}, {"basket_code": "GCU", "amount": "1.5"}, {}):
        assert_error(api.post(f"{base}/compose", bad, format="json"), 400, "VALIDATION_ERROR")
    unknown = api.post(f"{base}/compose", {"basket_code": "NOPE", "amount": 5000}, format="json")
    assert_error(unknown, 404, "NOT_FOUND")
    stranger = client_for(make_user())
    theirs = stranger.post(f"{base}/compose", {"basket_code": "GCU", "amount": 5000}, format="json")
    assert_error(theirs, 404, "NOT_FOUND")
    assert not BasketOperation.objects.exists()


def test_compose_replays_with_an_idempotency_key(api, gcu_account, top_up, components_for):
    account = gcu_account(5000)
    top_up(account, components_for(5000))
    url = f"/api/v1/accounts/{account.uuid}/baskets/compose"
    body = {"basket_code": "GCU", "amount": 5000}
    first = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201
    assert (first.status_code, first.json()) == (again.status_code, again.json())
    assert again["Idempotent-Replayed"] == "true"
    assert BasketOperation.objects.count() == 1
    other = api.post(url, {**body, "amount": 4000}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert_error(other, 409, "IDEMPOTENCY_KEY_REUSED")


def test_moving_money_needs_the_transfer_scope(client_for, user, gcu_account):
    account = gcu_account(5000)
    reader = client_for(user, scopes=["read"])
    url = f"/api/v1/accounts/{account.uuid}/baskets/compose"
    refused = reader.post(url, {"basket_code": "GCU", "amount": 5000}, format="json")
    assert_error(refused, 403, "PERMISSION_DENIED")


def test_bank_allocations_over_http(api):
    default = api.get("/api/v1/bank-allocations").json()
    assert default == {
        "allocations": [
            {"bank_code": "PAYSERA", "percentage": "40.00", "is_primary": True},
            {"bank_code": "DEUTSCHE", "percentage": "30.00", "is_primary": False},
            {"bank_code": "SANTANDER", "percentage": "30.00", "is_primary": False},
        ],
        "diversified": True,
        "is_default": True,
    }
    preview = api.get("/api/v1/bank-allocations/distribution-preview?amount=1000").json()
    assert preview["amount"] == 1000
    assert [d["amount"] for d in preview["distribution"]] == [400, 300, 300]
    split = {
        "allocations": [
            {"bank_code": "PAYSERA", "percentage": 70, "is_primary": True},
            {"bank_code": "WISE", "percentage": "30"},
        ]
    }
    updated = api.put("/api/v1/bank-allocations", split, format="json")
    assert updated.status_code == 200, updated.json()
    assert updated.json()["diversified"] is False and updated.json()["is_default"] is False
    assert api.get("/api/v1/bank-allocations").json() == updated.json()
    short = {"allocations": [{"bank_code": "PAYSERA", "percentage": 99, "is_primary": True}]}
    response = api.put("/api/v1/bank-allocations", short, format="json")
    assert_error(response, 422, "INVALID_BANK_ALLOCATION")
    without_paysera = {
        "allocations": [{"bank_code": "WISE", "percentage": 100, "is_primary": True}]
    }
    response = api.put("/api/v1/bank-allocations", without_paysera, format="json")
    assert_error(response, 422, "PRIMARY_BANK_REQUIRED")
    response = api.get("/api/v1/bank-allocations/distribution-preview?amount=0")
    assert_error(response, 400, "VALIDATION_ERROR")
    big = api.get("/api/v1/bank-allocations/distribution-preview?amount=20000000").json()
    assert [w["bank_code"] for w in big["warnings"]] == ["PAYSERA"]


def test_changing_the_split_needs_the_accounts_scope(client_for, user):
    reader = client_for(user, scopes=["read"])
    assert reader.get("/api/v1/bank-allocations").status_code == 200
    split = {"allocations": [{"bank_code": "PAYSERA", "percentage": 100, "is_primary": True}]}
    response = reader.put("/api/v1/bank-allocations", split, format="json")
    assert_error(response, 403, "PERMISSION_DENIED")
