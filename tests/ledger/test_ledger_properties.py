"""The ledger as a state machine: random commands against a model, invariants after every step.

Hypothesis drives open, deposit, withdraw, transfer (same and cross asset), convert, bulk
transfers (atomic and item by item), freeze, unfreeze, close, reverse (sometimes forced) and
retries under an idempotency key through the services. A small model of every customer account
(balances, frozen, closed, flagged) predicts each command's outcome, success or the exact error
code; every refusal must leave every balance and every event table as it was. In about half the
examples a snapshot is taken every 3 events, so loads restore snapshots too.

After each step the invariants hold: per asset the balances sum to zero, no customer is below zero
unless flagged, each balance equals its MoneyAdded minus MoneySubtracted events, and (every few
steps, since it is the slowest check) `ledger_reconcile(replay=True)` is clean.

Each Hypothesis example runs in a savepoint of the test's transaction that teardown rolls back, so
every example starts from an empty ledger; `__init__` asserts it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field

import pytest
from django.db import transaction
from django.test import override_settings
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from apps.accounts.models import Account as AccountView
from apps.accounts.models import AccountBalance, AccountEvent
from apps.accounts.reconciliation import ledger_reconcile
from apps.accounts.selectors import MONEY_EVENT_TYPES, account_get, balances_by_asset
from apps.accounts.services import (
    account_close,
    account_freeze,
    account_open,
    account_unfreeze,
)
from apps.assets.selectors import convert
from apps.core.errors import DomainError
from apps.core.models import IdempotencyRecord
from apps.core.seeding import seed_reference_data
from apps.payments.models import PaymentEvent
from apps.payments.services import (
    TransferRequest,
    conversion_create,
    deposit_create,
    transfer_bulk_create,
    transfer_create,
    transfer_reverse,
    withdrawal_create,
)
from tests.factories import UserFactory

ASSETS = ("USD", "EUR", "JPY", "BTC")
IDEMPOTENCY_KEYS = ("key-a", "key-b", "key-c")
OPENING_DEPOSIT = 50_000  # minor units of each asset in a funded account
RECONCILE_EVERY = 5  # steps: a replaying reconciliation costs 50-300 ms on SQLite

# Mostly valid amounts, sometimes zero or negative (VALIDATION_ERROR), sometimes large enough to
# fund cross-asset moves (1 satoshi or 1 yen is often too small to convert into anything).
amounts = st.one_of(
    st.integers(min_value=-3, max_value=400),
    st.sampled_from([1_000, 25_000, 1_000_000]),
)
assets = st.sampled_from(ASSETS)
# A transfer's destination: 0 is the source itself (SAME_ACCOUNT), n the n-th other account.
hops = st.integers(min_value=0, max_value=6)


@dataclass
class Customer:
    uuid: uuid.UUID
    balances: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    frozen: bool = False
    closed: bool = False
    flagged: bool = False

    def refusal_to_receive(self, *, forced: bool = False) -> str | None:
        if self.closed:
            return "ACCOUNT_CLOSED"
        if self.frozen and not forced:
            return "ACCOUNT_FROZEN"
        return None

    def refusal_to_pay(self, asset: str, amount: int) -> str | None:
        return self.refusal_to_receive() or (
            "INSUFFICIENT_FUNDS" if self.balances[asset] < amount else None
        )


@dataclass
class Entry:
    """A completed journal entry as the model saw it: the reversal's input."""

    uuid: uuid.UUID
    kind: str
    source: Customer | None  # None: a system account (settlement)
    target: Customer | None
    from_asset: str
    to_asset: str
    amount: int
    to_amount: int
    reversed: bool = False


def _all_balances() -> dict[tuple[str, str], int]:
    return {
        (str(account), asset): balance
        for account, asset, balance in AccountBalance.objects.values_list(
            "account_id", "asset_code", "balance"
        )
    }


def _event_counts() -> tuple[int, int]:
    return AccountEvent.objects.count(), PaymentEvent.objects.count()


class LedgerMachine(RuleBasedStateMachine):
    accounts = Bundle("accounts")
    entries = Bundle("entries")

    def __init__(self) -> None:
        super().__init__()
        # The previous example's savepoint was rolled back: nothing of it may be left.
        assert not AccountView.objects.exists()
        assert not AccountEvent.objects.exists() and not PaymentEvent.objects.exists()
        assert not IdempotencyRecord.objects.exists()
        self._stack = ExitStack()
        self._stack.enter_context(transaction.atomic())
        try:
            seed_reference_data()
        except BaseException:
            self.teardown()
            raise
        self.customers: dict[uuid.UUID, Customer] = {}
        self.keys: dict[str, tuple[tuple, str, object]] = {}  # key -> (body, outcome, value)
        self.checks = 0

    def teardown(self) -> None:
        # Runs even when a step failed: it must not raise, or it would hide the step's error.
        transaction.set_rollback(True)
        self._stack.close()

    # --- helpers ---------------------------------------------------------------------------------

    def _attempt(self, label: str, expected: str | None, command):
        """Run a command and check its outcome against the model's prediction.

        `expected` is the error code the model predicts, or None for success. A refusal must
        leave every balance (all accounts, all assets) and every event table unchanged.
        """
        balances_before, counts_before = _all_balances(), _event_counts()
        try:
            result = command()
        except DomainError as exc:
            event(f"{label}: {exc.code}")
            assert _all_balances() == balances_before, f"{exc.code} changed balances"
            assert _event_counts() == counts_before, f"{exc.code} appended events"
            assert exc.code == expected, f"expected {expected or 'success'}, got {exc.code}"
            return None
        event(f"{label}: ok")
        assert expected is None, f"expected {expected}, but the command succeeded"
        return result

    def _move(self, account: Customer | None, asset: str, delta: int) -> None:
        if account is not None:
            account.balances[asset] += delta
            if account.balances[asset] < 0:
                account.flagged = True

    def _assert_reconciled(self) -> None:
        report = ledger_reconcile(replay=True)
        assert report.clean, [d.as_dict() for d in report.discrepancies]

    # --- accounts --------------------------------------------------------------------------------

    def _open(self, funded: bool = False) -> Customer:
        view = account_open(name="Main", owner_uuid=UserFactory().uuid)
        customer = Customer(view.uuid)
        self.customers[view.uuid] = customer
        for asset in ASSETS if funded else ():
            deposit_create(account_uuid=customer.uuid, amount=OPENING_DEPOSIT, asset_code=asset)
            customer.balances[asset] += OPENING_DEPOSIT
        return customer

    @initialize(target=accounts, snapshot_every=st.sampled_from([1000, 3]))
    def open_two_funded_accounts(self, snapshot_every):
        # Every 3 events: most loads then restore a snapshot and replay a short tail.
        self._stack.enter_context(override_settings(EVENT_STORE_SNAPSHOT_EVERY=snapshot_every))
        return multiple(self._open(funded=True), self._open(funded=True))

    @rule(target=accounts, funded=st.booleans())
    def open_account(self, funded):
        return self._open(funded)

    @rule(account=accounts)
    def freeze(self, account):
        expected = "ACCOUNT_CLOSED" if account.closed else None
        expected = expected or ("ACCOUNT_ALREADY_FROZEN" if account.frozen else None)
        if self._attempt(
            "freeze", expected, lambda: account_freeze(account_uuid=account.uuid, reason="r")
        ):
            account.frozen = True

    @rule(account=accounts)
    def unfreeze(self, account):
        expected = "ACCOUNT_CLOSED" if account.closed else None
        expected = expected or (None if account.frozen else "ACCOUNT_NOT_FROZEN")
        if self._attempt("unfreeze", expected, lambda: account_unfreeze(account_uuid=account.uuid)):
            account.frozen = False

    @rule(account=accounts)
    def close(self, account):
        held = {asset: amount for asset, amount in account.balances.items() if amount}
        expected = account.refusal_to_receive() or ("ACCOUNT_HAS_BALANCE" if held else None)
        if self._attempt("close", expected, lambda: account_close(account_uuid=account.uuid)):
            account.closed = True

    # --- money -----------------------------------------------------------------------------------

    def _record(self, view, source, target, *, moved: bool = False) -> Entry:
        """The entry of a completed command; unless `moved`, applied to the model now."""
        entry = Entry(
            view.uuid,
            view.kind,
            source,
            target,
            view.from_asset,
            view.to_asset,
            view.amount,
            view.to_amount,
        )
        if not moved:
            self._move(source, entry.from_asset, -entry.amount)
            self._move(target, entry.to_asset, entry.to_amount)
        return entry

    @rule(target=entries, account=accounts, amount=amounts, asset=assets)
    def deposit(self, account, amount, asset):
        expected = "VALIDATION_ERROR" if amount <= 0 else account.refusal_to_receive()
        view = self._attempt(
            "deposit",
            expected,
            lambda: deposit_create(account_uuid=account.uuid, amount=amount, asset_code=asset),
        )
        return multiple() if view is None else self._record(view, None, account)

    @rule(amount=amounts)
    def unknown_account_asset_or_transfer(self, amount):
        expected = "VALIDATION_ERROR" if amount <= 0 else "NOT_FOUND"
        self._attempt(
            "deposit unknown account",
            expected,
            lambda: deposit_create(account_uuid=uuid.uuid4(), amount=amount, asset_code="USD"),
        )
        account = next(iter(self.customers.values()))
        self._attempt(
            "deposit unknown asset",
            "VALIDATION_ERROR" if amount <= 0 else "ASSET_NOT_FOUND",
            lambda: deposit_create(account_uuid=account.uuid, amount=amount, asset_code="XXX"),
        )
        self._attempt(
            "reverse unknown",
            "NOT_FOUND",
            lambda: transfer_reverse(transfer_uuid=uuid.uuid4(), reason="none"),
        )

    @rule(target=entries, account=accounts, amount=amounts, asset=assets)
    def withdraw(self, account, amount, asset):
        expected = "VALIDATION_ERROR" if amount <= 0 else account.refusal_to_pay(asset, amount)
        view = self._attempt(
            "withdraw",
            expected,
            lambda: withdrawal_create(account_uuid=account.uuid, amount=amount, asset_code=asset),
        )
        return multiple() if view is None else self._record(view, account, None)

    @rule(target=entries, account=accounts)
    def withdraw_everything(self, account):
        """Empty every positive balance, so that closing an account can succeed."""
        done = []
        for asset, amount in sorted(account.balances.items()):
            if amount <= 0:
                continue
            view = self._attempt(
                "withdraw everything",
                account.refusal_to_pay(asset, amount),
                lambda a=asset, m=amount: withdrawal_create(
                    account_uuid=account.uuid, amount=m, asset_code=a
                ),
            )
            if view is not None:
                done.append(self._record(view, account, None))
        return multiple(*done)

    def _destination(self, source: Customer, hop: int) -> Customer:
        others = [c for c in self.customers.values() if c is not source]
        return others[(hop - 1) % len(others)] if hop else source

    def _predict_transfer(self, source, target, amount, asset, to_asset) -> str | None:
        if amount <= 0:
            return "VALIDATION_ERROR"
        if source is target:
            return "SAME_ACCOUNT"
        # too small to convert is bad input (400), refused before any account's standing
        if to_asset != asset and convert(amount, asset, to_asset).converted_amount <= 0:
            return "VALIDATION_ERROR"
        # the kernel checks each account's standing, the payer's first, before any balance
        for party, frozen_code in (
            (source, "SOURCE_ACCOUNT_FROZEN"),
            (target, "DESTINATION_ACCOUNT_FROZEN"),
        ):
            refusal = party.refusal_to_receive()
            if refusal:
                return frozen_code if refusal == "ACCOUNT_FROZEN" else refusal
        return source.refusal_to_pay(asset, amount)

    def _transfer(self, source, hop, amount, asset, to_asset):
        destination = self._destination(source, hop)
        expected = self._predict_transfer(source, destination, amount, asset, to_asset or asset)
        view = self._attempt(
            "transfer" if to_asset is None else "cross-asset transfer",
            expected,
            lambda: transfer_create(
                from_account=source.uuid,
                to_account=destination.uuid,
                amount=amount,
                asset_code=asset,
                to_asset_code=to_asset,
            ),
        )
        if view is None:
            return multiple()
        if to_asset and to_asset != asset:
            assert view.to_amount == convert(amount, asset, to_asset).converted_amount
            assert view.rate is not None
        else:
            assert (view.to_asset, view.to_amount, view.rate) == (asset, amount, None)
        return self._record(view, source, destination)

    @rule(target=entries, source=accounts, hop=hops, amount=amounts, asset=assets)
    def transfer(self, source, hop, amount, asset):
        return self._transfer(source, hop, amount, asset, None)

    @rule(
        target=entries,
        source=accounts,
        hop=hops,
        amount=amounts,
        asset=assets,
        to_asset=assets,  # sometimes the same asset, named explicitly
    )
    def cross_asset_transfer(self, source, hop, amount, asset, to_asset):
        return self._transfer(source, hop, amount, asset, to_asset)

    @rule(
        target=entries,
        account=accounts,
        amount=amounts,
        from_asset=assets,
        to_asset=assets,
    )
    def conversion(self, account, amount, from_asset, to_asset):
        refused = amount <= 0 or from_asset == to_asset
        if refused or convert(amount, from_asset, to_asset).converted_amount <= 0:
            expected = "VALIDATION_ERROR"
        else:
            expected = account.refusal_to_pay(from_asset, amount)
        view = self._attempt(
            "convert",
            expected,
            lambda: conversion_create(
                account_uuid=account.uuid, from_asset=from_asset, to_asset=to_asset, amount=amount
            ),
        )
        if view is None:
            return multiple()
        assert view.to_amount == convert(amount, from_asset, to_asset).converted_amount
        return self._record(view, account, account)

    @rule(
        source=accounts,
        hop=hops,
        key=st.sampled_from(IDEMPOTENCY_KEYS),
        amount=st.integers(min_value=1, max_value=300),
    )
    def transfer_with_idempotency_key(self, source, hop, key, amount):
        """A key runs its request once; a retry gets the first answer, another body is refused."""
        destination = self._destination(source, hop)
        body = (source.uuid, destination.uuid, amount)
        known = self.keys.get(key)
        if known is None:
            expected = self._predict_transfer(source, destination, amount, "USD", "USD")
        elif known[0] != body:
            expected = "IDEMPOTENCY_KEY_REUSED"
        else:
            expected = known[1] if known[1] != "ok" else None
        before = _all_balances()
        view = self._attempt(
            "keyed transfer",
            expected,
            lambda: transfer_create(
                from_account=source.uuid,
                to_account=destination.uuid,
                amount=amount,
                asset_code="USD",
                idempotency_key=key,
            ),
        )
        if known is None:
            self.keys[key] = (body, expected or "ok", view and view.uuid)
            if view is not None:
                self._move(source, "USD", -amount)
                self._move(destination, "USD", amount)
        elif view is not None:
            assert view.uuid == known[2], "a replay returned another transfer"
            assert _all_balances() == before, "a replay moved money again"

    @rule(
        target=entries,
        items=st.lists(st.tuples(accounts, hops, amounts), max_size=3),
        atomic=st.booleans(),
    )
    def bulk_transfer(self, items, atomic):
        """All or nothing (`atomic`), else each item on its own; the model runs them in order."""
        plan = [(source, self._destination(source, hop), amount) for source, hop, amount in items]
        saved = {c.uuid: c.balances.copy() for c in self.customers.values()}
        outcomes: list[str | None] = []
        for source, target, amount in plan:
            outcomes.append(self._predict_transfer(source, target, amount, "USD", "USD"))
            if outcomes[-1] is None:
                self._move(source, "USD", -amount)
                self._move(target, "USD", amount)
            elif atomic:
                break
        refused = [code for code in outcomes if code]
        expected = None if plan else "VALIDATION_ERROR"
        if atomic and refused:
            expected = refused[0]
            for account_uuid, balances in saved.items():
                self.customers[account_uuid].balances = balances
        requests = [TransferRequest(s.uuid, t.uuid, amount, "USD") for s, t, amount in plan]
        results = self._attempt(
            "atomic bulk" if atomic else "item-by-item bulk",
            expected,
            lambda: transfer_bulk_create(transfers=requests, atomic=atomic),
        )
        if results is None:
            return multiple()
        assert [r.index for r in results] == list(range(len(plan)))
        assert [r.error["error"] if r.error else None for r in results] == outcomes
        return multiple(
            *(
                self._record(r.transfer, source, target, moved=True)
                for r, (source, target, _) in zip(results, plan, strict=True)
                if r.transfer is not None
            )
        )

    # --- reversal --------------------------------------------------------------------------------

    def _predict_reversal(self, entry: Entry, force: bool) -> str | None:
        if entry.reversed:
            return "TRANSFER_ALREADY_REVERSED"
        target, source = entry.target, entry.source
        # the posting kernel checks every account's standing before any balance
        for party in (target, source):
            refusal = party.refusal_to_receive(forced=force) if party is not None else None
            if refusal:
                return refusal
        if target is not None and not force and target.balances[entry.to_asset] < entry.to_amount:
            return "TRANSFER_NOT_REVERSIBLE"
        return None

    @rule(entry=entries, force=st.booleans())
    def reverse(self, entry, force):
        self._reverse(entry, force)

    @rule(target=entries, entry=entries, force=st.booleans())
    def reverse_after_the_receiver_spent_it(self, entry, force):
        """Refused (TRANSFER_NOT_REVERSIBLE) unless forced; forced, the receiver goes below zero
        and its account is flagged."""
        done = []
        receiver, asset = entry.target, entry.to_asset
        if receiver is not None and receiver.balances[asset] > 0:
            amount = receiver.balances[asset]
            view = self._attempt(
                "withdraw",
                receiver.refusal_to_pay(asset, amount),
                lambda: withdrawal_create(
                    account_uuid=receiver.uuid, amount=amount, asset_code=asset
                ),
            )
            if view is not None:
                done.append(self._record(view, receiver, None))
        self._reverse(entry, force)
        return multiple(*done)

    def _reverse(self, entry: Entry, force: bool) -> None:
        expected = self._predict_reversal(entry, force)
        view = self._attempt(
            "forced reversal" if force else "reversal",
            expected,
            lambda: transfer_reverse(transfer_uuid=entry.uuid, reason="test", force=force),
        )
        if view is None:
            return
        assert view.status == "reversed" and view.reversal_forced == force
        entry.reversed = True
        self._move(entry.target, entry.to_asset, -entry.to_amount)
        self._move(entry.source, entry.from_asset, entry.amount)
        if entry.target is not None and entry.target.balances[entry.to_asset] < 0:
            event("forced reversal: receiver below zero, flagged")

    # --- invariants ------------------------------------------------------------------------------

    @invariant()
    def every_asset_sums_to_zero(self):
        totals: dict[str, int] = defaultdict(int)
        for (_, asset), balance in _all_balances().items():
            totals[asset] += balance
        assert {asset: total for asset, total in totals.items() if total} == {}

    @invariant()
    def no_customer_below_zero_unless_flagged(self):
        negative = AccountBalance.objects.filter(
            balance__lt=0, account__kind=AccountView.Kind.CUSTOMER, account__flagged=False
        )
        assert list(negative.values_list("account_id", "asset_code", "balance")) == []

    @invariant()
    def balances_equal_their_money_events(self):
        from_events: dict[tuple[str, str], int] = defaultdict(int)
        rows = AccountEvent.objects.filter(event_type__in=MONEY_EVENT_TYPES).values_list(
            "aggregate_uuid", "event_type", "event_data"
        )
        for account, event_type, data in rows:
            sign = 1 if event_type == MONEY_EVENT_TYPES[0] else -1
            from_events[(str(account), data["asset_code"])] += sign * data["amount"]
        assert _all_balances() == dict(from_events)

    @invariant()
    def customers_match_the_model(self):
        for customer in self.customers.values():
            view = account_get(customer.uuid)
            state = (view.frozen, view.closed, view.flagged)
            assert state == (customer.frozen, customer.closed, customer.flagged), customer.uuid
            stored = {a: b for a, b in balances_by_asset(customer.uuid).items() if b}
            assert stored == {a: b for a, b in customer.balances.items() if b}, customer.uuid

    @invariant()
    def reconciliation_is_clean(self):
        self.checks += 1
        if self.checks % RECONCILE_EVERY == 0:
            self._assert_reconciled()


@pytest.mark.django_db
def test_ledger_state_machine():
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
    # Every example was rolled back: the ledger is empty again.
    assert not AccountView.objects.exists() and not AccountEvent.objects.exists()
