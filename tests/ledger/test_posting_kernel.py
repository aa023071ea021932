"""The posting kernel: balanced entries only, bounded amounts, one lock order, staff paths."""

import uuid

import pytest
from django.test import override_settings

from apps.accounts.aggregates import Account
from apps.accounts.models import Turnover
from apps.accounts.posting import JournalEntry, Leg, Mode, entry_post, transfer_legs
from apps.accounts.reconciliation import ledger_reconcile
from apps.accounts.selectors import account_turnover, balances_by_asset
from apps.accounts.services import account_freeze, settlement_code, system_account_uuid
from apps.core import errors, store
from apps.core.context import command_context, user_actor
from apps.payments.models import MovementRequest
from apps.payments.services import (
    conversion_create,
    deposit_create,
    manual_movement_submit,
    movement_request_approve,
    transfer_create,
    withdrawal_create,
)
from tests.factories import UserFactory

SETTLEMENT = system_account_uuid(settlement_code("mock_bank"))


@pytest.fixture
def staff_pair(bank):
    """Two staff members, each as a context manager that makes them the actor."""
    people = [UserFactory(is_staff=True) for _ in range(2)]
    return [lambda person=person: command_context(actor=user_actor(person)) for person in people]


@store.command
def _post(entry):
    return entry_post(entry)


def test_an_entry_that_does_not_balance_posts_nothing(open_account):
    a, b = open_account("A", funded={"USD": 500}), open_account("B")
    legs = (Leg(a.uuid, "USD", -100), Leg(b.uuid, "USD", 99))
    with pytest.raises(errors.UnbalancedEntry) as exc:
        _post(JournalEntry(uuid.uuid4(), "transfer", legs))
    assert exc.value.details["residue"] == {"USD": -1}
    assert balances_by_asset(a.uuid) == {"USD": 500}
    assert balances_by_asset(b.uuid) == {}


def test_balancing_one_asset_with_another_is_not_balanced(open_account):
    a, b = open_account("A", funded={"USD": 500}), open_account("B")
    legs = (Leg(a.uuid, "USD", -100), Leg(b.uuid, "EUR", 100))
    with pytest.raises(errors.UnbalancedEntry):
        _post(JournalEntry(uuid.uuid4(), "transfer", legs))


def test_a_balanced_entry_of_many_legs_posts_every_leg_under_one_entry(open_account):
    a, b, c = open_account("A", funded={"USD": 500}), open_account("B"), open_account("C")
    entry_uuid = uuid.uuid4()
    legs = (Leg(a.uuid, "USD", -300), Leg(b.uuid, "USD", 200), Leg(c.uuid, "USD", 100))
    _post(JournalEntry(entry_uuid, "transfer", legs, "split"))
    assert [balances_by_asset(x.uuid) for x in (a, b, c)] == [
        {"USD": 200},
        {"USD": 200},
        {"USD": 100},
    ]
    (account,) = store.load(Account, b.uuid, lock=False)
    assert account.balance("USD") == 200


def test_a_frozen_account_refuses_before_any_balance_is_checked(open_account):
    a, b = open_account("A", funded={"USD": 5}), open_account("B")
    account_freeze(account_uuid=b.uuid, reason="review")
    with pytest.raises(errors.AccountFrozen):
        _post(JournalEntry(uuid.uuid4(), "transfer", transfer_legs(a.uuid, b.uuid, "USD", 50)))


def test_returning_money_lands_on_a_frozen_account_but_never_overdraws(open_account):
    a, b = open_account("A", funded={"USD": 100}), open_account("B")
    account_freeze(account_uuid=a.uuid, reason="review")
    _post(
        JournalEntry(
            uuid.uuid4(),
            "reversal",
            transfer_legs(SETTLEMENT, a.uuid, "USD", 40),
            mode=Mode.RETURNING,
        )
    )
    assert balances_by_asset(a.uuid) == {"USD": 140}
    with pytest.raises(errors.AccountFrozen):  # a frozen account still pays nothing out
        _post(
            JournalEntry(
                uuid.uuid4(),
                "reversal",
                transfer_legs(a.uuid, b.uuid, "USD", 10),
                mode=Mode.RETURNING,
            )
        )


@pytest.mark.parametrize("amount", [10**14 + 1, 10**18])
def test_an_amount_over_the_assets_maximum_is_refused(open_account, amount):
    a = open_account("A")
    with pytest.raises(errors.AmountTooLarge):
        deposit_create(account_uuid=a.uuid, amount=amount, asset_code="USD")
    assert balances_by_asset(a.uuid) == {}


@override_settings(ASSET_AMOUNT_LIMITS={"default": {"per_operation": 1000, "per_balance": 2500}})
def test_no_balance_passes_the_maximum_either_way_system_accounts_included(open_account):
    a, b = open_account("A"), open_account("B")
    deposit_create(account_uuid=a.uuid, amount=1000, asset_code="USD")
    deposit_create(account_uuid=a.uuid, amount=1000, asset_code="USD")
    with pytest.raises(errors.AmountTooLarge):  # the customer's balance
        deposit_create(account_uuid=a.uuid, amount=1000, asset_code="USD")
    with pytest.raises(errors.AmountTooLarge):  # the settlement account's, below zero
        deposit_create(account_uuid=b.uuid, amount=1000, asset_code="USD")
    assert balances_by_asset(SETTLEMENT)["USD"] == -2000
    assert ledger_reconcile().clean


def test_ten_huge_deposits_cannot_break_later_deposits_for_everyone(open_account):
    """Ten deposits of 10^18 once drove the settlement account past 2^63 (a 500 for the rest of
    the day, for every customer); now each is refused and the next customer is served."""
    attacker, other = open_account("A"), open_account("B")
    for _ in range(10):
        with pytest.raises(errors.AmountTooLarge):
            deposit_create(account_uuid=attacker.uuid, amount=10**18, asset_code="USD")
    deposit_create(account_uuid=other.uuid, amount=100, asset_code="USD")
    assert balances_by_asset(other.uuid) == {"USD": 100}


@pytest.mark.postgres
def test_a_days_turnover_passes_2_to_the_63(open_account):
    """Each posting is bounded, but their daily sum is not: the turnover columns are wider."""
    a = open_account("A")
    step = 10**14
    for _ in range(3):
        deposit_create(account_uuid=a.uuid, amount=step, asset_code="USD")
        withdrawal_create(account_uuid=a.uuid, amount=step, asset_code="USD")
    row = Turnover.objects.get(account_id=SETTLEMENT, asset_code="USD")
    huge = 2**63
    Turnover.objects.filter(pk=row.pk).update(credit=huge, debit=huge)
    deposit_create(account_uuid=a.uuid, amount=step, asset_code="USD")
    (today,) = [r for r in account_turnover(SETTLEMENT) if r["asset_code"] == "USD"]
    assert today["debit"] == huge + step


def test_a_staff_adjustment_above_the_threshold_waits_for_a_second_staff_member(
    open_account, customer
):
    a = open_account("A")
    outcome = manual_movement_submit(
        kind="deposit", account_uuid=a.uuid, asset_code="USD", amount=10**8, reason="correction"
    )
    assert outcome.transfer is None and outcome.request.status == "pending"
    assert balances_by_asset(a.uuid) == {}


def test_an_approved_adjustment_books_through_the_kernel_once(open_account, staff_pair):
    maker, checker = staff_pair
    a = open_account("A")
    with maker():
        outcome = manual_movement_submit(
            kind="deposit", account_uuid=a.uuid, asset_code="USD", amount=10**8, reason="fix"
        )
    with checker():
        movement_request_approve(request_uuid=outcome.request.uuid)
        with pytest.raises(errors.MovementAlreadyDecided):
            movement_request_approve(request_uuid=outcome.request.uuid)
    assert balances_by_asset(a.uuid) == {"USD": 10**8}
    assert MovementRequest.objects.get(uuid=outcome.request.uuid).status == "approved"
    assert ledger_reconcile().clean


def test_an_adjustment_for_an_unknown_account_is_not_found(bank):
    with pytest.raises(errors.NotFound):
        manual_movement_submit(
            kind="deposit", account_uuid=uuid.uuid4(), asset_code="USD", amount=1, reason="x"
        )


def test_a_transfer_of_more_than_the_bound_is_refused_before_any_rate(open_account):
    a, b = open_account("A", funded={"USD": 100}), open_account("B")
    with pytest.raises(errors.AmountTooLarge):
        transfer_create(from_account=a.uuid, to_account=b.uuid, amount=10**15, asset_code="USD")


@pytest.mark.parametrize(("from_asset", "to_asset"), [("USD", "GCU"), ("GCU", "USD")])
def test_a_basket_asset_is_composed_never_converted(open_account, from_asset, to_asset):
    """GCU bought from the FX position at its rate was backed by nothing in the reserve: $10,000
    converted to GCU and decomposed once yielded $49,236."""
    a = open_account("A", funded={"USD": 10_000})
    with pytest.raises(errors.InvalidInput):
        conversion_create(account_uuid=a.uuid, from_asset=from_asset, to_asset=to_asset, amount=100)
    b = open_account("B")
    with pytest.raises(errors.InvalidInput):
        transfer_create(
            from_account=a.uuid,
            to_account=b.uuid,
            amount=100,
            asset_code="USD",
            to_asset_code="GCU",
        )
    assert balances_by_asset(a.uuid) == {"USD": 10_000}
