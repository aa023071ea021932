"""History from the event store, turnover, system accounts, reconcile command."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.accounts.models import Account
from apps.accounts.selectors import account_history, account_turnover
from apps.accounts.services import system_account_codes, system_account_uuid
from apps.core.errors import InvalidInput
from apps.core.seeding import seed_reference_data
from apps.custodians.registry import connector_for
from apps.payments.services import deposit_create, transfer_create, withdrawal_create

pytestmark = pytest.mark.django_db


def test_system_accounts_exist_once_from_reference_data(bank):
    seed_reference_data()
    codes = set(Account.objects.filter(kind="system").values_list("system_code", flat=True))
    assert codes == set(system_account_codes()) == {"settlement:mock_bank", "fees", "fx_position"}
    assert all(
        Account.objects.get(system_code=code).uuid == system_account_uuid(code) for code in codes
    )


def test_history_rows_carry_balance_after_newest_first(open_account):
    a, b = open_account("A"), open_account("B")
    deposit_create(account_uuid=a.uuid, amount=1000, asset_code="USD", reference="salary")
    transfer_create(from_account=a.uuid, to_account=b.uuid, amount=300, asset_code="USD")
    withdrawal_create(account_uuid=a.uuid, amount=200, asset_code="USD")
    deposit_create(account_uuid=a.uuid, amount=7, asset_code="EUR")
    rows = account_history(a.uuid)
    assert [(r.type, r.asset_code, r.amount, r.balance_after) for r in rows] == [
        ("deposit", "EUR", 7, 7),
        ("withdrawal", "USD", -200, 500),
        ("transfer_out", "USD", -300, 700),
        ("deposit", "USD", 1000, 1000),
    ]
    assert rows[2].counterparty_account == b.uuid
    assert rows[3].reference == "salary"
    assert all(len(r.hash) == 128 for r in rows)
    assert [r.type for r in account_history(b.uuid)] == ["transfer_in"]


def test_history_filters_and_keyset_pages(open_account):
    a = open_account()
    for amount in range(1, 8):
        deposit_create(account_uuid=a.uuid, amount=amount, asset_code="USD")
    deposit_create(account_uuid=a.uuid, amount=9, asset_code="GBP")
    withdrawal_create(account_uuid=a.uuid, amount=1, asset_code="USD")

    assert [r.amount for r in account_history(a.uuid, asset_code="GBP")] == [9]
    assert [r.amount for r in account_history(a.uuid, types=["withdrawal"])] == [-1]
    first = account_history(a.uuid, asset_code="USD", limit=3)
    second = account_history(a.uuid, asset_code="USD", limit=3, before_version=first[-1].version)
    assert [r.amount for r in first + second] == [-1, 7, 6, 5, 4, 3]
    later = timezone.now() + dt.timedelta(minutes=1)
    assert account_history(a.uuid, created_after=later) == []
    assert len(account_history(a.uuid, created_before=later)) == 9
    with pytest.raises(InvalidInput):
        account_history(a.uuid, types=["bogus"])


def test_turnover_daily_and_monthly(open_account):
    a = open_account()
    deposit_create(account_uuid=a.uuid, amount=100, asset_code="USD")
    deposit_create(account_uuid=a.uuid, amount=50, asset_code="USD")
    withdrawal_create(account_uuid=a.uuid, amount=30, asset_code="USD")
    today = timezone.now().date()
    assert account_turnover(a.uuid, period="daily") == [
        {"period_start": today, "asset_code": "USD", "credit": 150, "debit": 30, "count": 3}
    ]
    monthly = account_turnover(a.uuid, period="monthly")
    assert monthly == [
        {
            "period_start": today.replace(day=1),
            "asset_code": "USD",
            "credit": 150,
            "debit": 30,
            "count": 3,
        }
    ]
    with pytest.raises(InvalidInput):
        account_turnover(a.uuid, period="weekly")


def test_turnover_adds_amounts_beyond_32_bits(open_account):
    # An increment sent to PostgreSQL as a 32-bit parameter wrapped around above 2**31 - 1.
    a = open_account()
    for _ in range(3):
        deposit_create(account_uuid=a.uuid, amount=10**12, asset_code="USD")
    withdrawal_create(account_uuid=a.uuid, amount=2**31 + 5, asset_code="USD")
    (day,) = account_turnover(a.uuid, period="daily")
    assert (day["credit"], day["debit"], day["count"]) == (3 * 10**12, 2**31 + 5, 4)


def test_reconcile_command_is_clean_and_prints_json(open_account, capsys):
    a, b = open_account("A", funded={"USD": 500}), open_account("B")
    connector_for("mock_bank").inner.fund("FINAEGIS-OMNIBUS", "USD", 500)  # the deposit's cash
    transfer_create(from_account=a.uuid, to_account=b.uuid, amount=100, asset_code="USD")
    call_command("reconcile")
    out = capsys.readouterr().out
    assert "Ledger reconciles" in out and "custodian mock_bank: reconciles" in out
    call_command("reconcile", "--json")
    report = json.loads(capsys.readouterr().out)
    assert report["clean"] is True
    assert report["totals_by_asset"]["USD"] == 0


def test_reconcile_names_a_drifted_read_model(open_account, capsys):
    from apps.accounts.models import AccountBalance

    a = open_account(funded={"USD": 500})
    AccountBalance.objects.filter(account_id=a.uuid).update(balance=499)
    with pytest.raises(SystemExit):
        call_command("reconcile", "--json")
    report = json.loads(capsys.readouterr().out)
    checks = {d["check"] for d in report["discrepancies"]}
    assert {"conservation", "balance", "replay"} <= checks
