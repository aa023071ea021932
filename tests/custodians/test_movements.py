"""Money enters and leaves only through a custodian: customer deposits and withdrawals are
custodian workflows, read as `deposit` / `withdrawal` resources, and the books of the bank and
the ledger agree after any of it.

Requests run as the embedded default does: the run starts once the request's transaction
commits (captured here, since the test transaction never commits).
"""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from apps.accounts.reconciliation import ledger_reconcile
from apps.accounts.selectors import balances_by_asset
from apps.accounts.services import account_close, account_freeze, account_open
from apps.core.errors import AccountHasPendingMovements, AssetNotDepositable, InvalidInput
from apps.core.replay import rebuild_projections
from apps.custodians.models import CustodianMovement, ExternalAccount, MockBankTransaction
from apps.custodians.registry import connector_for
from apps.custodians.selectors import account_has_pending_movements
from apps.custodians.services import (
    MovementReferenceReused,
    custodian_deposit_start,
    custodian_reconcile,
    custodian_withdrawal_start,
    external_account_ensure,
)
from apps.workflows.models import WorkflowRun
from apps.workflows.selectors import workflow_run_get, workflow_steps
from apps.workflows.services import workflow_advance
from tests.api.conftest import assert_error, client_for
from tests.custodians.conftest import OMNIBUS
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

RESOURCE_KEYS = {
    "uuid",
    "status",
    "account",
    "asset_code",
    "amount",
    "amount_display",
    "custodian",
    "reference",
    "created_at",
    "completed_at",
}


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run a call, then what its commit starts (the run, advanced in-process)."""

    def run(call, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            result = call(*args, **kwargs)
        return result

    return run


@pytest.fixture
def alice(bank):
    return UserFactory(email="alice@example.com", name="Alice")


@pytest.fixture
def api(alice):
    return client_for(alice)


@pytest.fixture
def account(alice):
    return account_open(name="Main", owner_uuid=alice.uuid)


def usd(account_uuid) -> int:
    return balances_by_asset(account_uuid).get("USD", 0)


def at_the_bank(account_id: str, asset: str = "USD") -> int:
    return connector_for().inner.get_balance(account_id, asset).amount


def post(api, committed, account, path, body, **headers):
    return committed(
        api.post, f"/api/v1/accounts/{account.uuid}/{path}", body, format="json", **headers
    )


def assert_books_agree():
    report = ledger_reconcile()  # replays the workflows' events: the resources included
    assert report.clean, report
    (check,) = custodian_reconcile()
    assert check.reconciliation.clean, check.reconciliation.results


# --- deposits -------------------------------------------------------------------------------


def test_a_deposit_through_the_api_is_202_and_credits_once_the_custodian_has_the_money(
    api, account, committed
):
    response = post(api, committed, account, "deposit", {"amount": 25_000, "asset_code": "USD"})
    assert response.status_code == 202, response.content[:500]
    body = response.json()
    assert RESOURCE_KEYS | {"source"} == set(body)
    assert (body["status"], body["amount"], body["amount_display"]) == ("pending", 25_000, "250.00")
    assert (body["account"], body["custodian"]) == (str(account.uuid), "mock_bank")
    registered = ExternalAccount.objects.get(owner_uuid=account.owner_id)
    assert body["source"] == registered.account_id
    # The mock bank settles at once: by the time the client looks, it is done.
    deposit = api.get(f"/api/v1/deposits/{body['uuid']}").json()
    assert deposit["status"] == "completed" and deposit["completed_at"]
    assert usd(account.uuid) == 25_000
    assert at_the_bank(registered.account_id) == 1_000_000 - 25_000  # the DEBUG opening balance
    assert at_the_bank(OMNIBUS) == 25_000
    assert_books_agree()


def test_a_deposit_with_no_money_at_the_custodian_fails_and_credits_nothing(
    api, account, committed, settings
):
    settings.MOCK_BANK_CUSTOMER_OPENING_BALANCES = {}
    response = post(api, committed, account, "deposit", {"amount": 10**13, "asset_code": "USD"})
    assert response.status_code == 202, response.content[:500]
    deposit = api.get(f"/api/v1/deposits/{response.json()['uuid']}").json()
    assert deposit["status"] == "failed" and deposit["completed_at"]
    assert usd(account.uuid) == 0
    assert not MockBankTransaction.objects.exists()
    assert_books_agree()


def test_a_deposit_pulls_only_from_the_owner_s_own_account(api, account, committed, bank):
    bob = UserFactory()
    bobs = external_account_ensure(owner_uuid=bob.uuid)
    response = post(
        api,
        committed,
        account,
        "deposit",
        {"amount": 1_000, "asset_code": "USD", "source": bobs.account_id},
    )
    assert_error(response, 400, "VALIDATION_ERROR")
    assert at_the_bank(bobs.account_id) == 1_000_000
    with pytest.raises(InvalidInput):
        custodian_deposit_start(
            account_uuid=account.uuid, amount=1_000, asset_code="USD", source="EXT-ANYONE-1"
        )
    assert not WorkflowRun.objects.exists()


@pytest.mark.parametrize("path", ["deposit", "withdraw"])
def test_gcu_is_only_composed_never_deposited_or_withdrawn(api, account, committed, path):
    response = post(api, committed, account, path, {"amount": 100, "asset_code": "GCU"})
    assert_error(response, 422, "ASSET_NOT_DEPOSITABLE")
    with pytest.raises(AssetNotDepositable):  # every channel, not only the API
        custodian_deposit_start(account_uuid=account.uuid, amount=100, asset_code="GCU")
    assert not WorkflowRun.objects.exists()


def test_an_asset_the_custodian_does_not_hold_is_not_depositable(
    api, account, committed, mock_options
):
    mock_options(supported_assets=["USD"])
    response = post(api, committed, account, "deposit", {"amount": 100, "asset_code": "EUR"})
    body = assert_error(response, 422, "ASSET_NOT_DEPOSITABLE")
    assert body["details"] == {"asset_code": "EUR", "custodian": "mock_bank"}


def test_an_amount_above_the_asset_bound_is_refused(api, account, committed):
    response = post(api, committed, account, "deposit", {"amount": 10**15, "asset_code": "USD"})
    assert_error(response, 422, "AMOUNT_TOO_LARGE")
    assert not WorkflowRun.objects.exists()


# --- withdrawals ----------------------------------------------------------------------------


def funded(api, committed, account, amount=50_000):
    response = post(api, committed, account, "deposit", {"amount": amount, "asset_code": "USD"})
    assert response.status_code == 202, response.content[:500]
    assert usd(account.uuid) == amount


def test_a_withdrawal_through_the_api_pays_out_to_the_registered_account(api, account, committed):
    funded(api, committed, account)
    response = post(api, committed, account, "withdraw", {"amount": 20_000, "asset_code": "USD"})
    assert response.status_code == 202, response.content[:500]
    body = response.json()
    assert RESOURCE_KEYS | {"destination"} == set(body)
    registered = ExternalAccount.objects.get(owner_uuid=account.owner_id).account_id
    assert body["destination"] == registered and body["status"] == "pending"
    assert api.get(f"/api/v1/withdrawals/{body['uuid']}").json()["status"] == "completed"
    assert usd(account.uuid) == 30_000
    assert at_the_bank(registered) == 1_000_000 - 50_000 + 20_000
    assert_books_agree()


def test_a_withdrawal_beyond_the_balance_is_422_and_stores_no_run(api, account, committed):
    funded(api, committed, account, 1_000)
    runs = WorkflowRun.objects.count()
    response = post(api, committed, account, "withdraw", {"amount": 1_001, "asset_code": "USD"})
    body = assert_error(response, 422, "INSUFFICIENT_FUNDS")
    assert (body["details"]["current_balance"], body["details"]["requested"]) == (1_000, 1_001)
    assert WorkflowRun.objects.count() == runs
    assert usd(account.uuid) == 1_000


def deposited(account, amount: int) -> None:
    run = custodian_deposit_start(account_uuid=account.uuid, amount=amount, asset_code="USD")
    assert workflow_advance(run_uuid=run.uuid) == "completed"


def test_a_payout_returned_by_the_bank_lands_on_a_frozen_account(account, mock_options, clock):
    deposited(account, 40_000)
    bank = mock_options(settle_after_seconds=3600)
    payout = custodian_withdrawal_start(
        account_uuid=account.uuid, amount=40_000, asset_code="USD", destination="EXT-RENT-1"
    )
    assert workflow_advance(run_uuid=payout.uuid) == "waiting"  # sent, pending at the bank
    assert usd(account.uuid) == 0
    account_freeze(account_uuid=account.uuid, reason="fraud investigation")
    bank.fail_transaction(MockBankTransaction.objects.get(to_account="EXT-RENT-1").pk, "bounced")
    clock.advance(60)
    # Money going back to its owner is not a customer action: it lands, frozen or not.
    assert workflow_advance(run_uuid=payout.uuid) == "compensated"
    assert usd(account.uuid) == 40_000
    assert CustodianMovement.objects.get(uuid=payout.uuid).status == "returned"
    assert_books_agree()


def test_an_account_with_a_withdrawal_in_progress_cannot_be_closed(account, mock_options, clock):
    deposited(account, 40_000)
    bank = mock_options(settle_after_seconds=3600)
    payout = custodian_withdrawal_start(
        account_uuid=account.uuid, amount=40_000, asset_code="USD", destination="EXT-RENT-1"
    )
    assert workflow_advance(run_uuid=payout.uuid) == "waiting"
    assert usd(account.uuid) == 0 and account_has_pending_movements(account.uuid)
    with pytest.raises(AccountHasPendingMovements):
        account_close(account_uuid=account.uuid)
    bank.fail_transaction(MockBankTransaction.objects.get(to_account="EXT-RENT-1").pk, "bounced")
    clock.advance(60)
    assert workflow_advance(run_uuid=payout.uuid) == "compensated"
    assert usd(account.uuid) == 40_000  # credited back to an account still open
    assert not account_has_pending_movements(account.uuid)


def test_a_payout_started_twice_with_the_same_reference_is_one_run_and_one_payout(
    account, committed
):
    committed(custodian_deposit_start, account_uuid=account.uuid, amount=9_000, asset_code="USD")
    start = {
        "account_uuid": account.uuid,
        "amount": 3_000,
        "asset_code": "USD",
        "destination": "EXT-LANDLORD-1",
        "reference": "rent 2026-11",
    }
    first = committed(custodian_withdrawal_start, **start)
    second = committed(custodian_withdrawal_start, **start)
    assert first.uuid == second.uuid
    assert WorkflowRun.objects.filter(workflow_type="custodians.withdrawal").count() == 1
    assert MockBankTransaction.objects.filter(to_account="EXT-LANDLORD-1").count() == 1
    assert usd(account.uuid) == 6_000
    with pytest.raises(MovementReferenceReused):
        custodian_withdrawal_start(**{**start, "amount": 3_001})
    assert_books_agree()


def test_the_same_reference_through_the_api_returns_the_first_withdrawal(api, account, committed):
    funded(api, committed, account, 9_000)
    body = {"amount": 3_000, "asset_code": "USD", "reference": "invoice 17"}
    first = post(api, committed, account, "withdraw", body)
    second = post(api, committed, account, "withdraw", body)
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["uuid"] == second.json()["uuid"]
    assert usd(account.uuid) == 6_000
    other = post(api, committed, account, "withdraw", {**body, "amount": 2_000})
    assert_error(other, 409, "REFERENCE_REUSED")


# --- reading them ---------------------------------------------------------------------------


def test_idempotency_key_replays_the_same_202_and_moves_money_once(api, account, committed):
    body = {"amount": 7_000, "asset_code": "USD"}
    first = post(api, committed, account, "deposit", body, HTTP_IDEMPOTENCY_KEY="dep-1")
    replay = post(api, committed, account, "deposit", body, HTTP_IDEMPOTENCY_KEY="dep-1")
    assert (replay.status_code, replay.json()) == (202, first.json())
    assert replay["Idempotent-Replayed"] == "true"
    assert CustodianMovement.objects.count() == 1 and usd(account.uuid) == 7_000
    out = {"amount": 2_000, "asset_code": "USD"}
    first = post(api, committed, account, "withdraw", out, HTTP_IDEMPOTENCY_KEY="wd-1")
    replay = post(api, committed, account, "withdraw", out, HTTP_IDEMPOTENCY_KEY="wd-1")
    assert (replay.status_code, replay.json()) == (202, first.json())
    assert usd(account.uuid) == 5_000


def test_lists_are_newest_first_filter_by_status_and_page(api, account, committed):
    funded(api, committed, account, 5_000)
    someone_elses = account_open(name="Theirs", owner_uuid=UserFactory().uuid)
    for amount in (1_000, 2_000, 3_000):
        post(api, committed, account, "deposit", {"amount": amount, "asset_code": "USD"})
    post(api, committed, account, "withdraw", {"amount": 500, "asset_code": "USD"})
    url = f"/api/v1/accounts/{account.uuid}/deposits"
    page = api.get(url).json()
    assert page["count"] == 4
    assert [d["amount"] for d in page["results"]] == [3_000, 2_000, 1_000, 5_000]
    assert api.get(url, {"status": "completed"}).json()["count"] == 4
    assert api.get(url, {"status": "failed"}).json()["count"] == 0
    assert_error(api.get(url, {"status": "lost"}), 400, "VALIDATION_ERROR")
    two = api.get(url, {"page_size": 2}).json()
    assert len(two["results"]) == 2 and two["next"]
    withdrawals = api.get(f"/api/v1/accounts/{account.uuid}/withdrawals").json()
    assert [w["amount"] for w in withdrawals["results"]] == [500]
    assert_error(api.get(f"/api/v1/accounts/{someone_elses.uuid}/deposits"), 404, "NOT_FOUND")


def test_someone_else_s_deposit_or_withdrawal_is_404(api, account, committed):
    funded(api, committed, account, 5_000)
    post(api, committed, account, "withdraw", {"amount": 500, "asset_code": "USD"})
    deposit, withdrawal = (
        CustodianMovement.objects.get(kind=kind).uuid for kind in ("deposit", "withdrawal")
    )
    bob = client_for(UserFactory())
    for path in (f"deposits/{deposit}", f"withdrawals/{withdrawal}", f"deposits/{uuid.uuid4()}"):
        assert_error(bob.get(f"/api/v1/{path}"), 404, "NOT_FOUND")
    # a deposit is not a withdrawal
    assert_error(api.get(f"/api/v1/withdrawals/{deposit}"), 404, "NOT_FOUND")
    for path in ("deposits", "withdrawals", "deposit", "withdraw"):
        response = bob.generic(
            "GET" if path.endswith("s") else "POST",
            f"/api/v1/accounts/{account.uuid}/{path}",
            '{"amount": 1, "asset_code": "USD"}',
            content_type="application/json",
        )
        assert_error(response, 404, "NOT_FOUND")


def test_the_resources_are_a_projection_that_a_rebuild_reproduces(api, account, committed):
    funded(api, committed, account, 5_000)
    post(api, committed, account, "withdraw", {"amount": 500, "asset_code": "USD"})
    columns = [f.attname for f in CustodianMovement._meta.concrete_fields]
    before = list(CustodianMovement.objects.order_by("uuid").values_list(*columns))
    rebuild_projections("workflows")
    assert list(CustodianMovement.objects.order_by("uuid").values_list(*columns)) == before


def test_the_console_lists_deposits_and_withdrawals_read_only_by_status(
    client, api, account, committed
):
    funded(api, committed, account, 5_000)
    staff = StaffFactory()
    staff.groups.add(Group.objects.get(name="operator"))
    client.force_login(staff)
    url = reverse("admin:custodians_custodianmovement_changelist")
    page = client.get(url, {"status__exact": "completed"})
    assert page.status_code == 200 and b"5000" in page.content.replace(b",", b"")
    movement = CustodianMovement.objects.get()
    change = client.get(reverse("admin:custodians_custodianmovement_change", args=[movement.pk]))
    assert change.status_code == 200 and b'name="_save"' not in change.content


# --- after any amount of customer activity --------------------------------------------------


def test_after_a_burst_of_customer_deposits_and_withdrawals_the_custodian_reconciles(
    bank, committed
):
    customers = [UserFactory() for _ in range(4)]
    accounts = [account_open(name="Main", owner_uuid=c.uuid) for c in customers]
    clients = [client_for(c) for c in customers]
    for round_ in range(3):
        for index, (client, account) in enumerate(zip(clients, accounts, strict=True)):
            amount = 1_000 * (index + 1) + round_
            post(client, committed, account, "deposit", {"amount": amount, "asset_code": "USD"})
            post(client, committed, account, "deposit", {"amount": 77, "asset_code": "EUR"})
            post(
                client, committed, account, "withdraw", {"amount": amount // 3, "asset_code": "USD"}
            )
    # Some fail: more than the bank holds for the customer; a withdrawal beyond the balance.
    post(clients[0], committed, accounts[0], "deposit", {"amount": 2_000_000, "asset_code": "USD"})
    post(clients[1], committed, accounts[1], "withdraw", {"amount": 10**9, "asset_code": "USD"})
    statuses = set(CustodianMovement.objects.values_list("status", flat=True))
    assert statuses == {"completed", "failed"}
    total = sum(usd(a.uuid) for a in accounts)
    assert total > 0 and at_the_bank(OMNIBUS) == total
    assert at_the_bank(OMNIBUS, "EUR") == 77 * 12
    failed = CustodianMovement.objects.get(status="failed")
    assert workflow_run_get(failed.uuid).status == "compensated"
    steps = {step.name: step.status for step in workflow_steps(failed.uuid)}
    assert steps["credit_ledger"] == "pending"  # nothing was credited
    assert_books_agree()
