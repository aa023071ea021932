"""Reconciliation with the custodians: balances synced, discrepancies recorded (event and read
model), cleared, superseded, resolved by staff; the commands."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.core.replay import rebuild_projections
from apps.custodians.aggregates import DiscrepancyNotOpen, custodian_uuid
from apps.custodians.models import (
    CustodianBalance,
    CustodianDiscrepancy,
    CustodianEvent,
    CustodianReconciliation,
)
from apps.custodians.selectors import custodian_balances, custodian_discrepancy_list
from apps.custodians.services import (
    custodian_balances_sync,
    custodian_discrepancy_resolve,
    custodian_reconcile,
    mock_bank_openings_seed,
)
from apps.payments.services import deposit_create
from tests.custodians.conftest import OMNIBUS

pytestmark = pytest.mark.django_db


def reconcile():
    (check,) = custodian_reconcile()
    return check.reconciliation


def events():
    return list(
        CustodianEvent.objects.filter(aggregate_uuid=custodian_uuid("mock_bank"))
        .order_by("aggregate_version")
        .values_list("event_type", flat=True)
    )


def test_sync_records_what_the_custodian_reports(funded_account, mock_bank):
    mock_bank.fund(OMNIBUS, "EUR", 42)
    (check,) = custodian_balances_sync()
    assert check.ok and check.balances["USD"] == 100_000 and check.balances["EUR"] == 42
    assert custodian_balances("mock_bank") == {
        "BTC": 0,
        "CHF": 0,
        "ETH": 0,
        "EUR": 42,
        "GBP": 0,
        "JPY": 0,
        "USD": 100_000,
        "XAU": 0,
    }
    assert events() == ["custodians.BalancesSynced"]


def test_books_that_agree_reconcile_clean(funded_account):
    reconciliation = reconcile()
    assert reconciliation.clean
    usd = next(r for r in reconciliation.results if r["asset_code"] == "USD")
    assert usd == {
        "asset_code": "USD",
        "ledger_balance": -100_000,
        "expected": 100_000,
        "custodian_balance": 100_000,
        "difference": 0,
    }
    assert not CustodianDiscrepancy.objects.exists()


def test_a_difference_is_recorded_as_an_event_and_a_read_model_row(funded_account, mock_bank):
    mock_bank.fund(OMNIBUS, "USD", 250)  # money arrived that the ledger knows nothing of
    reconciliation = reconcile()
    assert not reconciliation.clean
    (discrepancy,) = custodian_discrepancy_list(status="open")
    assert (
        discrepancy.asset_code,
        discrepancy.expected,
        discrepancy.custodian_balance,
        discrepancy.difference,
    ) == ("USD", 100_000, 100_250, 250)
    assert discrepancy.reconciliation_id == reconciliation.uuid
    assert events()[-2:] == ["custodians.Reconciled", "custodians.DiscrepancyFound"]

    # the same figures tomorrow: still the same open discrepancy, not a new one
    reconcile()
    assert CustodianDiscrepancy.objects.count() == 1

    # other figures: a new discrepancy supersedes the old one
    deposit_create(account_uuid=funded_account.uuid, amount=100, asset_code="USD")
    reconcile()
    old, new = (
        CustodianDiscrepancy.objects.get(uuid=discrepancy.uuid),
        CustodianDiscrepancy.objects.get(status="open"),
    )
    assert old.status == "superseded" and new.difference == 150

    # the books agree again: cleared
    deposit_create(account_uuid=funded_account.uuid, amount=150, asset_code="USD")
    assert reconcile().clean
    assert CustodianDiscrepancy.objects.get(uuid=new.uuid).status == "cleared"
    assert not custodian_discrepancy_list(status="open").exists()


def test_staff_resolve_a_discrepancy_and_the_same_figures_stay_explained(funded_account, mock_bank):
    mock_bank.fund(OMNIBUS, "USD", -30)  # the bank charged a fee
    reconcile()
    discrepancy = CustodianDiscrepancy.objects.get()
    custodian_discrepancy_resolve(discrepancy_uuid=discrepancy.uuid, note="monthly account fee")
    discrepancy.refresh_from_db()
    assert (discrepancy.status, discrepancy.note) == ("resolved", "monthly account fee")
    assert discrepancy.resolved_by["type"] == "system"
    with pytest.raises(DiscrepancyNotOpen):
        custodian_discrepancy_resolve(discrepancy_uuid=discrepancy.uuid, note="again")
    reconcile()
    assert CustodianDiscrepancy.objects.count() == 1  # explained: not opened again
    mock_bank.fund(OMNIBUS, "USD", -5)
    reconcile()
    assert CustodianDiscrepancy.objects.filter(status="open").get().difference == -35


def test_a_custodian_that_cannot_be_reached_is_reported_not_recorded(funded_account, mock_options):
    mock_options(fail_operations=["get_balance"])
    (check,) = custodian_reconcile()
    assert not check.ok and check.error["error"] == "CUSTODIAN_UNAVAILABLE"
    (check,) = custodian_balances_sync()
    assert not check.ok
    assert not CustodianReconciliation.objects.exists()
    assert not CustodianBalance.objects.exists()


def test_the_read_models_equal_a_replay(funded_account, mock_bank):
    mock_bank.fund(OMNIBUS, "USD", 10)
    reconcile()
    custodian_discrepancy_resolve(
        discrepancy_uuid=CustodianDiscrepancy.objects.get().uuid, note="rounding at the bank"
    )
    mock_bank.fund(OMNIBUS, "USD", -10)
    reconcile()
    custodian_balances_sync()

    def rows():
        return (
            sorted(CustodianDiscrepancy.objects.values_list(), key=str),
            sorted(CustodianReconciliation.objects.values_list(), key=str),
            sorted((b[1:] for b in CustodianBalance.objects.values_list()), key=str),
        )

    before = rows()
    rebuild_projections("custodians")
    assert rows() == before


def test_the_commands_print_and_exit_non_zero_on_a_discrepancy(funded_account, mock_bank, capsys):
    call_command("reconcile_custodians")
    assert "mock_bank reconciles." in capsys.readouterr().out
    call_command("sync_custodian_balances")
    assert "USD 100000" in capsys.readouterr().out
    mock_bank.fund(OMNIBUS, "USD", 1)
    with pytest.raises(SystemExit) as exited:
        call_command("reconcile_custodians", custodian="mock_bank")
    assert exited.value.code == 1
    assert "DISCREPANCY mock_bank USD" in capsys.readouterr().err


def test_the_demo_opens_the_mock_bank_with_what_the_ledger_says_it_holds(bank):
    from apps.accounts.services import account_open

    account = account_open(name="Demo", owner_uuid=None)
    deposit_create(account_uuid=account.uuid, amount=5_000, asset_code="USD")
    deposit_create(account_uuid=account.uuid, amount=700, asset_code="EUR")
    assert mock_bank_openings_seed() == ["mock_bank"]
    assert mock_bank_openings_seed() == []  # once only
    assert reconcile().clean
