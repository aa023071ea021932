"""Every error code of API.md, each produced by a real HTTP request through the test client."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.services import account_freeze
from apps.assets.services import asset_deactivate, asset_define
from apps.payments.services import deposit_create
from apps.users.models import ApiToken
from apps.users.services import token_create
from tests.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


def _balance(client, account_uuid: str, asset_code: str = "USD") -> int:
    balances = client.get(f"/api/v1/accounts/{account_uuid}/balances").json()
    return next((b["balance"] for b in balances if b["asset_code"] == asset_code), 0)


def _transfer(source: str, target: str, amount: int = 100, asset_code: str = "USD", **more):
    return {
        "from_account": source,
        "to_account": target,
        "amount": amount,
        "asset_code": asset_code,
        **more,
    }


def _frozen_by_the_bank(account_uuid: str) -> None:
    """Freeze through the service: these tests are about what a frozen account refuses, and
    must not depend on the staff endpoint (its own tests are below)."""
    account_freeze(account_uuid=uuid.UUID(account_uuid), reason="compliance hold")


# --- 400 VALIDATION_ERROR --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (1.5, "A valid integer is required."),
        ("12.50", "A valid integer is required."),
        ("ten", "A valid integer is required."),
        (True, "A valid integer is required."),
        (None, "This field may not be null."),
        (0, None),
        (-100, None),
        (10**19, None),
    ],
    ids=["float", "decimal-string", "word", "bool", "null", "zero", "negative", "too-big"],
)
@pytest.mark.parametrize("operation", ["deposit", "withdraw", "transfer", "convert"])
def test_an_amount_that_is_not_a_positive_integer(
    api, bob_api, open_account, operation, amount, message
):
    mine = open_account(funded={"USD": 1_000})["uuid"]
    theirs = open_account(bob_api)["uuid"]
    url, body = {
        "deposit": (f"/api/v1/accounts/{mine}/deposit", {"asset_code": "USD"}),
        "withdraw": (f"/api/v1/accounts/{mine}/withdraw", {"asset_code": "USD"}),
        "transfer": ("/api/v1/transfers", _transfer(mine, theirs)),
        "convert": (
            "/api/v1/exchange/convert",
            {"account_uuid": mine, "from_asset": "USD", "to_asset": "EUR"},
        ),
    }[operation]
    response = api.post(url, {**body, "amount": amount}, format="json")
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]) == ["amount"], error
    assert isinstance(error["details"]["amount"], list) and error["details"]["amount"]
    if message:
        assert error["details"]["amount"] == [message]
    assert _balance(api, mine) == 1_000  # changed nothing


def test_a_decimal_string_amount_is_not_taken_as_minor_units(api, open_account):
    """ "100.00" is a non-integer amount (API.md): it must not be read as 100 minor units."""
    mine = open_account()["uuid"]
    for amount in ("100.00", "100.0"):
        response = api.post(
            f"/api/v1/accounts/{mine}/deposit",
            {"amount": amount, "asset_code": "USD"},
            format="json",
        )
        error = assert_error(response, 400, "VALIDATION_ERROR")
        assert "amount" in error["details"], amount
    assert _balance(api, mine) == 0


def test_missing_fields_are_named(api, open_account):
    mine = open_account()["uuid"]
    error = assert_error(
        api.post(f"/api/v1/accounts/{mine}/deposit", {}, format="json"), 400, "VALIDATION_ERROR"
    )
    assert error["details"] == {
        "amount": ["This field is required."],
        "asset_code": ["This field is required."],
    }
    error = assert_error(api.post("/api/v1/transfers", {}, format="json"), 400, "VALIDATION_ERROR")
    assert {"from_account", "to_account", "amount", "asset_code"} <= set(error["details"])
    error = assert_error(api.post("/api/v1/accounts", {}, format="json"), 400, "VALIDATION_ERROR")
    assert error["details"] == {"name": ["This field is required."]}


def test_a_bad_uuid_in_the_body_is_a_field_error(api, open_account):
    mine = open_account(funded={"USD": 500})["uuid"]
    error = assert_error(
        api.post("/api/v1/transfers", _transfer(mine, "not-a-uuid"), format="json"),
        400,
        "VALIDATION_ERROR",
    )
    assert error["details"] == {"to_account": ["Must be a valid UUID."]}
    error = assert_error(
        api.post(
            "/api/v1/exchange/convert",
            {"account_uuid": "1234", "from_asset": "USD", "to_asset": "EUR", "amount": 1},
            format="json",
        ),
        400,
        "VALIDATION_ERROR",
    )
    assert error["details"] == {"account_uuid": ["Must be a valid UUID."]}
    assert _balance(api, mine) == 500


def test_a_bad_uuid_in_a_query_parameter_is_a_field_error(staff_api):
    error = assert_error(staff_api.get("/api/v1/accounts?user=zzz"), 400, "VALIDATION_ERROR")
    assert error["details"] == {"user": ["must be a uuid"]}


def test_a_bad_uuid_in_the_path_is_not_found_with_the_error_body(api):
    """Existence is not revealed and every error leaves the API as the error body (API.md)."""
    for url in ("/api/v1/accounts/not-a-uuid", "/api/v1/transfers/123/reverse"):
        response = api.generic("GET" if "reverse" not in url else "POST", url)
        assert_error(response, 404, "NOT_FOUND")


def test_malformed_json(api, open_account):
    mine = open_account()["uuid"]
    response = api.post(
        f"/api/v1/accounts/{mine}/deposit", '{"amount": 1,', content_type="application/json"
    )
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "JSON parse error" in str(error["details"])
    response = api.post("/api/v1/transfers", "[1, 2]", content_type="application/json")
    assert_error(response, 400, "VALIDATION_ERROR")


def test_an_unknown_query_choice_is_a_field_error(api, open_account):
    mine = open_account()["uuid"]
    error = assert_error(
        api.get(f"/api/v1/accounts/{mine}/transactions?type=bogus"), 400, "VALIDATION_ERROR"
    )
    assert list(error["details"]) == ["type"]
    error = assert_error(
        api.get(f"/api/v1/accounts/{mine}/turnover?period=weekly"), 400, "VALIDATION_ERROR"
    )
    assert list(error["details"]) == ["period"]
    error = assert_error(api.get("/api/v1/exchange-rates/USD/EUR/convert"), 400, "VALIDATION_ERROR")
    assert list(error["details"]) == ["amount"]


# --- 401 NOT_AUTHENTICATED -------------------------------------------------------------------


def test_no_token(bank):
    response = APIClient().get("/api/v1/auth/me")
    assert_error(response, 401, "NOT_AUTHENTICATED")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    "header",
    ["Bearer fa_unknown", "Bearer", "Bearer a b", "Token abc", "bearer lower-case-keyword"],
)
def test_a_bad_token(bank, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert_error(client.get("/api/v1/auth/me"), 401, "NOT_AUTHENTICATED")


def test_an_expired_token(alice):
    issued = token_create(user=alice, name="short")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert client.get("/api/v1/auth/me").status_code == 200
    ApiToken.objects.filter(pk=issued.token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert_error(client.get("/api/v1/auth/me"), 401, "NOT_AUTHENTICATED")


def test_a_revoked_token(alice):
    issued = token_create(user=alice, name="gone")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    ApiToken.objects.filter(pk=issued.token.pk).update(revoked_at=timezone.now())
    assert_error(client.get("/api/v1/accounts"), 401, "NOT_AUTHENTICATED")


def test_logout_revokes_the_token_used_and_only_that_one(alice, api):
    other = client_for(alice)
    assert api.post("/api/v1/auth/logout").status_code == 204
    assert_error(api.get("/api/v1/auth/me"), 401, "NOT_AUTHENTICATED")
    assert_error(api.post("/api/v1/auth/logout"), 401, "NOT_AUTHENTICATED")
    assert other.get("/api/v1/auth/me").status_code == 200


def test_wrong_password_on_login(alice):
    response = APIClient().post(
        "/api/v1/auth/login",
        {"email": alice.email, "password": "not-the-password"},
        format="json",
    )
    assert_error(response, 401, "NOT_AUTHENTICATED")
    response = APIClient().post(
        "/api/v1/auth/login",
        {"email": "nobody@example.com", "password": "not-the-password"},
        format="json",
    )
    assert_error(response, 401, "NOT_AUTHENTICATED")


# --- 403 PERMISSION_DENIED -------------------------------------------------------------------


def test_a_customer_may_not_freeze_his_own_account(api, open_account):
    mine = open_account()["uuid"]
    response = api.post(f"/api/v1/accounts/{mine}/freeze", {"reason": "x"}, format="json")
    assert_error(response, 403, "PERMISSION_DENIED")
    assert api.get(f"/api/v1/accounts/{mine}").json()["frozen"] is False


def test_a_read_only_token_may_not_move_money(alice, api, bob_api, open_account):
    mine = open_account(funded={"USD": 1_000})["uuid"]
    theirs = open_account(bob_api)["uuid"]
    read_only = client_for(alice, scopes=["read"])
    assert read_only.get(f"/api/v1/accounts/{mine}").status_code == 200
    for url, body in [
        ("/api/v1/transfers", _transfer(mine, theirs)),
        (f"/api/v1/accounts/{mine}/withdraw", {"amount": 1, "asset_code": "USD"}),
        (f"/api/v1/accounts/{mine}/deposit", {"amount": 1, "asset_code": "USD"}),
        ("/api/v1/accounts", {"name": "More"}),
    ]:
        error = assert_error(read_only.post(url, body, format="json"), 403, "PERMISSION_DENIED")
        assert "scope" in error["message"]
    assert _balance(api, mine) == 1_000


def test_a_customer_may_not_reverse_his_own_transfer(api, bob_api, open_account):
    mine = open_account(funded={"USD": 1_000})["uuid"]
    theirs = open_account(bob_api)["uuid"]
    transfer = api.post("/api/v1/transfers", _transfer(mine, theirs), format="json").json()
    response = api.post(
        f"/api/v1/transfers/{transfer['uuid']}/reverse", {"reason": "oops"}, format="json"
    )
    assert_error(response, 403, "PERMISSION_DENIED")
    assert api.get(f"/api/v1/transfers/{transfer['uuid']}").json()["status"] == "completed"


# --- 404 NOT_FOUND ---------------------------------------------------------------------------


def test_unknown_objects(api):
    unknown = "00000000-0000-4000-8000-00000000abcd"
    for method, url in [
        ("GET", f"/api/v1/accounts/{unknown}"),
        ("GET", f"/api/v1/accounts/{unknown}/balances"),
        ("GET", f"/api/v1/transfers/{unknown}"),
        ("DELETE", f"/api/v1/auth/tokens/{unknown}"),
        ("GET", "/api/v1/assets/NOPE"),
    ]:
        assert_error(api.generic(method, url), 404, "NOT_FOUND")
    response = api.post(
        f"/api/v1/accounts/{unknown}/deposit", {"amount": 1, "asset_code": "USD"}, format="json"
    )
    assert_error(response, 404, "NOT_FOUND")


# --- 409 IDEMPOTENCY_KEY_REUSED --------------------------------------------------------------


def test_the_same_key_with_another_body_or_path(api, bob_api, open_account):
    mine = open_account(funded={"USD": 1_000})["uuid"]
    theirs = open_account(bob_api)["uuid"]
    body = _transfer(mine, theirs, amount=100)
    first = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201
    for url, other in [
        ("/api/v1/transfers", {**body, "amount": 101}),
        ("/api/v1/transfers", {**body, "reference": "changed"}),
        (f"/api/v1/accounts/{mine}/withdraw", {"amount": 100, "asset_code": "USD"}),
    ]:
        response = api.post(url, other, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        error = assert_error(response, 409, "IDEMPOTENCY_KEY_REUSED")
        assert error["details"] == {"key": "k-1"}
    assert _balance(api, mine) == 900


def test_a_replay_answers_the_first_response_even_a_refusal(api, bob_api, open_account):
    mine = open_account(funded={"USD": 50})["uuid"]
    theirs = open_account(bob_api)["uuid"]
    body = _transfer(mine, theirs, amount=100)
    first = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    assert_error(first, 422, "INSUFFICIENT_FUNDS")
    deposit_create(account_uuid=uuid.UUID(mine), amount=1_000, asset_code="USD")
    again = api.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert _balance(api, mine) == 1_050


def test_keys_are_scoped_to_the_user(api, bob_api, open_account):
    mine = open_account(funded={"USD": 500})["uuid"]
    theirs = open_account(bob_api, funded={"USD": 500})["uuid"]
    a = api.post(
        f"/api/v1/accounts/{mine}/withdraw",
        {"amount": 10, "asset_code": "USD"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="shared",
    )
    b = bob_api.post(
        f"/api/v1/accounts/{theirs}/withdraw",
        {"amount": 10, "asset_code": "USD"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="shared",
    )
    assert (a.status_code, b.status_code) == (202, 202)
    assert a.json()["uuid"] != b.json()["uuid"]
    assert "Idempotent-Replayed" not in b


def test_an_empty_or_overlong_key_is_a_validation_error(api, open_account):
    mine = open_account(funded={"USD": 500})["uuid"]
    url = f"/api/v1/accounts/{mine}/withdraw"
    for key in ("", "k" * 256):
        response = api.post(
            url, {"amount": 1, "asset_code": "USD"}, format="json", HTTP_IDEMPOTENCY_KEY=key
        )
        error = assert_error(response, 400, "VALIDATION_ERROR")
        assert "Idempotency-Key" in error["details"]
    assert _balance(api, mine) == 500


# --- 429 THROTTLED ---------------------------------------------------------------------------


@pytest.fixture
def auth_rate(monkeypatch):
    """Set the `auth` throttle scope's rate. DRF binds THROTTLE_RATES when it is imported, so
    override_settings would not reach it."""
    from rest_framework.throttling import SimpleRateThrottle

    from apps.users.api import LoginView

    def set_rate(rate: str) -> None:
        rates = {**SimpleRateThrottle.THROTTLE_RATES, "auth": rate}
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
        for throttle_class in LoginView().get_throttles():
            if "THROTTLE_RATES" in vars(type(throttle_class)):
                monkeypatch.setattr(type(throttle_class), "THROTTLE_RATES", rates)

    return set_rate


def test_login_is_throttled_by_the_auth_scope(alice, auth_rate):
    auth_rate("3/minute")
    client = APIClient()
    body = {"email": alice.email, "password": "wrong-password"}
    for _ in range(3):
        assert_error(
            client.post("/api/v1/auth/login", body, format="json"), 401, "NOT_AUTHENTICATED"
        )
    response = client.post(
        "/api/v1/auth/login",
        {"email": alice.email, "password": "correct-horse-battery"},
        format="json",
    )
    error = assert_error(response, 429, "THROTTLED")
    assert 0 < error["details"]["retry_after_seconds"] <= 60
    assert 0 < int(response["Retry-After"]) <= 60
    # registration shares the scope
    response = client.post(
        "/api/v1/auth/register",
        {"email": "late@example.com", "password": "a-long-passphrase-42", "name": "Late"},
        format="json",
    )
    assert_error(response, 429, "THROTTLED")


def test_the_per_operation_limit_refuses_and_moves_no_money(
    api, open_account, settings, django_capture_on_commit_callbacks, eager_tasks
):
    mine = open_account(funded={"USD": 1_000})["uuid"]
    settings.OPERATION_LIMITS = {
        **settings.OPERATION_LIMITS,
        "withdrawal": {"per_hour": 2, "per_day": 2, "amount_per_hour": {}},
    }
    url = f"/api/v1/accounts/{mine}/withdraw"
    body = {"amount": 10, "asset_code": "USD"}

    def post(**headers):  # a withdrawal runs once its request has committed
        with django_capture_on_commit_callbacks(execute=True):
            return api.post(url, body, format="json", **headers)

    assert post().status_code == 202
    assert post(HTTP_IDEMPOTENCY_KEY="w-2").status_code == 202
    error = assert_error(post(), 429, "THROTTLED")
    assert "withdrawal" in error["message"]
    assert_error(post(HTTP_IDEMPOTENCY_KEY="w-3"), 429, "THROTTLED")
    # a replay of an earlier success is not another operation
    replay = post(HTTP_IDEMPOTENCY_KEY="w-2")
    assert replay.status_code == 202 and replay["Idempotent-Replayed"] == "true"
    assert _balance(api, mine) == 980
    # the refused key was not used up: with room again, it goes through once
    settings.OPERATION_LIMITS = {
        **settings.OPERATION_LIMITS,
        "withdrawal": {"per_hour": 100, "per_day": 100, "amount_per_hour": {}},
    }
    assert post(HTTP_IDEMPOTENCY_KEY="w-3").status_code == 202
    assert _balance(api, mine) == 970


def test_the_per_hour_amount_limit(api, bob_api, open_account, settings):
    mine = open_account(funded={"USD": 10_000})["uuid"]
    theirs = open_account(bob_api)["uuid"]
    settings.OPERATION_LIMITS = {
        **settings.OPERATION_LIMITS,
        "transfer": {"per_hour": 100, "per_day": 100, "amount_per_hour": {"USD": 1_000}},
    }
    first = api.post("/api/v1/transfers", _transfer(mine, theirs, 600), format="json")
    assert first.status_code == 201
    second = api.post("/api/v1/transfers", _transfer(mine, theirs, 600), format="json")
    assert_error(second, 429, "THROTTLED")
    assert _balance(api, mine) == 9_400


def test_a_refused_amount_does_not_use_up_the_hourly_amount(api, bob_api, open_account, settings):
    """600 moved of 1,000 allowed: after a refused 600, 400 more may still go this hour."""
    mine = open_account(funded={"USD": 10_000})["uuid"]
    theirs = open_account(bob_api)["uuid"]
    settings.OPERATION_LIMITS = {
        **settings.OPERATION_LIMITS,
        "transfer": {"per_hour": 100, "per_day": 100, "amount_per_hour": {"USD": 1_000}},
    }
    assert (
        api.post("/api/v1/transfers", _transfer(mine, theirs, 600), format="json").status_code
        == 201
    )
    refused = api.post("/api/v1/transfers", _transfer(mine, theirs, 600), format="json")
    assert_error(refused, 429, "THROTTLED")
    third = api.post("/api/v1/transfers", _transfer(mine, theirs, 400), format="json")
    assert third.status_code == 201, third.json()
    assert _balance(api, mine) == 9_000


# --- 422 business rules ----------------------------------------------------------------------


def test_insufficient_funds_carries_balance_and_request(api, bob_api, open_account):
    mine = open_account(funded={"USD": 250})["uuid"]
    theirs = open_account(bob_api)["uuid"]
    for response in (
        api.post(
            f"/api/v1/accounts/{mine}/withdraw", {"amount": 251, "asset_code": "USD"}, format="json"
        ),
        api.post("/api/v1/transfers", _transfer(mine, theirs, 300), format="json"),
    ):
        error = assert_error(response, 422, "INSUFFICIENT_FUNDS")
        assert error["details"]["current_balance"] == 250
        assert error["details"]["requested"] in (251, 300)
    error = assert_error(
        api.post(
            f"/api/v1/accounts/{mine}/withdraw", {"amount": 1, "asset_code": "EUR"}, format="json"
        ),
        422,
        "INSUFFICIENT_FUNDS",
    )
    assert (error["details"]["current_balance"], error["details"]["requested"]) == (0, 1)
    assert _balance(api, mine) == 250


def test_money_may_not_move_on_a_frozen_account(api, open_account):
    mine = open_account(funded={"USD": 500})["uuid"]
    _frozen_by_the_bank(mine)
    for operation in ("deposit", "withdraw"):
        response = api.post(
            f"/api/v1/accounts/{mine}/{operation}",
            {"amount": 1, "asset_code": "USD"},
            format="json",
        )
        assert_error(response, 422, "ACCOUNT_FROZEN")
    assert_error(api.delete(f"/api/v1/accounts/{mine}"), 422, "ACCOUNT_FROZEN")
    assert _balance(api, mine) == 500


def test_a_transfer_names_the_frozen_side(api, bob_api, open_account):
    mine = open_account(funded={"USD": 500})["uuid"]
    theirs = open_account(bob_api, funded={"USD": 500})["uuid"]
    _frozen_by_the_bank(theirs)
    response = api.post("/api/v1/transfers", _transfer(mine, theirs), format="json")
    assert_error(response, 422, "DESTINATION_ACCOUNT_FROZEN")
    _frozen_by_the_bank(mine)
    response = api.post("/api/v1/transfers", _transfer(mine, theirs), format="json")
    assert_error(response, 422, "SOURCE_ACCOUNT_FROZEN")
    assert _balance(api, mine) == 500


def test_same_account(api, open_account):
    mine = open_account(funded={"USD": 500})["uuid"]
    error = assert_error(
        api.post("/api/v1/transfers", _transfer(mine, mine), format="json"), 422, "SAME_ACCOUNT"
    )
    assert error["details"]["account"] == mine


def test_a_closed_account(api, bob_api, open_account):
    mine = open_account(funded={"USD": 500})["uuid"]
    closed = open_account(name="Old")["uuid"]
    assert api.delete(f"/api/v1/accounts/{closed}").status_code == 204
    assert api.get(f"/api/v1/accounts/{closed}").json()["closed"] is True
    response = api.post(
        f"/api/v1/accounts/{closed}/deposit", {"amount": 1, "asset_code": "USD"}, format="json"
    )
    assert_error(response, 422, "ACCOUNT_CLOSED")
    response = api.post("/api/v1/transfers", _transfer(mine, closed), format="json")
    assert_error(response, 422, "ACCOUNT_CLOSED")
    assert_error(api.delete(f"/api/v1/accounts/{closed}"), 422, "ACCOUNT_CLOSED")
    assert _balance(api, mine) == 500


def test_an_account_with_money_cannot_be_closed(api, open_account):
    mine = open_account(funded={"USD": 1})["uuid"]
    assert_error(api.delete(f"/api/v1/accounts/{mine}"), 422, "ACCOUNT_HAS_BALANCE")
    assert api.get(f"/api/v1/accounts/{mine}").json()["closed"] is False


def test_staff_freezes_and_unfreezes_once(api, staff_api, open_account):
    mine = open_account()["uuid"]
    url = f"/api/v1/accounts/{mine}"
    response = staff_api.post(f"{url}/freeze", {"reason": "fraud check"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["frozen"] is True
    again = staff_api.post(f"{url}/freeze", {"reason": "again"}, format="json")
    assert_error(again, 422, "ACCOUNT_ALREADY_FROZEN")
    assert staff_api.post(f"{url}/unfreeze", {}, format="json").status_code == 200
    assert_error(staff_api.post(f"{url}/unfreeze", {}, format="json"), 422, "ACCOUNT_NOT_FROZEN")
    assert api.get(url).json()["frozen"] is False


def test_staff_freezing_needs_a_reason(staff_api, open_account):
    mine = open_account()["uuid"]
    error = assert_error(
        staff_api.post(f"/api/v1/accounts/{mine}/freeze", {}, format="json"),
        400,
        "VALIDATION_ERROR",
    )
    assert list(error["details"]) == ["reason"]


def test_unknown_asset(api, open_account):
    mine = open_account(funded={"USD": 500})["uuid"]
    response = api.post(
        f"/api/v1/accounts/{mine}/deposit", {"amount": 1, "asset_code": "XXX"}, format="json"
    )
    error = assert_error(response, 422, "ASSET_NOT_FOUND")
    assert error["details"] == {"asset_code": "XXX"}
    response = api.post(
        "/api/v1/exchange/convert",
        {"account_uuid": mine, "from_asset": "USD", "to_asset": "XXX", "amount": 100},
        format="json",
    )
    assert_error(response, 422, "ASSET_NOT_FOUND")
    assert_error(api.get("/api/v1/exchange-rates/XXX/USD/convert?amount=1"), 422, "ASSET_NOT_FOUND")


def test_an_unknown_asset_has_no_identity_rate(api):
    """USD/USD is 1, but ZZZ/ZZZ is no rate at all: ZZZ does not exist."""
    assert api.get("/api/v1/exchange-rates/USD/USD").json()["rate"] == "1"
    response = api.get("/api/v1/exchange-rates/ZZZ/ZZZ")
    assert response.status_code == 422, response.content
    assert response.json()["error"] in ("ASSET_NOT_FOUND", "EXCHANGE_RATE_NOT_FOUND")


def test_inactive_asset(api, open_account):
    mine = open_account(funded={"CHF": 500, "USD": 500})["uuid"]
    asset_deactivate(code="CHF", reason="delisted")
    assert api.get("/api/v1/assets/CHF").json()["is_active"] is False
    response = api.post(
        f"/api/v1/accounts/{mine}/deposit", {"amount": 1, "asset_code": "CHF"}, format="json"
    )
    error = assert_error(response, 422, "ASSET_INACTIVE")
    assert error["details"] == {"asset_code": "CHF"}
    response = api.post(
        "/api/v1/exchange/convert",
        {"account_uuid": mine, "from_asset": "USD", "to_asset": "CHF", "amount": 100},
        format="json",
    )
    assert_error(response, 422, "ASSET_INACTIVE")
    assert _balance(api, mine, "CHF") == 500


def test_no_exchange_rate(api, open_account):
    asset_define(code="ZED", name="Zed Dollar", type="fiat", precision=2)
    mine = open_account(funded={"USD": 10_000})["uuid"]
    response = api.post(
        "/api/v1/exchange/convert",
        {"account_uuid": mine, "from_asset": "USD", "to_asset": "ZED", "amount": 100},
        format="json",
    )
    assert_error(response, 422, "EXCHANGE_RATE_NOT_FOUND")
    assert_error(api.get("/api/v1/exchange-rates/USD/ZED"), 422, "EXCHANGE_RATE_NOT_FOUND")
    assert_error(
        api.get("/api/v1/exchange-rates/USD/ZED/convert?amount=100"),
        422,
        "EXCHANGE_RATE_NOT_FOUND",
    )
    assert _balance(api, mine) == 10_000


# --- auth and accounts behaviour of API.md ---------------------------------------------------


def test_registration_opens_the_default_account(bank):
    client = APIClient()
    response = client.post(
        "/api/v1/auth/register",
        {"email": "zoe@example.com", "password": "a-long-passphrase-42", "name": "Zoë"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) >= {"user", "token", "expires_at"}
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    accounts = client.get("/api/v1/accounts").json()
    assert [a["name"] for a in accounts["results"]] == ["Zoë's Account"]
    assert accounts["results"][0]["user_uuid"] == body["user"]["uuid"]
    again = APIClient().post(
        "/api/v1/auth/register",
        {"email": "ZOE@example.com", "password": "a-long-passphrase-42", "name": "Zoë"},
        format="json",
    )
    error = assert_error(again, 400, "VALIDATION_ERROR")
    assert "email" in error["details"]


def test_registration_refuses_a_weak_password(bank):
    response = APIClient().post(
        "/api/v1/auth/register",
        {"email": "weak@example.com", "password": "123", "name": "Weak"},
        format="json",
    )
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert "password" in error["details"]


def test_the_token_list_never_shows_a_secret(alice, api):
    created = api.post("/api/v1/auth/tokens", {"name": "ci", "scopes": ["read"]}, format="json")
    assert created.status_code == 201, created.json()
    secret = created.json()["token"]
    assert secret.startswith("fa_")
    login = (
        APIClient()
        .post(
            "/api/v1/auth/login",
            {"email": alice.email, "password": "correct-horse-battery"},
            format="json",
        )
        .json()["token"]
    )
    listing = api.get("/api/v1/auth/tokens")
    assert listing.status_code == 200
    tokens = listing.json()
    assert {t["name"] for t in tokens} >= {"ci", "login"}
    for token in tokens:
        assert "token" not in token and "key_hash" not in token
        assert {"name", "scopes", "created_at", "last_used_at", "expires_at"} <= set(token)
    content = listing.content.decode()
    assert secret not in content and login not in content
    assert ApiToken.objects.get(uuid=created.json()["id"]).key_hash not in content


def test_deleting_a_token_revokes_it(alice, api):
    created = api.post("/api/v1/auth/tokens", {"name": "temp"}, format="json").json()
    temp = APIClient()
    temp.credentials(HTTP_AUTHORIZATION=f"Bearer {created['token']}")
    assert temp.get("/api/v1/auth/me").status_code == 200
    assert api.delete(f"/api/v1/auth/tokens/{created['id']}").status_code == 204
    assert_error(temp.get("/api/v1/auth/me"), 401, "NOT_AUTHENTICATED")
    assert created["id"] not in {t["id"] for t in api.get("/api/v1/auth/tokens").json()}
    assert_error(api.delete(f"/api/v1/auth/tokens/{created['id']}"), 404, "NOT_FOUND")
    assert api.get("/api/v1/auth/me").status_code == 200


def test_a_new_token_has_only_the_scopes_asked_for(alice, api):
    created = api.post(
        "/api/v1/auth/tokens", {"name": "ro", "scopes": ["read"]}, format="json"
    ).json()
    assert created["scopes"] == ["read"]
    error = assert_error(
        api.post("/api/v1/auth/tokens", {"name": "x", "scopes": ["admin"]}, format="json"),
        400,
        "VALIDATION_ERROR",
    )
    assert "scopes" in error["details"]


def test_staff_see_every_account_and_filter_by_user(
    alice, bob, api, bob_api, staff_api, open_account
):
    alice_accounts = {open_account(name="A1")["uuid"], open_account(name="A2")["uuid"]}
    bob_account = open_account(bob_api, name="B1")["uuid"]
    everything = staff_api.get("/api/v1/accounts?page_size=100").json()
    seen = {a["uuid"] for a in everything["results"]}
    assert alice_accounts | {bob_account} <= seen
    filtered = staff_api.get(f"/api/v1/accounts?user={alice.uuid}&page_size=100").json()
    assert {a["uuid"] for a in filtered["results"]} == alice_accounts
    assert {a["user_uuid"] for a in filtered["results"]} == {str(alice.uuid)}
    # a customer sees only his own, with or without ?user=
    assert {a["uuid"] for a in api.get("/api/v1/accounts").json()["results"]} == alice_accounts
    assert api.get(f"/api/v1/accounts?user={bob.uuid}").json()["count"] == 0


def test_staff_may_read_any_account(api, staff_api, open_account):
    mine = open_account(funded={"USD": 700})["uuid"]
    response = staff_api.get(f"/api/v1/accounts/{mine}")
    assert response.status_code == 200, response.json()
    assert staff_api.get(f"/api/v1/accounts/{mine}/balances").json()[0]["balance"] == 700
