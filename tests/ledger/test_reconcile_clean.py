"""`reconcile` on an honest ledger: after every kind of operation the services offer, with
snapshots taken often and every check read in batches of two, it finds nothing; and the
command includes the custodians' comparison, an unreachable custodian reported as such."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.accounts.reconciliation import ledger_reconcile
from apps.baskets.models import BasketOperation
from apps.baskets.services import basket_compose, basket_decompose
from apps.core.models import Snapshot
from apps.custodians.registry import connector_for
from apps.payments.models import Transfer
from apps.payments.services import (
    TransferRequest,
    conversion_create,
    transfer_bulk_create,
    transfer_create,
    transfer_reverse,
    withdrawal_create,
)
from tests.baskets import conftest as baskets

pytestmark = pytest.mark.django_db

OMNIBUS = "FINAEGIS-OMNIBUS"


components_for = baskets.components_for  # {asset: minor units} of n GCU at current weights


@pytest.fixture
def busy_ledger(open_account, components_for, settings):
    """A few accounts after every kind of entry, snapshots every three events."""
    settings.EVENT_STORE_SNAPSHOT_EVERY = 3
    a = open_account("A", funded={"USD": 500_000, "EUR": 80_000})
    b = open_account("B", funded={"USD": 1_000})
    c = open_account("C", funded=components_for(10_000))
    for amount in (100, 250, 999):
        transfer_create(from_account=a.uuid, to_account=b.uuid, amount=amount, asset_code="USD")
    transfer_create(
        from_account=a.uuid, to_account=b.uuid, amount=5_000, asset_code="USD", to_asset_code="EUR"
    )
    conversion_create(account_uuid=b.uuid, from_asset="EUR", to_asset="GBP", amount=1_000)
    withdrawal_create(account_uuid=a.uuid, amount=7_000, asset_code="EUR")
    returned = transfer_create(from_account=a.uuid, to_account=c.uuid, amount=42, asset_code="USD")
    transfer_reverse(transfer_uuid=returned.uuid, reason="wrong account")
    crossed = transfer_create(
        from_account=b.uuid, to_account=a.uuid, amount=300, asset_code="EUR", to_asset_code="USD"
    )
    transfer_reverse(transfer_uuid=crossed.uuid, reason="duplicate")
    requests = [TransferRequest(a.uuid, c.uuid, 10 + i, "USD") for i in range(4)]
    transfer_bulk_create(transfers=requests, atomic=True)
    transfer_bulk_create(transfers=requests, atomic=False)
    basket_compose(account_uuid=c.uuid, basket_code="GCU", amount=10_000)
    basket_decompose(account_uuid=c.uuid, basket_code="GCU", amount=4_000)
    return a, b, c


def test_a_busy_ledger_reconciles_clean_read_in_batches_of_two(busy_ledger):
    report = ledger_reconcile(batch_size=2)
    assert report.clean, report.as_dict()
    reversals = Transfer.objects.filter(reversal_uuid__isnull=False).count()
    described = Transfer.objects.count() + reversals + BasketOperation.objects.count()
    assert reversals == 2 and report.entries_checked == described
    assert report.snapshots_checked == Snapshot.objects.count() > 10
    # the same ledger read in one batch: the same proof
    whole = ledger_reconcile(batch_size=10_000)
    assert whole.clean and whole.as_dict() == report.as_dict()


def test_the_command_includes_the_custodians_comparison(busy_ledger, components_for, capsys):
    bank = connector_for("mock_bank").inner
    deposited = components_for(10_000)  # C's deposits, with A's and B's, less A's withdrawal
    deposited["USD"] = deposited.get("USD", 0) + 500_000 + 1_000
    deposited["EUR"] = deposited.get("EUR", 0) + 80_000 - 7_000
    for asset_code, amount in deposited.items():
        bank.fund(OMNIBUS, asset_code, amount)
    call_command("reconcile")
    out = capsys.readouterr().out
    assert "custodian mock_bank: reconciles" in out and "Ledger reconciles" in out

    bank.fund(OMNIBUS, "USD", -90)  # the bank holds less than the ledger says it does
    with pytest.raises(SystemExit):
        call_command("reconcile", "--skip-replay")
    captured = capsys.readouterr()
    assert "custodian mock_bank: differs" in captured.out
    usd = deposited["USD"]
    assert f"DISCREPANCY custodian: mock_bank USD: expected {usd}, found {usd - 90}" in captured.err
    assert len(captured.err.strip().splitlines()) == 2  # the finding, then the count


def test_an_unreachable_custodian_is_reported_as_such(open_account, settings, capsys):
    open_account(funded={"USD": 100})
    settings.CUSTODIAN_RETRY = {"attempts": 1, "base_delay": 0.0, "max_delay": 0.0}
    connectors = {code: dict(config) for code, config in settings.CUSTODIAN_CONNECTORS.items()}
    connectors["mock_bank"]["options"] = {"fail_operations": ["get_balance"]}
    settings.CUSTODIAN_CONNECTORS = connectors
    with pytest.raises(SystemExit):
        call_command("reconcile", "--skip-replay")
    captured = capsys.readouterr()
    assert "custodian mock_bank: unreachable" in captured.out
    assert "UNREACHABLE custodian mock_bank: Mock Bank: get_balance is unavailable" in captured.err
    assert "DISCREPANCY" not in captured.err
    report = ledger_reconcile(custodians=True, replay=False)
    assert [(d.check, d.subject) for d in report.discrepancies] == [
        ("custodian_unreachable", "mock_bank")
    ]


def test_skipping_the_custodians_asks_none(open_account, capsys):
    open_account(funded={"USD": 100})  # the bank was never told: it would differ
    call_command("reconcile", "--skip-custodians")
    out = capsys.readouterr().out
    assert "Ledger reconciles" in out and "custodian" not in out
