"""Money integrity as a state machine: adversarial customers against every money channel.

Three customers, each with an account and a registered account of their own at the mock bank,
try to come out ahead: deposits and withdrawals through the custodian workflows (more than the
bank account holds, more than the balance), conversions between any two assets in both directions
with tiny and odd amounts, compose and decompose of odd GCU amounts, transfers to each other
(same asset and across assets), votes on polls whose voting power was fixed at activation, and
in between staff record new rates (accepted, pending beyond the band, or refused as a gaining
cycle). A refusal (a DomainError, or a workflow run that ends without completing) must change
nothing: no balance in the ledger, none at the mock bank, no vote.

After every step:

- every asset sums to zero over all accounts, system accounts included;
- `custodian_reconcile` is clean: the mock bank's omnibus account holds what the settlement
  account says;
- no vote carries more power than its voter's snapshot, and no poll more than its snapshot's
  eligible total;
- the customers hold no more value than they brought in (below).

Value. "Brought in" is the running sum of each completed deposit's value minus each completed
withdrawal's value, at the prices of its moment; the customers' holdings are valued at the
prices in force now. Prices move when staff record a rate, which is not something customers
did: an accepted rate change re-bases the bound by the change it makes to the holdings' value
(value after minus value before, same holdings), so the comparison isolates customer steps.
Every customer step is also checked on its own: at unchanged prices, only a deposit raises the
customers' value, and by exactly the deposit's value. Values are exact fractions: rounding each
holding to a cent would let the sum of rounded values grow by half a cent per holding with no
money made.

Which prices. Two measures:

- At the mid (the bank's own valuation, as `value_at_mid` takes it, unrounded), checked while
  the rate book is as seeded: every pair then quotes the ratio of the assets' USD values, so a
  conversion at the bid always loses, and compose/decompose round in the bank's favour. Once
  staff change one pair, the other pairs of its assets still quote the old ratio: within the
  spreads the book is no longer one price vector, and a conversion can gain at the mid without
  any money being made (no chain of conversions returns more than it started with, which is
  what the cycle check refuses). A mid bound is then not a property of correct code.
- At the liquidation price, checked always: the most USD a minor unit of an asset can be turned
  into by any chain of customer conversions at the bids in force, or, for GCU, by decomposing
  it. Because gaining cycles are refused, these prices exist (a Bellman-Ford over the rate
  book; a gaining cycle would make it diverge, and fails the test) and no conversion can raise
  the value at them: the price of A is at least A's bid into B times the price of B. Decompose
  pays at most the quantities (rounded down), so neither can it. Compose raises the value only
  if the basket sells for more than its components: that is money the bank gives away.

Each example runs in a savepoint that teardown rolls back (as in test_ledger_properties), and
the commit hooks of each step run as a commit would (the workflow runs, eager, and the rate
cache drop).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import TestCase
from django.utils import timezone
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from apps.accounts.models import Account as AccountView
from apps.accounts.models import AccountBalance
from apps.accounts.selectors import balances_by_asset
from apps.accounts.services import account_open, settlement_code, system_account_uuid
from apps.assets.selectors import asset_precisions, exchange_rate_get
from apps.assets.services import exchange_rate_record
from apps.baskets.selectors import basket_quantities
from apps.baskets.services import basket_compose, basket_decompose
from apps.core.context import command_context, user_actor
from apps.core.errors import DomainError, ExchangeRateNotFound
from apps.core.seeding import seed_reference_data
from apps.custodians.models import MockBankAccount
from apps.custodians.registry import connector_for
from apps.custodians.services import (
    custodian_deposit_start,
    custodian_reconcile,
    custodian_withdrawal_start,
    external_account_ensure,
)
from apps.governance.models import Poll as PollView
from apps.governance.models import Vote as VoteView
from apps.governance.selectors import snapshot_power_of
from apps.governance.services import poll_activate, poll_create, vote_cast
from apps.payments.services import conversion_create, transfer_create
from apps.workflows.selectors import workflow_run_get
from tests.factories import StaffFactory, UserFactory
from tests.workflows.support import set_eager

DEPOSITABLE = ("USD", "EUR", "GBP", "CHF", "JPY", "XAU", "BTC", "ETH")
ASSETS = (*DEPOSITABLE, "GCU")
CUSTOMERS = 3
MAX_POLLS = 3
# Pairs staff re-rate: against USD (what valuation uses) and one cross pair.
RATED_PAIRS = (*((code, "USD") for code in ASSETS if code != "USD"), ("EUR", "GBP"))
# Within the spread (accepted unless a cycle gains), around it (often a gaining cycle, refused)
# and beyond the 10% band (pending, not in force).
RATE_FACTORS = tuple(
    Decimal(f) for f in ("0.9999", "1.0001", "0.9995", "1.0005", "0.998", "1.002", "0.97", "1.2")
)

# Tiny and odd amounts in every asset's minor units; zero and negative are refused.
amounts = st.one_of(
    st.sampled_from([0, -1]),
    st.integers(min_value=1, max_value=9),
    st.integers(min_value=10, max_value=9_999),
    st.sampled_from([10_001, 123_457, 1_000_003, 99_999_999]),
)
# Liquidation prices are kept on a grid of 1e-40 cents per minor unit; a step may then appear
# to gain up to (units moved) x 1e-40 cents, far below any money: STEP_TOLERANCE allows it.
PRICE_GRID = 10**40
MAX_PRICE_ROUNDS = 400
STEP_TOLERANCE = Fraction(1, 10**25)  # cents

# How much of a balance a move takes: a raw amount, or the balance divided by this (1: all of
# it, the edge; others leave odd remainders).
portions = st.one_of(
    amounts.map(lambda amount: ("amount", amount)),
    st.sampled_from([1, 2, 3, 7, 1000, 10**6]).map(lambda divisor: ("share", divisor)),
)
# What each customer brings in first, through the custodian: about 10,000 USD of each asset.
OPENING_DEPOSITS = {
    "USD": 1_000_000,
    "EUR": 925_931,
    "GBP": 787_403,
    "CHF": 892_857,
    "JPY": 1_492_537,
    "XAU": 3_773,
    "BTC": 10_309_279,
    "ETH": 294_117_647,
}

customers = st.integers(min_value=0, max_value=CUSTOMERS - 1)
assets = st.sampled_from(ASSETS)
depositable = st.sampled_from(DEPOSITABLE)


@dataclass
class Customer:
    user: object
    account: uuid.UUID
    bank_account: str  # the customer's own account at the mock bank


def _ledger_balances() -> dict[tuple[str, str], int]:
    return {
        (str(account), asset): balance
        for account, asset, balance in AccountBalance.objects.values_list(
            "account_id", "asset_code", "balance"
        )
    }


def _bank_balances() -> dict[str, dict[str, int]]:
    return {a.account_id: dict(a.balances) for a in MockBankAccount.objects.order_by("account_id")}


def _settlement_balances() -> dict[str, int]:
    return balances_by_asset(system_account_uuid(settlement_code("mock_bank")))


def _customer_holdings() -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    rows = AccountBalance.objects.filter(account__kind=AccountView.Kind.CUSTOMER)
    for asset, balance in rows.values_list("asset_code", "balance"):
        totals[asset] += balance
    return totals


def _minor_scale(from_code: str, to_code: str, precisions: dict[str, int]) -> Fraction:
    """Minor units of `to_code` per minor unit of `from_code`, for a rate in major units."""
    return Fraction(10) ** (precisions[to_code] - precisions[from_code])


def mid_prices() -> dict[str, Fraction]:
    """USD cents per minor unit of each asset at the mid in force (value_at_mid, unrounded)."""
    precisions = asset_precisions()
    return {
        code: Fraction(exchange_rate_get(code, "USD").rate) * _minor_scale(code, "USD", precisions)
        for code in ASSETS
    }


def _on_grid(price: Fraction) -> Fraction:
    return Fraction(math.floor(price * PRICE_GRID), PRICE_GRID)


def liquidation_prices() -> dict[str, Fraction]:
    """USD cents per minor unit: the best any chain of customer conversions at the bids (and,
    for GCU, a decompose) pays. A gaining cycle would raise USD above 1 cent per cent.

    Decomposing feeds back (a component buys GCU, which decomposes into that component among
    others), so the iteration converges geometrically rather than in a fixed number of rounds:
    each price is kept rounded down to 1/PRICE_GRID cents, so it stops, and the guarantee
    "A's price >= A's bid into B x B's price" then holds to within that grid."""
    precisions = asset_precisions()
    edges = []
    for a in ASSETS:
        for b in ASSETS:
            if a == b:
                continue
            try:
                bid = exchange_rate_get(a, b).bid
            except ExchangeRateNotFound:
                continue
            edges.append((a, b, Fraction(bid) * _minor_scale(a, b, precisions)))
    quantities = {code: Fraction(q) for code, q in basket_quantities("GCU").items() if q}
    price: dict[str, Fraction] = {"USD": Fraction(1)}
    for _ in range(MAX_PRICE_ROUNDS):
        changed = False
        for a, b, rate in edges:
            offer = _on_grid(rate * price.get(b, Fraction(0)))
            if offer > price.get(a, Fraction(0)):
                price[a], changed = offer, True
        decomposed = _on_grid(sum(q * price.get(c, Fraction(0)) for c, q in quantities.items()))
        if decomposed > price.get("GCU", Fraction(0)):
            price["GCU"], changed = decomposed, True
        assert price["USD"] == 1, f"a chain of conversions gains: {float(price['USD'])} per 1"
        if not changed:
            return price
    raise AssertionError("the liquidation prices do not settle: a gaining cycle")


def value(holdings: dict[str, int], prices: dict[str, Fraction]) -> Fraction:
    return sum((prices[code] * amount for code, amount in holdings.items() if amount), Fraction(0))


def cents(amount: Fraction) -> str:
    return f"{float(amount) / 100:.10f} USD"


class AdversarialCustomers(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # The previous example's savepoint was rolled back: nothing of it may be left.
        assert not AccountView.objects.filter(kind=AccountView.Kind.CUSTOMER).exists()
        # Quotes cached by the previous example were made from rates it rolled back.
        cache.clear()
        self._stack = ExitStack()
        self._stack.enter_context(transaction.atomic())
        try:
            self._committed(self._seed)
        except BaseException:
            self.teardown()
            raise

    def _seed(self) -> None:
        self.bank = connector_for("mock_bank").inner
        self.staff = StaffFactory()
        self.customers = []
        for _ in range(CUSTOMERS):
            user = UserFactory()
            account = account_open(name="Main", owner_uuid=user.uuid).uuid
            bank_account = external_account_ensure(owner_uuid=user.uuid).account_id
            self.customers.append(Customer(user, account, bank_account))
        self.polls: list[uuid.UUID] = []
        self.rates_as_seeded = True
        self.mid = mid_prices()
        self.liquidation = liquidation_prices()
        # What the customers brought in, valued at each measure (USD cents, exact).
        self.brought_in_mid = Fraction(0)
        self.brought_in_liquidation = Fraction(0)
        self.grid_allowance = Fraction(0)  # STEP_TOLERANCE per customer step so far
        self.reconciled_books = None

    def teardown(self) -> None:
        # Runs even when a step failed: it must not raise, or it would hide the step's error.
        transaction.set_rollback(True)
        self._stack.close()
        cache.clear()

    # --- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _committed(command):
        """Run `command`, then its commit hooks as a commit would (workflow dispatch, eager; the
        rate cache drop): the test transaction itself never commits."""
        with TestCase.captureOnCommitCallbacks(execute=True):
            return command()

    def _as_customer(self, customer: Customer, label: str, command):
        """A customer step: refused (a DomainError) it changes nothing; done, it raises the
        customers' value by no more than it adds to what they brought in (None: nothing)."""
        ledger, bank = _ledger_balances(), _bank_balances()
        votes = VoteView.objects.count()
        holdings = _customer_holdings()
        try:
            with command_context(actor=user_actor(customer.user)):
                result = self._committed(command)
        except DomainError as exc:
            event(f"{label}: {exc.code}")
            assert _ledger_balances() == ledger, f"{label} refused ({exc.code}) moved money"
            assert _bank_balances() == bank, f"{label} refused ({exc.code}) moved money at the bank"
            assert VoteView.objects.count() == votes, f"{label} refused ({exc.code}) voted"
            return None
        event(f"{label}: ok")
        self._check_step(label, holdings, _customer_holdings())
        return result

    def _check_step(self, label: str, before: dict[str, int], after: dict[str, int]) -> None:
        """At unchanged prices a customer step (other than a movement, which re-bases the bound
        itself) never raises the customers' value."""
        self.grid_allowance += STEP_TOLERANCE
        measures = [("liquidation", self.liquidation)]
        if self.rates_as_seeded:
            measures.append(("mid", self.mid))
        for name, prices in measures:
            gain = value(after, prices) - value(before, prices)
            assert gain <= (STEP_TOLERANCE if name == "liquidation" else 0), (
                f"{label} raised the customers' value at the {name} by {cents(gain)}: "
                f"holdings {dict(before)} -> {dict(after)}"
            )

    def _movement(self, customer: Customer, label: str, start, sign: int) -> None:
        """A custodian deposit (+1) or withdrawal (-1), run to its end (the mock bank settles at
        once): completed, the ledger moved by the amount and the bound by its value; any other
        end, nothing moved."""
        ledger, bank = _ledger_balances(), _bank_balances()
        holdings = _customer_holdings()
        try:
            with command_context(actor=user_actor(customer.user)):
                run = self._committed(start)
        except DomainError as exc:
            event(f"{label}: {exc.code}")
            assert (_ledger_balances(), _bank_balances()) == (ledger, bank), f"{label} refused"
            return
        run = workflow_run_get(run.uuid)
        event(f"{label}: run {run.status}")
        assert run.status in ("completed", "compensated", "failed"), run.status
        after = _customer_holdings()
        if run.status != "completed":
            assert after == holdings, f"{label} ended {run.status} but moved money"
            assert run.status != "failed", f"{label} failed and needs an operator: {run.error}"
            return
        asset, amount = run.input["asset_code"], run.input["amount"]
        expected = dict(holdings)
        expected[asset] = expected.get(asset, 0) + sign * amount
        assert {a: b for a, b in after.items() if b} == {a: b for a, b in expected.items() if b}
        self.brought_in_mid += sign * self.mid[asset] * amount
        self.brought_in_liquidation += sign * self.liquidation[asset] * amount

    # --- movements through the custodian ---------------------------------------------------------

    @initialize(compose=st.sampled_from([0, 1, 333, 100_001]))
    def bring_money_in(self, compose):
        """Each customer deposits some of every asset through the custodian, from money wired
        to their own bank account, and composes some GCU."""
        for customer in self.customers:
            for asset, amount in OPENING_DEPOSITS.items():
                self.bank.fund(customer.bank_account, asset, amount)
                self._movement(
                    customer,
                    "opening deposit",
                    lambda c=customer, a=asset, m=amount: custodian_deposit_start(
                        account_uuid=c.account, amount=m, asset_code=a
                    ),
                    +1,
                )
            if compose:
                self.compose(self.customers.index(customer), compose)

    @rule(who=customers, asset=depositable, held=amounts, amount=amounts)
    def deposit(self, who, asset, held, amount):
        """The customer's bank account receives `held` (a wire from outside), then the customer
        deposits `amount` from it: more than it holds must not be credited."""
        customer = self.customers[who]
        if held > 0:
            self.bank.fund(customer.bank_account, asset, held)
        self._movement(
            customer,
            "deposit",
            lambda: custodian_deposit_start(
                account_uuid=customer.account, amount=amount, asset_code=asset
            ),
            +1,
        )

    @rule(who=customers, asset=depositable, portion=portions)
    def withdraw(self, who, asset, portion):
        customer = self.customers[who]
        amount = _amount(customer, asset, portion)
        self._movement(
            customer,
            "withdraw",
            lambda: custodian_withdrawal_start(
                account_uuid=customer.account, amount=amount, asset_code=asset
            ),
            -1,
        )

    # --- moves inside the bank -------------------------------------------------------------------

    @rule(who=customers, from_asset=assets, to_asset=assets, portion=portions)
    def convert(self, who, from_asset, to_asset, portion):
        customer = self.customers[who]
        amount = _amount(customer, from_asset, portion)
        self._as_customer(
            customer,
            f"convert {from_asset}->{to_asset}",
            lambda: conversion_create(
                account_uuid=customer.account,
                from_asset=from_asset,
                to_asset=to_asset,
                amount=amount,
            ),
        )

    @rule(who=customers, amount=amounts)
    def compose(self, who, amount):
        customer = self.customers[who]
        self._as_customer(
            customer,
            "compose GCU",
            lambda: basket_compose(account_uuid=customer.account, basket_code="GCU", amount=amount),
        )

    @rule(who=customers, portion=portions)
    def decompose(self, who, portion):
        customer = self.customers[who]
        amount = _amount(customer, "GCU", portion)
        self._as_customer(
            customer,
            "decompose GCU",
            lambda: basket_decompose(
                account_uuid=customer.account, basket_code="GCU", amount=amount
            ),
        )

    @rule(
        who=customers,
        hop=st.integers(min_value=0, max_value=CUSTOMERS - 1),
        asset=assets,
        to_asset=st.one_of(st.none(), assets),
        portion=portions,
    )
    def transfer(self, who, hop, asset, to_asset, portion):
        source = self.customers[who]
        amount = _amount(source, asset, portion)
        target = self.customers[(who + hop) % CUSTOMERS]  # hop 0: to itself, refused
        self._as_customer(
            source,
            "transfer" if to_asset is None else f"transfer {asset}->{to_asset}",
            lambda: transfer_create(
                from_account=source.account,
                to_account=target.account,
                amount=amount,
                asset_code=asset,
                to_asset_code=to_asset,
            ),
        )

    # --- governance ------------------------------------------------------------------------------

    @precondition(lambda self: len(self.polls) < MAX_POLLS)
    @rule(strategy=st.sampled_from(["gcu_weighted", "asset_weighted"]))
    def open_poll(self, strategy):
        """A poll activated now: its voting power is fixed from the balances of this moment."""
        now = timezone.now()

        def create_and_activate():
            poll = poll_create(
                title="Adversarial poll",
                type="yes_no",
                options=[{"id": "yes", "label": "Yes"}, {"id": "no", "label": "No"}],
                start_date=now - dt.timedelta(hours=1),
                end_date=now + dt.timedelta(days=1),
                voting_power_strategy=strategy,
            )
            return poll_activate(poll_uuid=poll.uuid)

        with command_context(actor=user_actor(self.staff)):
            self.polls.append(self._committed(create_and_activate).uuid)

    @precondition(lambda self: self.polls)
    @rule(who=customers, poll=st.integers(min_value=0, max_value=MAX_POLLS - 1), yes=st.booleans())
    def vote(self, who, poll, yes):
        customer = self.customers[who]
        poll_uuid = self.polls[poll % len(self.polls)]
        cast = self._as_customer(
            customer,
            "vote",
            lambda: vote_cast(
                poll_uuid=poll_uuid, user=customer.user, selected_options=["yes" if yes else "no"]
            ),
        )
        if cast is not None:
            assert cast.voting_power == snapshot_power_of(poll_uuid, customer.user.uuid)

    # --- staff -----------------------------------------------------------------------------------

    @rule(pair=st.sampled_from(RATED_PAIRS), factor=st.sampled_from(RATE_FACTORS))
    def staff_rate_change(self, pair, factor):
        """Accepted, the prices move and the bound is re-based by what the move does to the
        customers' holdings; pending (beyond the band) or refused (a gaining cycle), nothing
        changes."""
        from_code, to_code = pair
        with localcontext() as ctx:
            ctx.prec = 12
            rate = exchange_rate_get(from_code, to_code).rate * factor
        ledger, holdings = _ledger_balances(), _customer_holdings()
        mid, liquidation = self.mid, self.liquidation
        try:
            with command_context(actor=user_actor(self.staff)):
                recorded = self._committed(
                    lambda: exchange_rate_record(from_code=from_code, to_code=to_code, rate=rate)
                )
        except DomainError as exc:
            event(f"rate change: {exc.code}")
            assert mid_prices() == mid and liquidation_prices() == liquidation, exc.code
            return
        event(f"rate change: {recorded.status}")
        assert _ledger_balances() == ledger, "a rate change moved money"
        self.mid, self.liquidation = mid_prices(), liquidation_prices()
        if recorded.status != "accepted":
            assert (self.mid, self.liquidation) == (mid, liquidation), "a pending rate is in force"
            return
        self.rates_as_seeded = False
        self.brought_in_mid += value(holdings, self.mid) - value(holdings, mid)
        self.brought_in_liquidation += value(holdings, self.liquidation) - value(
            holdings, liquidation
        )

    # --- invariants ------------------------------------------------------------------------------

    @invariant()
    def every_asset_sums_to_zero(self):
        totals: dict[str, int] = defaultdict(int)
        for (_, asset), balance in _ledger_balances().items():
            totals[asset] += balance
        assert {asset: total for asset, total in totals.items() if total} == {}

    @invariant()
    def custodian_reconciles(self):
        # The comparison is a function of the settlement account and the omnibus account alone:
        # asked again with both as they were at the last clean one, it can only say the same.
        books = (_settlement_balances(), _bank_balances().get(self.bank.settlement_account, {}))
        if books == self.reconciled_books:
            return
        checks = self._committed(custodian_reconcile)
        for check in checks:
            assert check.ok, check.error
            assert check.reconciliation.clean, check.reconciliation.results
        self.reconciled_books = books

    @invariant()
    def customers_hold_no_more_than_they_brought_in(self):
        holdings = _customer_holdings()
        held = value(holdings, self.liquidation)
        assert held <= self.brought_in_liquidation + self.grid_allowance, (
            f"customers hold {cents(held)} at liquidation prices, brought in "
            f"{cents(self.brought_in_liquidation)}: {holdings}"
        )
        if self.rates_as_seeded:
            held = value(holdings, self.mid)
            assert held <= self.brought_in_mid, (
                f"customers hold {cents(held)} at the mid, brought in {cents(self.brought_in_mid)}"
            )

    @invariant()
    def votes_stay_within_their_snapshot(self):
        for poll in PollView.objects.filter(uuid__in=self.polls):
            assert poll.total_power <= (poll.eligible_power or 0), (
                poll.total_power,
                poll.eligible_power,
            )
            for vote in VoteView.objects.filter(poll_id=poll.uuid):
                assert vote.voting_power <= snapshot_power_of(poll.uuid, vote.user_uuid)


def _amount(customer: Customer, asset: str, portion: tuple[str, int]) -> int:
    kind, number = portion
    if kind == "amount":
        return number
    return balances_by_asset(customer.account).get(asset, 0) // number


@pytest.fixture
def eager_workflows(settings):
    """Workflow runs advance in-process once their start commits; connector retries do not
    sleep (the mock bank settles at once, so nothing waits)."""
    settings.CUSTODIAN_RETRY = {"attempts": 3, "base_delay": 0.0, "max_delay": 0.0}
    previous = set_eager(True)
    yield
    set_eager(previous)


@pytest.mark.django_db
def test_adversarial_customers_never_come_out_ahead(eager_workflows):
    # Reference data once, in the test's transaction: each example's savepoint starts from it.
    with TestCase.captureOnCommitCallbacks(execute=True):
        seed_reference_data()
    run_state_machine_as_test(
        AdversarialCustomers,
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
    # Every example was rolled back.
    assert not AccountView.objects.filter(kind=AccountView.Kind.CUSTOMER).exists()
