"""Every ledger rule with its error code (API.md), through the services."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from apps.accounts.models import Account, AccountBalance, Turnover
from apps.accounts.reconciliation import ledger_reconcile
from apps.accounts.selectors import account_get, account_history, balances_by_asset, system_account
from apps.accounts.services import (
    FX_POSITION,
    account_close,
    account_freeze,
    account_unfreeze,
    settlement_code,
)
from apps.assets.services import asset_deactivate
from apps.core import errors
from apps.core.replay import rebuild_projections
from apps.payments.models import Transfer
from apps.payments.selectors import transfer_get
from apps.payments.services import (
    TransferRequest,
    conversion_create,
    deposit_create,
    transfer_bulk_create,
    transfer_create,
    transfer_reverse,
    withdrawal_create,
)

pytestmark = pytest.mark.django_db


def _code(exc_info) -> str:
    return exc_info.value.code


def test_deposit_credits_the_account_against_the_settlement_account(open_account):
    account = open_account()
    transfer = deposit_create(account_uuid=account.uuid, amount=10050, asset_code="USD")
    assert transfer.kind == "deposit" and transfer.status == "completed"
    assert balances_by_asset(account.uuid) == {"USD": 10050}
    settlement = system_account(settlement_code("mock_bank"))
    assert balances_by_asset(settlement.uuid) == {"USD": -10050}
    assert ledger_reconcile().clean


def test_withdrawal_beyond_the_balance_is_insufficient_funds_with_details(open_account):
    account = open_account(funded={"USD": 500})
    with pytest.raises(errors.InsufficientFunds) as exc_info:
        withdrawal_create(account_uuid=account.uuid, amount=501, asset_code="USD")
    assert exc_info.value.details["current_balance"] == 500
    assert exc_info.value.details["requested"] == 501
    assert balances_by_asset(account.uuid) == {"USD": 500}
    withdrawal_create(account_uuid=account.uuid, amount=500, asset_code="USD")
    assert balances_by_asset(account.uuid) == {"USD": 0}


@pytest.mark.parametrize("amount", [0, -1, 1.5, "10", True])
def test_amount_must_be_a_positive_integer(open_account, amount):
    account = open_account()
    with pytest.raises(errors.InvalidInput) as exc_info:
        deposit_create(account_uuid=account.uuid, amount=amount, asset_code="USD")
    assert _code(exc_info) == "VALIDATION_ERROR"
    assert "amount" in exc_info.value.details


def test_transfer_moves_money_in_one_asset(open_account):
    a, b = open_account("A", funded={"EUR": 1000}), open_account("B")
    transfer = transfer_create(
        from_account=a.uuid, to_account=b.uuid, amount=250, asset_code="EUR", reference="rent"
    )
    assert (transfer.amount, transfer.to_amount, transfer.rate) == (250, 250, None)
    assert balances_by_asset(a.uuid) == {"EUR": 750}
    assert balances_by_asset(b.uuid) == {"EUR": 250}
    assert transfer_get(transfer.uuid).reference == "rent"


def test_cross_asset_transfer_uses_the_fx_position_account_and_stores_the_rate(open_account):
    a, b = open_account("A", funded={"USD": 10000}), open_account("B")
    transfer = transfer_create(
        from_account=a.uuid, to_account=b.uuid, amount=10000, asset_code="USD", to_asset_code="EUR"
    )
    assert transfer.rate is not None and transfer.rate > 0
    assert transfer.to_amount == int(
        (Decimal(10000) * transfer.rate).quantize(Decimal(1), rounding="ROUND_HALF_EVEN")
    )
    fx = system_account(FX_POSITION)
    assert balances_by_asset(fx.uuid) == {"USD": 10000, "EUR": -transfer.to_amount}
    assert balances_by_asset(b.uuid) == {"EUR": transfer.to_amount}
    rows = account_history(b.uuid)
    assert rows[0].rate == transfer.rate
    assert ledger_reconcile().clean


def test_transfer_to_the_same_account_is_refused(open_account):
    a = open_account(funded={"USD": 100})
    with pytest.raises(errors.SameAccount):
        transfer_create(from_account=a.uuid, to_account=a.uuid, amount=1, asset_code="USD")


def test_frozen_source_and_destination_have_their_own_codes(open_account):
    a, b = open_account("A", funded={"USD": 100}), open_account("B", funded={"USD": 100})
    account_freeze(account_uuid=a.uuid, reason="KYC review")
    with pytest.raises(errors.SourceAccountFrozen):
        transfer_create(from_account=a.uuid, to_account=b.uuid, amount=1, asset_code="USD")
    with pytest.raises(errors.DestinationAccountFrozen):
        transfer_create(from_account=b.uuid, to_account=a.uuid, amount=1, asset_code="USD")
    with pytest.raises(errors.AccountFrozen):
        deposit_create(account_uuid=a.uuid, amount=1, asset_code="USD")
    with pytest.raises(errors.AccountFrozen):
        withdrawal_create(account_uuid=a.uuid, amount=1, asset_code="USD")
    assert balances_by_asset(a.uuid) == {"USD": 100}


def test_freeze_twice_and_unfreeze_unfrozen_are_errors(open_account):
    a = open_account()
    account_freeze(account_uuid=a.uuid, reason="fraud alert")
    assert account_get(a.uuid).frozen
    with pytest.raises(errors.AccountAlreadyFrozen):
        account_freeze(account_uuid=a.uuid, reason="again")
    account_unfreeze(account_uuid=a.uuid, reason="cleared")
    assert not account_get(a.uuid).frozen
    with pytest.raises(errors.AccountNotFrozen):
        account_unfreeze(account_uuid=a.uuid)


def test_closing_needs_zero_balances_and_no_freeze(open_account):
    a = open_account(funded={"USD": 5})
    with pytest.raises(errors.AccountHasBalance) as exc_info:
        account_close(account_uuid=a.uuid)
    assert exc_info.value.details["balances"] == {"USD": 5}
    withdrawal_create(account_uuid=a.uuid, amount=5, asset_code="USD")
    account_freeze(account_uuid=a.uuid, reason="hold")
    with pytest.raises(errors.AccountFrozen):
        account_close(account_uuid=a.uuid)
    account_unfreeze(account_uuid=a.uuid)
    assert account_close(account_uuid=a.uuid).closed


def test_a_closed_account_neither_sends_nor_receives(open_account):
    a, b = open_account("A"), open_account("B", funded={"USD": 10})
    account_close(account_uuid=a.uuid)
    with pytest.raises(errors.AccountClosed):
        transfer_create(from_account=b.uuid, to_account=a.uuid, amount=1, asset_code="USD")
    with pytest.raises(errors.AccountClosed):
        deposit_create(account_uuid=a.uuid, amount=1, asset_code="USD")
    with pytest.raises(errors.AccountClosed):
        account_freeze(account_uuid=a.uuid, reason="x")


def test_unknown_and_inactive_assets(open_account):
    a = open_account()
    with pytest.raises(errors.AssetNotFound):
        deposit_create(account_uuid=a.uuid, amount=1, asset_code="XXX")
    asset_deactivate(code="ETH", reason="delisted")
    with pytest.raises(errors.AssetInactive):
        deposit_create(account_uuid=a.uuid, amount=1, asset_code="ETH")


def test_unknown_account_is_not_found(bank):
    with pytest.raises(errors.NotFound):
        deposit_create(account_uuid=uuid.uuid4(), amount=1, asset_code="USD")


def test_conversion_inside_one_account(open_account):
    a = open_account(funded={"USD": 100000})
    conversion = conversion_create(
        account_uuid=a.uuid, from_asset="USD", to_asset="JPY", amount=100
    )
    balances = balances_by_asset(a.uuid)
    assert balances["USD"] == 99900
    assert balances["JPY"] == conversion.to_amount > 0
    with pytest.raises(errors.InvalidInput):
        conversion_create(account_uuid=a.uuid, from_asset="USD", to_asset="USD", amount=1)
    assert ledger_reconcile().clean


def test_reversal_is_a_compensating_entry_and_happens_once(open_account):
    a, b = open_account("A", funded={"USD": 1000}), open_account("B")
    transfer = transfer_create(from_account=a.uuid, to_account=b.uuid, amount=300, asset_code="USD")
    reversed_transfer = transfer_reverse(transfer_uuid=transfer.uuid, reason="customer dispute")
    assert reversed_transfer.status == "reversed"
    assert balances_by_asset(a.uuid) == {"USD": 1000}
    assert balances_by_asset(b.uuid) == {"USD": 0}
    assert [row.type for row in account_history(a.uuid)][:2] == ["reversal", "transfer_out"]
    with pytest.raises(errors.TransferAlreadyReversed):
        transfer_reverse(transfer_uuid=transfer.uuid, reason="again")
    assert ledger_reconcile().clean


def test_reversal_of_a_cross_asset_transfer_restores_every_balance(open_account):
    a, b = open_account("A", funded={"GBP": 5000}), open_account("B")
    transfer = transfer_create(
        from_account=a.uuid, to_account=b.uuid, amount=5000, asset_code="GBP", to_asset_code="CHF"
    )
    transfer_reverse(transfer_uuid=transfer.uuid, reason="error")
    assert balances_by_asset(a.uuid) == {"GBP": 5000}
    assert balances_by_asset(b.uuid) == {"CHF": 0}
    fx = balances_by_asset(system_account(FX_POSITION).uuid)
    assert fx == {"GBP": 0, "CHF": 0}


def test_reversal_is_refused_when_the_receiver_spent_the_money_unless_forced(open_account):
    a, b = open_account("A", funded={"USD": 1000}), open_account("B")
    transfer = transfer_create(from_account=a.uuid, to_account=b.uuid, amount=400, asset_code="USD")
    withdrawal_create(account_uuid=b.uuid, amount=300, asset_code="USD")
    with pytest.raises(errors.TransferNotReversible) as exc_info:
        transfer_reverse(transfer_uuid=transfer.uuid, reason="dispute")
    assert exc_info.value.details["current_balance"] == 100
    assert transfer_get(transfer.uuid).status == "completed"

    transfer_reverse(transfer_uuid=transfer.uuid, reason="fraud", force=True)
    assert balances_by_asset(b.uuid) == {"USD": -300}
    assert account_get(b.uuid).flagged
    assert transfer_get(transfer.uuid).reversal_forced
    assert ledger_reconcile().clean


def test_atomic_bulk_is_all_or_nothing(open_account):
    a, b, c = open_account("A", funded={"USD": 100}), open_account("B"), open_account("C")
    batch = [
        TransferRequest(a.uuid, b.uuid, 60, "USD"),
        TransferRequest(a.uuid, c.uuid, 60, "USD"),  # only 40 left
    ]
    with pytest.raises(errors.InsufficientFunds) as exc_info:
        transfer_bulk_create(transfers=batch, atomic=True)
    assert exc_info.value.details["index"] == 1
    assert balances_by_asset(a.uuid) == {"USD": 100}
    assert balances_by_asset(b.uuid) == {}


def test_an_atomic_bulk_saved_together_books_every_item_in_order(open_account):
    a = open_account("A", funded={"USD": 1_000})
    b, c = open_account("B"), open_account("C")
    batch = [
        *(TransferRequest(a.uuid, b.uuid, 10, "USD", reference=f"ab-{n}") for n in range(40)),
        *(TransferRequest(b.uuid, c.uuid, 5, "USD") for _ in range(30)),
        TransferRequest(c.uuid, a.uuid, 150, "USD", to_asset_code="EUR"),
    ]
    results = transfer_bulk_create(transfers=batch, atomic=True)
    assert [r.index for r in results] == list(range(len(batch)))
    assert [r.transfer.reference for r in results[:3]] == ["ab-0", "ab-1", "ab-2"]
    assert results[-1].transfer.to_asset == "EUR"
    assert balances_by_asset(b.uuid) == {"USD": 400 - 150}
    assert balances_by_asset(c.uuid) == {"USD": 0}
    assert balances_by_asset(a.uuid)["USD"] == 600
    assert balances_by_asset(a.uuid)["EUR"] == results[-1].transfer.to_amount
    b_history = account_history(b.uuid, limit=100)
    assert len(b_history) == 70
    # Newest first; each posting's balance_after follows from the one before it.
    running = [entry.balance_after for entry in reversed(b_history)]
    assert running[0] == 10 and running[39] == 400 and running[-1] == 250
    fields = ("from_account_id", "to_account_id", "amount", "to_amount", "rate", "created_at")
    for returned in (r.transfer for r in results):
        stored = transfer_get(returned.uuid)
        assert [getattr(returned, f) for f in fields] == [getattr(stored, f) for f in fields]
    assert ledger_reconcile().clean  # replays the events and compares every read model


def _ledger_read_models() -> dict[str, list]:
    return {
        "accounts": sorted(Account.objects.values_list("uuid", "version", "frozen", "flagged")),
        "balances": sorted(AccountBalance.objects.values_list("account", "asset_code", "balance")),
        "turnover": sorted(Turnover.objects.values_list("account", "asset_code", "day", "credit")),
        "transfers": sorted(Transfer.objects.values_list("uuid", "status", "amount", "rate")),
    }


def test_rebuild_in_small_batches_gives_the_read_models_the_commands_wrote(open_account):
    """The rebuild reads each next batch before the last one's writes have finished (they go
    in a pipeline on PostgreSQL, where only batch handlers run); in batches of two, most
    batches go that way, and the read models come out exactly as the commands wrote them."""
    a = open_account("A", funded={"USD": 1_000, "EUR": 500})
    b = open_account("B")
    for n in range(7):
        transfer_create(from_account=a.uuid, to_account=b.uuid, amount=n + 1, asset_code="USD")
    transfer_create(
        from_account=a.uuid, to_account=b.uuid, amount=90, asset_code="EUR", to_asset_code="USD"
    )
    account_freeze(account_uuid=b.uuid, reason="check")
    written = _ledger_read_models()
    Turnover.objects.all().delete()
    assert rebuild_projections("accounts", batch_size=2) > 0
    assert rebuild_projections("payments", batch_size=2) > 0
    assert _ledger_read_models() == written


def test_item_by_item_bulk_reports_each_result(open_account):
    a, b, c = open_account("A", funded={"USD": 100}), open_account("B"), open_account("C")
    results = transfer_bulk_create(
        transfers=[
            TransferRequest(a.uuid, b.uuid, 60, "USD"),
            TransferRequest(a.uuid, c.uuid, 60, "USD"),
            TransferRequest(a.uuid, c.uuid, 40, "USD"),
        ],
        atomic=False,
    )
    assert [r.status for r in results] == ["completed", "failed", "completed"]
    assert results[1].error["error"] == "INSUFFICIENT_FUNDS"
    assert balances_by_asset(a.uuid) == {"USD": 0}
    assert balances_by_asset(c.uuid) == {"USD": 40}


def test_idempotency_key_moves_money_once_and_replays_the_same_transfer(open_account):
    a, b = open_account("A", funded={"USD": 100}), open_account("B")
    kwargs = dict(from_account=a.uuid, to_account=b.uuid, amount=30, asset_code="USD")
    first = transfer_create(**kwargs, idempotency_key="k-1")
    again = transfer_create(**kwargs, idempotency_key="k-1")
    assert again.uuid == first.uuid
    assert balances_by_asset(a.uuid) == {"USD": 70}
    with pytest.raises(errors.IdempotencyKeyReused):
        transfer_create(**{**kwargs, "amount": 31}, idempotency_key="k-1")


def test_idempotency_key_replays_a_refusal_too(open_account):
    a, b = open_account("A", funded={"USD": 10}), open_account("B")
    kwargs = dict(from_account=a.uuid, to_account=b.uuid, amount=30, asset_code="USD")
    for _ in range(2):
        with pytest.raises(errors.DomainError) as exc_info:
            transfer_create(**kwargs, idempotency_key="k-2")
        assert exc_info.value.code == "INSUFFICIENT_FUNDS"
    deposit_create(account_uuid=a.uuid, amount=100, asset_code="USD")
    with pytest.raises(errors.DomainError):
        transfer_create(**kwargs, idempotency_key="k-2")  # the first answer stands
    assert balances_by_asset(b.uuid) == {}
