"""Custodian deposit, withdrawal and bulk payout workflows, and every way they compensate.

Each test ends with both books agreeing: the ledger reconciles, and the mock bank holds what the
settlement account says it should.
"""

from __future__ import annotations

import uuid

import pytest

from apps.accounts.reconciliation import ledger_reconcile
from apps.accounts.selectors import balances_by_asset
from apps.accounts.services import account_freeze, account_open, settlement_code
from apps.accounts.services import system_account_uuid as system_uuid
from apps.core.errors import AccountFrozen, InsufficientFunds, InvalidInput, NotFound
from apps.custodians.models import CustodianMovement, ExternalAccount, MockBankTransaction
from apps.custodians.registry import connector_for
from apps.custodians.services import (
    bulk_payout_start,
    circuit_breaker_reset,
    custodian_deposit_start,
    custodian_reconcile,
    custodian_withdrawal_start,
)
from apps.payments.models import Transfer
from apps.payments.services import deposit_create, transfer_create
from apps.workflows.selectors import workflow_run_get, workflow_run_list, workflow_steps
from apps.workflows.services import workflow_advance, workflow_compensate, workflow_retry
from tests.custodians.conftest import OMNIBUS
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SETTLEMENT = system_uuid(settlement_code("mock_bank"))


def withdraw(account, amount=25_000, destination="EXT-BOB-1", **kwargs):
    return custodian_withdrawal_start(
        account_uuid=account.uuid,
        amount=amount,
        asset_code="USD",
        destination=destination,
        reference="rent",
        **kwargs,
    )


def usd(account_uuid) -> int:
    return balances_by_asset(account_uuid).get("USD", 0)


def omnibus_usd() -> int:
    """What the mock bank holds for us, asked directly (not through the breaker)."""
    return connector_for().inner.get_balance(OMNIBUS, "USD").amount


def steps(run) -> dict:
    return {s.name: s for s in workflow_steps(run.uuid)}


def assert_books_agree():
    """Ledger conservation, chains and replays; and the custodian holds what we expect."""
    assert ledger_reconcile().clean
    (check,) = custodian_reconcile()
    assert check.reconciliation.clean, check.reconciliation.results


# --- withdrawal -----------------------------------------------------------------------------


def test_a_withdrawal_debits_the_ledger_and_pays_out_at_the_custodian(funded_account):
    run = withdraw(funded_account)
    assert workflow_advance(run_uuid=run.uuid) == "completed"
    assert usd(funded_account.uuid) == 75_000
    assert usd(SETTLEMENT) == -75_000
    assert omnibus_usd() == 75_000
    done = steps(run)
    tx = MockBankTransaction.objects.get(reference=f"{run.uuid}:send_at_custodian")
    assert (tx.to_account, tx.amount, tx.status) == ("EXT-BOB-1", 25_000, "completed")
    assert done["send_at_custodian"].external_id == f"mock_bank:{tx.transaction_id}"
    ledger_entry = Transfer.objects.get(uuid=done["debit_ledger"].result["transfer_uuid"])
    assert (ledger_entry.kind, ledger_entry.amount, ledger_entry.reference) == (
        "withdrawal",
        25_000,
        "rent",
    )
    assert ledger_entry.actor["type"] == "workflow" and ledger_entry.actor["id"] == str(run.uuid)
    assert_books_agree()


def test_the_input_is_checked_before_a_run_starts(funded_account):
    with pytest.raises(InvalidInput):
        withdraw(funded_account, amount=0)
    with pytest.raises(InvalidInput):
        withdraw(funded_account, destination="X" * 65)
    with pytest.raises(InvalidInput):
        withdraw(funded_account, custodian="no_such_bank")
    with pytest.raises(NotFound):
        custodian_withdrawal_start(
            account_uuid=uuid.uuid4(), amount=1, asset_code="USD", destination="EXT-1-OK"
        )
    assert not workflow_run_list().exists()


def test_a_withdrawal_beyond_the_balance_is_refused_before_a_run_exists(funded_account):
    with pytest.raises(InsufficientFunds) as refused:
        withdraw(funded_account, amount=100_001)
    assert refused.value.details["current_balance"] == 100_000
    assert refused.value.details["requested"] == 100_001
    assert not workflow_run_list().exists()
    account_freeze(account_uuid=funded_account.uuid, reason="investigation")
    with pytest.raises(AccountFrozen):
        withdraw(funded_account, amount=1)
    assert not workflow_run_list().exists()


def test_money_spent_before_the_debit_step_fails_the_run_before_anything_leaves(
    funded_account, bank
):
    run = withdraw(funded_account, amount=100_000)
    other = account_open(name="Other", owner_uuid=funded_account.owner_id)
    transfer_create(
        from_account=funded_account.uuid, to_account=other.uuid, amount=1, asset_code="USD"
    )
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    run = workflow_run_get(run.uuid)
    assert run.error["code"] == "INSUFFICIENT_FUNDS" and run.error["step"] == "debit_ledger"
    assert usd(funded_account.uuid) == 99_999
    assert not MockBankTransaction.objects.exists()
    assert_books_agree()


def test_a_destination_the_custodian_refuses_stops_the_run_at_once(funded_account, mock_options):
    mock_options(closed_accounts=["EXT-CLOSED-1"])
    run = withdraw(funded_account, destination="EXT-CLOSED-1")
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    assert workflow_run_get(run.uuid).error["step"] == "check_destination"
    assert usd(funded_account.uuid) == 100_000
    assert_books_agree()


def test_a_transfer_the_custodian_rejects_is_credited_back(bank, mock_bank):
    account = account_open(name="Main", owner_uuid=UserFactory().uuid)
    deposit_create(account_uuid=account.uuid, amount=50_000, asset_code="USD")
    # The mock bank never got this money (a deposit booked straight on the ledger): it refuses.
    run = withdraw(account, amount=20_000)
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    run = workflow_run_get(run.uuid)
    assert (run.error["step"], run.error["code"]) == ("send_at_custodian", "CUSTODIAN_REJECTED")
    done = steps(run)
    # the send began, so its compensation looked for a transfer: there was none
    assert done["send_at_custodian"].compensation_result["action"] == "none"
    reversal = done["debit_ledger"].compensation_result
    assert Transfer.objects.get(uuid=reversal["transfer_uuid"]).status == "reversed"
    assert usd(account.uuid) == 50_000
    assert ledger_reconcile().clean


def test_a_transfer_stuck_at_the_custodian_is_cancelled_after_the_deadline(
    funded_account, mock_options, clock, settings
):
    settings.CUSTODIAN_SETTLEMENT_TIMEOUT_SECONDS = 600
    mock_options(stuck_rate=1.0)
    run = withdraw(funded_account)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    assert usd(funded_account.uuid) == 75_000 and omnibus_usd() == 75_000
    for _ in range(20):
        clock.advance(settings.CUSTODIAN_POLL_SECONDS)
        outcome = workflow_advance(run_uuid=run.uuid)
        if outcome != "waiting":
            break
    assert outcome == "compensated"
    run = workflow_run_get(run.uuid)
    assert run.error["code"] == "WORKFLOW_STEP_TIMED_OUT"
    assert steps(run)["send_at_custodian"].compensation_result["action"] == "cancelled"
    assert MockBankTransaction.objects.get().status == "cancelled"
    assert usd(funded_account.uuid) == 100_000 and omnibus_usd() == 100_000
    assert_books_agree()


def test_a_transfer_the_custodian_fails_later_is_credited_back(funded_account, mock_options, clock):
    bank = mock_options(settle_after_seconds=3600)
    run = withdraw(funded_account)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    bank.fail_transaction(MockBankTransaction.objects.get().transaction_id, "account closed")
    clock.advance(30)
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    run = workflow_run_get(run.uuid)
    assert run.error["step"] == "verify_at_custodian" and "failed" in run.error["message"]
    assert steps(run)["send_at_custodian"].compensation_result["action"] == "none"
    assert usd(funded_account.uuid) == 100_000
    assert_books_agree()


def test_a_custodian_down_for_longer_than_the_attempts_is_given_up_and_credited_back(
    funded_account, mock_options, clock, settings
):
    settings.WORKFLOW_STEP_MAX_ATTEMPTS = 2
    mock_options(fail_operations=["initiate_transfer"])
    run = withdraw(funded_account)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    assert workflow_run_get(run.uuid).error["code"] == "CUSTODIAN_UNAVAILABLE"
    clock.advance(60)  # past the backoff; the breaker (5 failures) is open now
    circuit_breaker_reset(code="mock_bank")
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    undo = steps(run)["send_at_custodian"].compensation_result
    assert undo == {"action": "none", "reason": "the custodian has no such transfer"}
    assert usd(funded_account.uuid) == 100_000
    assert not MockBankTransaction.objects.exists()
    assert ledger_reconcile().clean


def test_a_lost_answer_is_retried_with_the_same_reference_and_pays_out_once(
    funded_account, mock_options, clock
):
    mock_options(timeout_operations=["initiate_transfer"])  # the bank acts, the answer is lost
    run = withdraw(funded_account)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    run = workflow_run_get(run.uuid)
    assert (run.error["step"], run.error["code"]) == ("send_at_custodian", "CUSTODIAN_TIMEOUT")
    # three connector attempts and the same reference each time: one transfer, already made
    tx = MockBankTransaction.objects.get()
    assert tx.status == "completed" and tx.reference == f"{run.uuid}:send_at_custodian"
    mock_options()  # the bank answers again
    clock.advance(60)
    circuit_breaker_reset(code="mock_bank")
    assert workflow_advance(run_uuid=run.uuid) == "completed"
    assert MockBankTransaction.objects.count() == 1
    assert usd(funded_account.uuid) == 75_000 and omnibus_usd() == 75_000
    assert_books_agree()


def test_a_transfer_made_but_never_confirmed_is_found_by_its_reference_and_sent_back(
    funded_account, mock_options, clock, settings
):
    settings.WORKFLOW_STEP_MAX_ATTEMPTS = 1
    mock_options(timeout_operations=["initiate_transfer"])
    run = withdraw(funded_account)
    # The send timed out (made, unconfirmed) and has no attempts left: compensate. Its
    # compensation finds the transfer in the custodian's history and sends it back; the return
    # times out too, so the compensation waits for its retry.
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    assert workflow_run_get(run.uuid).status == "compensating"
    mock_options()
    clock.advance(60)
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    undo = steps(run)["send_at_custodian"].compensation_result
    assert undo["action"] == "returned"
    sent, returned = MockBankTransaction.objects.order_by("created_at", "reference")
    assert undo == {
        "action": "returned",
        "transaction_id": sent.transaction_id,
        "return_transaction_id": returned.transaction_id,
    }
    assert MockBankTransaction.objects.count() == 2  # one payment, one return: no duplicates
    assert usd(funded_account.uuid) == 100_000 and omnibus_usd() == 100_000
    assert_books_agree()


def test_a_compensation_that_cannot_reach_the_custodian_fails_and_is_retried_by_staff(
    funded_account, mock_options, clock, settings
):
    settings.WORKFLOW_COMPENSATION_MAX_ATTEMPTS = 2
    # The breaker stays closed (an open one delays a step and uses up nothing): the attempts run
    # out on real failures.
    settings.CUSTODIAN_CIRCUIT_BREAKER = {
        **settings.CUSTODIAN_CIRCUIT_BREAKER,
        "failure_threshold": 100,
        "window": 100,
    }
    mock_options(settle_after_seconds=3600, fail_operations=["cancel_transaction"])
    run = withdraw(funded_account)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    workflow_compensate(run_uuid=run.uuid, reason="customer changed his mind")
    assert workflow_advance(run_uuid=run.uuid) == "waiting"  # cancel: attempt 1 failed
    clock.advance(60)
    assert workflow_advance(run_uuid=run.uuid) == "failed"
    run = workflow_run_get(run.uuid)
    assert run.error["phase"] == "compensate" and run.error["step"] == "send_at_custodian"
    assert usd(funded_account.uuid) == 75_000  # the debit waits for the custodian's part

    mock_options(settle_after_seconds=3600)  # the custodian is back
    circuit_breaker_reset(code="mock_bank")
    workflow_retry(run_uuid=run.uuid)
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    assert MockBankTransaction.objects.get().status == "cancelled"
    assert usd(funded_account.uuid) == 100_000 and omnibus_usd() == 100_000
    assert_books_agree()


# --- deposit --------------------------------------------------------------------------------


def deposit(account, amount=30_000, **kwargs):
    """From the owner's registered account at the mock bank (opened with the DEBUG opening
    balances: 10,000.00 USD)."""
    return custodian_deposit_start(
        account_uuid=account.uuid, amount=amount, asset_code="USD", **kwargs
    )


def registered(account) -> str:
    return ExternalAccount.objects.get(owner_uuid=account.owner_id).account_id


def test_a_deposit_takes_the_money_in_at_the_custodian_then_credits_the_ledger(
    funded_account, mock_options, clock
):
    mock_options(settle_after_seconds=45)
    run = deposit(funded_account)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    assert usd(funded_account.uuid) == 100_000  # nothing booked before the money arrived
    clock.advance(30)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    clock.advance(30)
    assert workflow_advance(run_uuid=run.uuid) == "completed"
    assert usd(funded_account.uuid) == 130_000 and omnibus_usd() == 130_000
    assert_books_agree()


def test_a_deposit_the_ledger_refuses_is_sent_back_at_the_custodian(funded_account):
    run = deposit(funded_account)
    account_freeze(account_uuid=funded_account.uuid, reason="investigation")  # after the start
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    run = workflow_run_get(run.uuid)
    assert run.error["code"] == "ACCOUNT_FROZEN" and run.error["step"] == "credit_ledger"
    undo = steps(run)["receive_at_custodian"].compensation_result
    assert undo["action"] == "returned"
    returned = MockBankTransaction.objects.get(transaction_id=undo["return_transaction_id"])
    assert (returned.from_account, returned.to_account, returned.amount) == (
        OMNIBUS,
        registered(funded_account),
        30_000,
    )
    assert usd(funded_account.uuid) == 100_000 and omnibus_usd() == 100_000
    assert_books_agree()


def test_a_pending_deposit_compensated_on_request_is_cancelled(funded_account, mock_options, clock):
    mock_options(settle_after_seconds=3600)
    run = deposit(funded_account)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    workflow_compensate(run_uuid=run.uuid, reason="sender asked to stop it")
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    assert MockBankTransaction.objects.get().status == "cancelled"
    assert omnibus_usd() == 100_000
    assert_books_agree()


def test_a_return_that_settles_later_is_waited_for(funded_account, mock_options, clock):
    mock_options(settle_after_seconds=20)
    run = deposit(funded_account)
    account_freeze(account_uuid=funded_account.uuid, reason="investigation")
    assert workflow_advance(run_uuid=run.uuid) == "waiting"  # incoming pending
    clock.advance(30)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"  # credit refused; return pending
    assert workflow_run_get(run.uuid).status == "compensating"
    clock.advance(30)
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    assert omnibus_usd() == 100_000
    assert_books_agree()


# --- bulk payouts ---------------------------------------------------------------------------


@pytest.fixture
def payees(bank):
    return [account_open(name=f"Payer {i}", owner_uuid=UserFactory().uuid) for i in range(3)]


def fund(account, amount, mock_bank):
    deposit_create(account_uuid=account.uuid, amount=amount, asset_code="USD")
    mock_bank.fund(OMNIBUS, "USD", amount)


def payout(account, amount, destination):
    return {
        "account_uuid": str(account.uuid),
        "amount": amount,
        "asset_code": "USD",
        "destination": destination,
        "reference": f"payout to {destination}",
    }


def test_an_atomic_bulk_payout_pays_every_item(payees, mock_bank):
    for account in payees:
        fund(account, 10_000, mock_bank)
    run = bulk_payout_start(
        payouts=[payout(a, 4_000, f"EXT-PAYEE-{i}") for i, a in enumerate(payees)], atomic=True
    )
    assert workflow_advance(run_uuid=run.uuid) == "completed"
    assert [usd(a.uuid) for a in payees] == [6_000] * 3
    assert MockBankTransaction.objects.filter(status="completed").count() == 3
    assert_books_agree()


def test_an_atomic_bulk_payout_undoes_every_item_paid_when_one_fails(payees, mock_bank):
    for account in payees:
        deposit_create(account_uuid=account.uuid, amount=10_000, asset_code="USD")
    mock_bank.fund(OMNIBUS, "USD", 8_000)  # enough for two payouts of 4,000, not three
    run = bulk_payout_start(
        payouts=[payout(a, 4_000, f"EXT-PAYEE-{i}") for i, a in enumerate(payees)], atomic=True
    )
    assert workflow_advance(run_uuid=run.uuid) == "compensated"
    run = workflow_run_get(run.uuid)
    assert run.error["step"] == "send:2" and run.error["code"] == "CUSTODIAN_REJECTED"
    done = steps(run)
    assert [done[f"send:{i}"].compensation_result["action"] for i in range(3)] == [
        "returned",
        "returned",
        "none",
    ]
    assert all(done[f"debit:{i}"].status == "compensated" for i in range(3))
    # newest first: send 2 (in doubt), sends 1 and 0, then the debits 2, 1, 0
    compensated = sorted(
        (s for s in done.values() if s.compensated_at), key=lambda s: (s.compensated_at, s.pk)
    )
    assert [s.name for s in compensated] == [
        "send:2",
        "send:1",
        "send:0",
        "debit:2",
        "debit:1",
        "debit:0",
    ]
    assert [usd(a.uuid) for a in payees] == [10_000] * 3
    assert omnibus_usd() == 8_000
    assert ledger_reconcile().clean


def test_a_bulk_payout_that_is_not_atomic_reports_each_item(payees, mock_bank):
    fund(payees[0], 10_000, mock_bank)
    fund(payees[2], 10_000, mock_bank)  # payees[1] has nothing: its payout fails alone
    run = bulk_payout_start(
        payouts=[payout(a, 4_000, f"EXT-PAYEE-{i}") for i, a in enumerate(payees)], atomic=False
    )
    assert workflow_advance(run_uuid=run.uuid) == "waiting"  # waits for its children
    children = list(workflow_run_list(parent=run.uuid))
    assert len(children) == 3
    for child in children:
        workflow_advance(run_uuid=child.uuid)
    # the last child to finish woke the parent: it is due now
    assert workflow_advance(run_uuid=run.uuid) == "completed"
    summary = steps(run)["collect_payouts"].result
    assert (summary["completed"], summary["compensated"], summary["failed"]) == (2, 1, 0)
    assert [item["status"] for item in summary["items"]] == [
        "completed",
        "compensated",
        "completed",
    ]
    assert [usd(a.uuid) for a in payees] == [6_000, 0, 6_000]
    assert_books_agree()


def test_a_bulk_payout_checks_every_item_before_it_starts(payees):
    with pytest.raises(InvalidInput) as refused:
        bulk_payout_start(
            payouts=[payout(payees[0], 100, "EXT-OK-1"), payout(payees[1], -5, "EXT-OK-2")],
            atomic=True,
        )
    assert refused.value.details["index"] == 1
    with pytest.raises(InvalidInput):
        bulk_payout_start(payouts=[], atomic=True)


# --- an open circuit breaker ----------------------------------------------------------------


def advance_until_done(run, clock, seconds: int, rounds: int) -> list[str]:
    outcomes = []
    for _ in range(rounds):
        clock.advance(seconds)
        outcomes.append(workflow_advance(run_uuid=run.uuid))
        if outcomes[-1] in ("completed", "compensated", "failed"):
            break
    return outcomes


def test_an_open_breaker_delays_a_step_and_never_uses_attempts_or_compensates(
    funded_account, mock_options, clock, settings
):
    settings.WORKFLOW_STEP_MAX_ATTEMPTS = 2
    mock_options(settle_after_seconds=30)
    run = withdraw(funded_account)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"  # sent; pending at the bank
    sent = MockBankTransaction.objects.get()
    # The bank goes down while the run polls: the real failures open the breaker.
    mock_options(settle_after_seconds=30, fail_operations=["get_transaction_status"])
    clock.advance(30)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"  # attempt 1 failed (3 calls)
    clock.advance(settings.WORKFLOW_RETRY_MAX_SECONDS)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"  # 2 more: the breaker opens
    assert connector_for().breaker.state().state == "open"
    # While it is open the step waits for it, however long: nothing is compensated.
    open_seconds = settings.CUSTODIAN_CIRCUIT_BREAKER["open_seconds"]
    while_open = advance_until_done(run, clock, open_seconds // 4, rounds=3)
    assert set(while_open) <= {"waiting", "not_due"}
    assert workflow_run_get(run.uuid).status == "running"
    assert usd(funded_account.uuid) == 75_000
    # The bank is back; the breaker lets a trial call through once its open period ends.
    mock_options(settle_after_seconds=30)
    assert advance_until_done(run, clock, open_seconds, rounds=3)[-1] == "completed"
    assert list(MockBankTransaction.objects.values_list("pk", "status")) == [(sent.pk, "completed")]
    verify = steps(run)["verify_at_custodian"]
    assert verify.status == "completed" and verify.attempts <= settings.WORKFLOW_STEP_MAX_ATTEMPTS
    assert usd(funded_account.uuid) == 75_000 and omnibus_usd() == 75_000
    assert CustodianMovement.objects.get(uuid=run.uuid).status == "completed"
    assert_books_agree()


def test_a_breaker_open_before_the_run_starts_delays_it_until_it_closes(
    funded_account, clock, settings
):
    settings.WORKFLOW_STEP_MAX_ATTEMPTS = 1
    breaker = connector_for().breaker
    for _ in range(5):
        breaker.record_failure(RuntimeError("connection refused"))
    run = withdraw(funded_account)
    assert workflow_advance(run_uuid=run.uuid) == "waiting"
    assert workflow_run_get(run.uuid).status == "running"
    assert usd(funded_account.uuid) == 100_000  # not debited yet: check_destination waits
    open_seconds = settings.CUSTODIAN_CIRCUIT_BREAKER["open_seconds"]
    assert advance_until_done(run, clock, open_seconds, rounds=3)[-1] == "completed"
    assert MockBankTransaction.objects.count() == 1
    assert usd(funded_account.uuid) == 75_000
    assert_books_agree()
