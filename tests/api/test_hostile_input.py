"""Hostile input (issue 17): whatever a client sends, the API answers with its error body and a
4xx, never a 500, HTML, or a number it read differently from what was sent."""

from __future__ import annotations

import re
import uuid

import pytest
from rest_framework.test import APIClient

from tests.api.conftest import ERROR_KEYS, assert_error


def _balance(client, account_uuid: str, asset_code: str = "USD") -> int:
    account = client.get(f"/api/v1/accounts/{account_uuid}").json()
    return {b["asset_code"]: b["balance"] for b in account["balances"]}.get(asset_code, 0)


# --- amounts are JSON integers ---------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [
        "100",
        " 100 ",
        "\uff11\uff12\uff13",
        "\u0663",
        "1e2",
        100.0,
        1e2,
        True,
        [100],
        {"value": 100},
    ],
    ids=[
        "digit-string",
        "padded-string",
        "full-width",
        "arabic-indic",
        "exponent-string",
        "float",
        "float-exponent",
        "bool",
        "list",
        "object",
    ],
)
@pytest.mark.parametrize("operation", ["withdraw", "transfer", "adjustment"])
def test_an_amount_is_a_json_integer_only(api, bob_api, staff_api, open_account, operation, amount):
    mine = open_account(funded={"USD": 1_000})["uuid"]
    theirs = open_account(bob_api)["uuid"]
    client, url, body = {
        "withdraw": (api, f"/api/v1/accounts/{mine}/withdraw", {"asset_code": "USD"}),
        "transfer": (
            api,
            "/api/v1/transfers",
            {"from_account": mine, "to_account": theirs, "asset_code": "USD"},
        ),
        "adjustment": (
            staff_api,
            f"/api/v1/accounts/{mine}/adjustments",
            {"asset_code": "USD", "reason": "correction"},
        ),
    }[operation]
    response = client.post(url, {**body, "amount": amount}, format="json")
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]) == ["amount"], error
    assert _balance(api, mine) == 1_000


# --- the URL ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/assets/%00",
        "/api/v1/assets/US%00D",
        "/api/v1/baskets/%00",
        "/api/v1/baskets/%00/value",
        "/api/v1/exchange-rates/%00/USD",
        "/api/v1/exchange-rates/USD/EUR%0a",
        "/api/v1/accounts/%1b",
        "/api/v1/assets?code=%00",
        "/api/v1/assets?%00=USD",
        "/api/v1/assets/" + "A" * 300,
    ],
)
def test_a_control_character_or_overlong_segment_in_the_url_is_refused(api, path):
    assert_error(api.get(path), 400, "VALIDATION_ERROR")


def test_an_unknown_route_or_malformed_id_is_a_json_404(api):
    for path in ("/api/v1/accounts/not-a-uuid", "/api/v1/no-such-thing", "/api/v2/accounts"):
        assert_error(api.get(path), 404, "NOT_FOUND")


def test_a_wrong_method_is_405_with_its_own_code(api):
    assert_error(api.delete("/api/v1/assets"), 405, "METHOD_NOT_ALLOWED")
    assert_error(api.put("/api/v1/exchange-rates"), 405, "METHOD_NOT_ALLOWED")


def test_an_unexpected_failure_under_the_api_is_a_json_500(alice, monkeypatch):
    from tests.api.conftest import client_for

    def fail(**filters):
        raise RuntimeError("a bug")

    monkeypatch.setattr("apps.assets.api.asset_list", fail)
    client = client_for(alice)
    client.raise_request_exception = False
    assert_error(client.get("/api/v1/assets"), 500, "SERVER_ERROR")


# --- the body --------------------------------------------------------------------------------


def test_json_nested_thousands_deep_is_a_400(api, open_account):
    mine = open_account()["uuid"]
    for depth in (40, 20_000):
        body = '{"amount": ' + "[" * depth + "]" * depth + ', "asset_code": "USD"}'
        response = api.post(
            f"/api/v1/accounts/{mine}/withdraw", body, content_type="application/json"
        )
        assert_error(response, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "text",
    [r"\ud800", r"a\udfffb", r"\u0000", r"USD\u0000"],
    ids=["lone-high", "lone-low", "nul", "trailing-nul"],
)
def test_text_that_cannot_be_stored_is_refused(api, open_account, text):
    mine = open_account(funded={"USD": 1_000})["uuid"]
    response = api.post(
        f"/api/v1/accounts/{mine}/withdraw",
        f'{{"amount": 1, "asset_code": "{text}"}}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    )
    assert_error(response, 400, "VALIDATION_ERROR")
    response = api.post(
        "/api/v1/accounts", f'{{"name": "{text}"}}', content_type="application/json"
    )
    assert_error(response, 400, "VALIDATION_ERROR")
    assert _balance(api, mine) == 1_000


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"]
)
def test_a_body_that_is_not_json_is_415(api, content_type):
    if content_type == "multipart/form-data":
        response = api.post("/api/v1/accounts", {"name": "Main"}, format="multipart")
    else:
        response = api.post("/api/v1/accounts", "name=Main", content_type=content_type)
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert api.get("/api/v1/accounts").json()["count"] == 0


def test_a_body_over_the_limit_is_413(api, settings):
    settings.API_MAX_BODY_BYTES = 1_000
    name = "x" * 2_000
    response = api.post("/api/v1/accounts", {"name": name}, format="json")
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    response = api.post(
        "/api/v1/accounts", "{}", content_type="application/json", CONTENT_LENGTH="-1"
    )
    assert_error(response, 400, "VALIDATION_ERROR")
    assert api.get("/api/v1/accounts").json()["count"] == 0


def test_the_default_body_limit_is_one_megabyte(api):
    response = api.post(
        "/api/v1/accounts",
        '{"name": "' + "x" * (1024 * 1024) + '"}',
        content_type="application/json",
    )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


# --- every path of the schema ----------------------------------------------------------------

_HOSTILE_PARAMETERS = {"nul": "%00", "overlong": "x" * 300, "not-a-uuid": "not-a-uuid"}


def _schema_operations(client: APIClient) -> list[tuple[str, str]]:
    schema = client.get("/api/schema/?format=json").json()
    return [
        (method, path)
        for path, operations in schema["paths"].items()
        if "{" in path
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def test_every_path_parameter_of_the_schema_refuses_hostile_values(api):
    operations = _schema_operations(api)
    assert len(operations) > 20, operations  # the walk reaches the API, not an empty schema
    failures = []
    for method, template in operations:
        for name, value in _HOSTILE_PARAMETERS.items():
            path = re.sub(r"\{[^}]+\}", value, template)
            response = getattr(api, method)(path, {}, format="json")
            is_error_body = (
                400 <= response.status_code < 500
                and response["Content-Type"].startswith("application/json")
                and set(response.json()) == ERROR_KEYS
            )
            if not is_error_body:
                failures.append((method, template, name, response.status_code))
    assert not failures, failures


def test_an_amount_in_a_query_is_ascii_digits_only(api):
    convert = "/api/v1/exchange-rates/USD/EUR/convert?amount="
    assert api.get(convert + "100").status_code == 200
    preview = "/api/v1/bank-allocations/distribution-preview?amount="
    assert api.get(preview + "100").status_code == 200
    for amount in ("\uff11\uff12\uff13", "%20100", "1.0", "-0", "true"):
        assert_error(api.get(convert + amount), 400, "VALIDATION_ERROR")
        assert_error(api.get(preview + amount), 400, "VALIDATION_ERROR")
