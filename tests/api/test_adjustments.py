"""Staff move money without a custodian only as an adjustment, behind maker-checker in the API as
in the console; they cannot move a customer's money with the customer's own routes."""

import uuid

import pytest
from django.contrib.auth.models import Group

from apps.accounts.selectors import balances_by_asset
from apps.payments.services import deposit_create
from tests.api.conftest import assert_error, client_for
from tests.factories import StaffFactory


@pytest.fixture
def account(api):
    body = api.post("/api/v1/accounts", {"name": "Main"}, format="json").json()
    deposit_create(account_uuid=uuid.UUID(body["uuid"]), amount=5_000, asset_code="USD")
    return body


def _adjust(client, account, **body):
    return client.post(
        f"/api/v1/accounts/{account['uuid']}/adjustments",
        {"asset_code": "USD", "reason": "correction", **body},
        format="json",
    )


def test_a_small_adjustment_is_booked_at_once_with_its_reason(staff_api, account):
    response = _adjust(staff_api, account, amount=-1_200)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["kind"], body["amount"], body["reference"]) == ("withdrawal", 1_200, "correction")
    assert balances_by_asset(uuid.UUID(account["uuid"])) == {"USD": 3_800}


def test_an_adjustment_above_the_threshold_waits_in_the_api_too(staff_api, account):
    """An operator once booked a $1,000,000 deposit through the REST API at once while the console
    queued the same request."""
    response = _adjust(staff_api, account, amount=100_000_000)
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "pending_approval"
    assert balances_by_asset(uuid.UUID(account["uuid"])) == {"USD": 5_000}


def test_the_owner_cannot_adjust_their_own_account(api, account):
    assert_error(_adjust(api, account, amount=1_000), 403, "PERMISSION_DENIED")
    assert balances_by_asset(uuid.UUID(account["uuid"])) == {"USD": 5_000}


@pytest.mark.parametrize("amount", [0, "100", 1.5, True, 10**19])
def test_an_adjustment_amount_is_a_non_zero_json_integer(staff_api, account, amount):
    assert_error(_adjust(staff_api, account, amount=amount), 400, "VALIDATION_ERROR")


def test_an_adjustment_needs_a_reason(staff_api, account):
    assert_error(_adjust(staff_api, account, amount=10, reason=""), 400, "VALIDATION_ERROR")


def test_an_adjustment_beyond_the_assets_bound_is_refused(staff_api, account):
    assert_error(_adjust(staff_api, account, amount=10**15), 422, "AMOUNT_TOO_LARGE")


def test_an_adjustment_cannot_overdraw_the_customer(staff_api, account):
    assert_error(_adjust(staff_api, account, amount=-5_001), 422, "INSUFFICIENT_FUNDS")


def _staff_transfer(staff_api, account, to_account, **body):
    return staff_api.post(
        "/api/v1/transfers",
        {
            "from_account": account["uuid"],
            "to_account": to_account["uuid"],
            "asset_code": "USD",
            **body,
        },
        format="json",
    )


def test_staff_transfer_out_of_a_customers_account_needs_a_reason(staff_api, account):
    """Staff once moved money from any customer's account to their own with POST /transfers."""
    own = staff_api.post("/api/v1/accounts", {"name": "Mine"}, format="json").json()
    response = _staff_transfer(staff_api, account, own, amount=100)
    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert "reason" in body["details"]
    assert balances_by_asset(uuid.UUID(account["uuid"])) == {"USD": 5_000}


def test_staff_transfer_below_the_threshold_carries_the_reason(staff_api, account):
    own = staff_api.post("/api/v1/accounts", {"name": "Mine"}, format="json").json()
    response = _staff_transfer(staff_api, account, own, amount=100, reason="fee refund")
    assert response.status_code == 201, response.json()
    assert response.json()["reason"] == "fee refund"
    stored = staff_api.get(f"/api/v1/transfers/{response.json()['uuid']}").json()
    assert stored["reason"] == "fee refund"
    assert balances_by_asset(uuid.UUID(account["uuid"])) == {"USD": 4_900}


def test_staff_transfer_above_the_threshold_waits_for_a_second_staff_member(
    bank, account, staff_api
):
    admins = Group.objects.get(name="administrator")
    checker = StaffFactory()
    checker.groups.add(admins)
    own = staff_api.post("/api/v1/accounts", {"name": "Mine"}, format="json").json()
    deposit_create(account_uuid=uuid.UUID(account["uuid"]), amount=2_000_000, asset_code="USD")
    response = _staff_transfer(staff_api, account, own, amount=1_500_000, reason="court order")
    assert response.status_code == 202, response.json()
    assert balances_by_asset(uuid.UUID(own["uuid"])) == {}
    from apps.core.context import command_context, user_actor
    from apps.payments.services import movement_request_approve

    with command_context(actor=user_actor(checker)):
        movement_request_approve(request_uuid=uuid.UUID(response.json()["uuid"]))
    assert balances_by_asset(uuid.UUID(own["uuid"])) == {"USD": 1_500_000}


def test_staff_cannot_bulk_or_convert_a_customers_money(staff_api, account):
    own = staff_api.post("/api/v1/accounts", {"name": "Mine"}, format="json").json()
    conversion = {
        "account_uuid": account["uuid"],
        "from_asset": "USD",
        "to_asset": "EUR",
        "amount": 100,
    }
    item = {
        "from_account": account["uuid"],
        "to_account": own["uuid"],
        "amount": 100,
        "asset_code": "USD",
    }
    for path, body in (
        ("/api/v1/exchange/convert", conversion),
        ("/api/v1/transfers/bulk", {"transfers": [item]}),
    ):
        assert_error(staff_api.post(path, body, format="json"), 422, "APPROVAL_REQUIRED")
    assert_error(
        _staff_transfer(staff_api, account, own, amount=1, reason="x", to_asset_code="EUR"),
        400,
        "VALIDATION_ERROR",
    )
    assert balances_by_asset(uuid.UUID(account["uuid"])) == {"USD": 5_000}


def test_a_second_staff_member_approves_what_the_first_requested(bank, account):
    from apps.core.context import command_context, user_actor
    from apps.payments.services import movement_request_approve

    admins = Group.objects.get(name="administrator")
    maker, checker = StaffFactory(), StaffFactory()
    maker.groups.add(admins)
    checker.groups.add(admins)
    pending = _adjust(client_for(maker), account, amount=100_000_000).json()
    with command_context(actor=user_actor(checker)):
        movement_request_approve(request_uuid=uuid.UUID(pending["uuid"]))
    assert balances_by_asset(uuid.UUID(account["uuid"])) == {"USD": 100_005_000}
