"""The main customer journey through the API."""

import pytest

pytestmark = pytest.mark.django_db


def test_register_login_and_the_default_account(bank, client):
    response = client.post(
        "/api/v1/auth/register",
        {"email": "New@Example.com", "password": "a-long-passphrase-42", "name": "Nia"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["user"]["email"] == "new@example.com"
    token = body["token"]
    accounts = client.get("/api/v1/accounts", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert accounts["count"] == 1
    assert accounts["results"][0]["name"] == "Nia's Account"

    login = client.post(
        "/api/v1/auth/login",
        {"email": "new@example.com", "password": "a-long-passphrase-42"},
        content_type="application/json",
    )
    assert login.status_code == 200
    assert login.json()["token"].startswith("fa_")


def test_deposit_transfer_history_and_balances(api, bob_api, open_account):
    mine = open_account(funded={"USD": 10_050})
    theirs = open_account(bob_api, name="Bob's")
    response = api.post(
        "/api/v1/transfers",
        {
            "from_account": mine["uuid"],
            "to_account": theirs["uuid"],
            "amount": 2_000,
            "asset_code": "USD",
            "reference": "lunch",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    transfer = response.json()
    assert transfer["status"] == "completed"
    assert transfer["amount"] == 2_000

    balances = api.get(f"/api/v1/accounts/{mine['uuid']}/balances").json()
    assert balances == [
        {"asset_code": "USD", "balance": 8_050, "balance_display": "80.50", "precision": 2}
    ]
    history = api.get(f"/api/v1/accounts/{mine['uuid']}/transactions").json()
    assert history["count"] == 2
    assert [r["type"] for r in history["results"]] == ["transfer_out", "deposit"]
    assert history["results"][0]["balance_after"] == 8_050
    assert bob_api.get(f"/api/v1/transfers/{transfer['uuid']}").status_code == 200


def test_idempotent_replay_is_identical_and_moves_money_once(
    api, open_account, django_capture_on_commit_callbacks, eager_tasks
):
    mine = open_account(funded={"EUR": 500})
    url = f"/api/v1/accounts/{mine['uuid']}/withdraw"
    body = {"amount": 100, "asset_code": "EUR"}
    with django_capture_on_commit_callbacks(execute=True):  # the withdrawal runs on commit
        first = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="w-1")
    with django_capture_on_commit_callbacks(execute=True):
        second = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="w-1")
    assert first.status_code == 202
    assert (first.status_code, first.json()) == (second.status_code, second.json())
    assert second["Idempotent-Replayed"] == "true"
    balances = api.get(f"/api/v1/accounts/{mine['uuid']}/balances").json()
    assert balances[0]["balance"] == 400
    other = api.post(url, {**body, "amount": 101}, format="json", HTTP_IDEMPOTENCY_KEY="w-1")
    assert other.status_code == 409
    assert other.json()["error"] == "IDEMPOTENCY_KEY_REUSED"
