"""The mock bank keeps the connector protocol, and its faults are configurable and repeatable."""

from __future__ import annotations

import pytest

from apps.custodians.connectors import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    CustodianConnector,
    CustodianRejected,
    CustodianTimeout,
    CustodianUnavailable,
    TransferRequest,
)
from apps.custodians.mock_bank import MockBank
from apps.custodians.models import MockBankCall, MockBankTransaction
from tests.custodians.conftest import OMNIBUS

pytestmark = pytest.mark.django_db


def out(reference="ref-1", amount=1_000, to="EXT-BOB-1", asset="USD"):
    return TransferRequest(OMNIBUS, to, asset, amount, reference)


def test_it_implements_the_protocol_and_is_the_default_connector(mock_bank):
    assert isinstance(mock_bank, MockBank)
    assert isinstance(mock_bank, CustodianConnector)
    assert mock_bank.settlement_account == OMNIBUS
    assert mock_bank.get_supported_assets() == [
        "USD",
        "EUR",
        "GBP",
        "CHF",
        "JPY",
        "XAU",
        "BTC",
        "ETH",
    ]


def test_an_outgoing_transfer_moves_money_off_the_omnibus_account_once_per_reference(mock_bank):
    mock_bank.fund(OMNIBUS, "USD", 5_000)
    tx = mock_bank.initiate_transfer(out(amount=1_200))
    assert (tx.status, tx.amount, tx.to_account) == (COMPLETED, 1_200, "EXT-BOB-1")
    again = mock_bank.initiate_transfer(out(amount=1_200))
    assert again.transaction_id == tx.transaction_id
    assert mock_bank.get_balance(OMNIBUS, "USD").amount == 3_800
    with pytest.raises(CustodianRejected):  # the same reference for another transfer
        mock_bank.initiate_transfer(out(amount=999))
    history = mock_bank.get_transaction_history(OMNIBUS)
    assert [h.transaction_id for h in history] == [tx.transaction_id]
    assert mock_bank.get_transaction_status(tx.transaction_id) == tx


def test_the_mock_bank_refuses_what_a_bank_would_refuse(mock_options):
    bank = mock_options(closed_accounts=["EXT-CLOSED"])
    bank.fund(OMNIBUS, "USD", 100)
    for request in (
        out(amount=101),  # more than the omnibus account holds
        out(asset="GCU"),  # not an asset of this bank
        out(to="EXT-CLOSED"),  # a closed counterparty
        out(to="??"),  # not an account id
        TransferRequest("EXT-A-1", "EXT-B-1", "USD", 10, "x"),  # neither side held here
    ):
        with pytest.raises(CustodianRejected):
            bank.initiate_transfer(request)
    assert not bank.validate_account("EXT-CLOSED")
    assert bank.validate_account("EXT-OPEN-1") and bank.validate_account(OMNIBUS)
    info = bank.get_account_info("EXT-CLOSED")
    assert (info.status, info.held_here) == ("closed", False)
    assert bank.get_account_info(OMNIBUS).balances == {"USD": 100}
    with pytest.raises(CustodianRejected):
        bank.get_balance("EXT-OPEN-1", "USD")
    assert MockBankTransaction.objects.count() == 0


def test_transfers_settle_after_a_delay_and_can_be_cancelled_while_pending(mock_options, clock):
    bank = mock_options(settle_after_seconds=60)
    bank.fund(OMNIBUS, "USD", 1_000)
    tx = bank.initiate_transfer(out(amount=400))
    assert tx.status == PENDING
    assert bank.get_balance(OMNIBUS, "USD").amount == 600  # held while pending
    clock.advance(60)
    assert bank.get_transaction_status(tx.transaction_id).status == COMPLETED
    with pytest.raises(CustodianRejected):
        bank.cancel_transaction(tx.transaction_id)

    pending = bank.initiate_transfer(out(reference="ref-2", amount=100))
    cancelled = bank.cancel_transaction(pending.transaction_id)
    assert cancelled.status == CANCELLED
    assert bank.cancel_transaction(pending.transaction_id).status == CANCELLED  # idempotent
    assert bank.get_balance(OMNIBUS, "USD").amount == 600  # the held 100 came back


def test_an_incoming_transfer_credits_the_omnibus_account_when_it_settles(mock_options, clock):
    bank = mock_options(settle_after_seconds=5)
    tx = bank.initiate_transfer(TransferRequest("EXT-ALICE-1", OMNIBUS, "EUR", 700, "in-1"))
    assert bank.get_balance(OMNIBUS, "EUR").amount == 0
    clock.advance(5)
    assert bank.get_balance(OMNIBUS, "EUR").amount == 700
    assert bank.get_transaction_status(tx.transaction_id).status == COMPLETED


def test_stuck_transfers_stay_pending_for_ever_and_the_bank_may_fail_them(mock_options, clock):
    bank = mock_options(stuck_rate=1.0)
    bank.fund(OMNIBUS, "USD", 1_000)
    tx = bank.initiate_transfer(out(amount=250))
    clock.advance(10 * 365 * 24 * 3600)
    assert bank.get_transaction_status(tx.transaction_id).status == PENDING
    bank.fail_transaction(tx.transaction_id, "receiving bank bounced it")
    failed = bank.get_transaction_status(tx.transaction_id)
    assert (failed.status, failed.failure_reason) == (FAILED, "receiving bank bounced it")
    assert bank.get_balance(OMNIBUS, "USD").amount == 1_000


def _outcome(bank: MockBank, account_id: str) -> str:
    try:
        bank.validate_account(account_id)
    except CustodianUnavailable:
        return "down"
    return "ok"


def test_injected_errors_are_drawn_per_call_so_processes_do_not_fail_together(db):
    # Two processes with the same seed, each calling about its own accounts. Drawn from one
    # generator per process, both would fail on their n-th call alike.
    first = MockBank(code="mock_bank", error_rate=0.5, seed=7)
    second = MockBank(code="mock_bank", error_rate=0.5, seed=7)
    seen_first = [_outcome(first, f"EXT-A-{i:03}") for i in range(40)]
    seen_second = [_outcome(second, f"EXT-B-{i:03}") for i in range(40)]
    assert seen_first != seen_second
    assert 5 <= seen_first.count("down") <= 35

    # The same attempt of the same call fails or not in every process: the attempts are
    # counted at the bank, so a fresh process after the same history draws the same.
    MockBankCall.objects.all().delete()
    replayed = MockBank(code="mock_bank", error_rate=0.5, seed=7)
    assert [_outcome(replayed, f"EXT-A-{i:03}") for i in range(40)] == seen_first
    MockBankCall.objects.all().delete()
    other_seed = MockBank(code="mock_bank", error_rate=0.5, seed=8)
    assert [_outcome(other_seed, f"EXT-A-{i:03}") for i in range(40)] != seen_first

    # A retry is the call's next attempt, drawn anew: another process retrying a call that
    # failed is not bound to fail again.
    failed = next(f"EXT-A-{i:03}" for i, o in enumerate(seen_first) if o == "down")
    retries = [_outcome(second, failed) for _ in range(10)]
    assert "ok" in retries
    calls = MockBankCall.objects.get(operation="validate_account", subject=failed)
    assert calls.calls == 11


def test_an_injected_timeout_of_a_transfer_happens_after_the_bank_made_it(db):
    bank = MockBank(code="mock_bank", timeout_rate=1.0)
    bank.fund(OMNIBUS, "USD", 1_000)
    with pytest.raises(CustodianTimeout):
        bank.initiate_transfer(out(amount=300))
    assert MockBankTransaction.objects.get(reference="ref-1").status == COMPLETED
    bank.timeout_rate = 0.0
    again = bank.initiate_transfer(out(amount=300))  # the retry finds it
    assert again.status == COMPLETED
    assert bank.get_balance(OMNIBUS, "USD").amount == 700


def test_latency_and_outages_of_single_operations(db):
    slept = []
    bank = MockBank(
        code="mock_bank", latency_ms=250, fail_operations=["get_balance"], sleep=slept.append
    )
    assert bank.validate_account("EXT-1-OK")
    with pytest.raises(CustodianUnavailable):
        bank.get_balance(OMNIBUS, "USD")
    assert slept == [0.25, 0.25]
