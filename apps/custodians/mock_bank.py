"""The mock bank: a custodian that runs inside FinAegis, for development, demos and tests.

It keeps its own books in its own tables (`MockBankAccount`, `MockBankTransaction`), so every
process (web, workers, tests) sees the same bank, and a worker that dies does not take the
bank's memory with it. Our omnibus account there (`settlement_account`) starts empty. Customers'
own accounts are held here too (`open_customer_account`, with `customer_opening_balances`, by
default the MOCK_BANK_CUSTOMER_OPENING_BALANCES setting): a deposit pulls from one, and only
what it holds. Any other well-formed account id is an account at another bank.

Faults are injected by options, deterministically per call: the draw of a call is seeded with
`seed`, the operation, what it is about (a transfer's reference, a transaction id, an account)
and its attempt number (counted in `MockBankCall`, shared by every process). So a retry draws
anew, every process draws the same outcome for the same attempt of the same call, and two
processes do not fail on the same calls just because they made as many:

- `latency_ms`: every call sleeps this long first;
- `error_rate`: share of calls that fail with CustodianUnavailable before doing anything;
- `fail_operations`: operations that always fail that way (an outage of one endpoint);
- `timeout_rate`: share of calls that raise CustodianTimeout; for a transfer or a cancellation
  the bank has done it first (the answer was lost), which only idempotency survives;
- `timeout_operations`: operations whose every call times out that way;
- `settle_after_seconds`: transfers stay pending this long, then settle when next looked at;
- `stuck_rate`: share of transfers that stay pending for ever;
- `closed_accounts`: counterparty accounts that are closed (refused).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.custodians.connectors import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    AccountInfo,
    Balance,
    CustodianRejected,
    CustodianTimeout,
    CustodianTransaction,
    CustodianUnavailable,
    TransferRequest,
)
from apps.custodians.models import MockBankAccount, MockBankCall, MockBankTransaction

ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{2,63}$")
# Everything the ledger holds through its default custodian, gold and crypto included: the mock
# stands in for every kind of custodian at once.
DEFAULT_ASSETS = ("USD", "EUR", "GBP", "CHF", "JPY", "XAU", "BTC", "ETH")


def _now() -> dt.datetime:
    """The mock bank's clock; tests replace it to let pending transfers settle."""
    return timezone.now()


class MockBank:
    def __init__(
        self,
        *,
        code: str,
        name: str = "Mock Bank",
        settlement_account: str = "FINAEGIS-OMNIBUS",
        supported_assets: Iterable[str] = DEFAULT_ASSETS,
        latency_ms: int = 0,
        error_rate: float = 0.0,
        fail_operations: Iterable[str] = (),
        timeout_rate: float = 0.0,
        timeout_operations: Iterable[str] = (),
        settle_after_seconds: int = 0,
        stuck_rate: float = 0.0,
        closed_accounts: Iterable[str] = (),
        customer_opening_balances: dict[str, int] | None = None,
        seed: int = 0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.code = code
        self.name = name
        self.settlement_account = settlement_account
        self.supported_assets = [a.upper() for a in supported_assets]
        self.latency_ms = latency_ms
        self.error_rate = error_rate
        self.fail_operations = frozenset(fail_operations)
        self.timeout_rate = timeout_rate
        self.timeout_operations = frozenset(timeout_operations)
        self.settle_after_seconds = settle_after_seconds
        self.stuck_rate = stuck_rate
        self.closed_accounts = frozenset(closed_accounts)
        self.customer_opening_balances = customer_opening_balances
        self.seed = seed
        self._sleep = sleep

    # --- fault injection ---------------------------------------------------------------------

    def _rng(self, *parts: object) -> random.Random:
        text = ":".join(str(p) for p in (self.seed, self.code, *parts))
        return random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))

    def _attempt(self, operation: str, subject: str) -> int:
        """This call's attempt number: how often `operation` was asked about `subject`."""
        with transaction.atomic():
            row, _ = MockBankCall.objects.select_for_update().get_or_create(
                custodian=self.code, operation=operation, subject=subject[:255]
            )
            MockBankCall.objects.filter(pk=row.pk).update(calls=F("calls") + 1)
        return row.calls + 1

    def _enter(self, operation: str, subject: str = "") -> bool:
        """Apply latency and errors; returns whether this call is to time out."""
        if self.latency_ms:
            self._sleep(self.latency_ms / 1000)
        if operation in self.fail_operations:
            raise CustodianUnavailable(f"{self.name}: {operation} is unavailable")
        rng = None
        if self.error_rate or self.timeout_rate:
            rng = self._rng(operation, subject, self._attempt(operation, subject))
        if self.error_rate and rng.random() < self.error_rate:
            raise CustodianUnavailable(f"{self.name}: {operation} failed (injected error)")
        if operation in self.timeout_operations:
            return True
        return bool(self.timeout_rate) and rng.random() < self.timeout_rate

    def _timeout(self, operation: str) -> CustodianTimeout:
        return CustodianTimeout(f"{self.name}: no answer to {operation} (injected timeout)")

    # --- the books -----------------------------------------------------------------------------

    def _held(self, account_id: str, *, lock: bool = False) -> MockBankAccount | None:
        if account_id == self.settlement_account:
            MockBankAccount.objects.get_or_create(
                custodian=self.code,
                account_id=account_id,
                defaults={"name": "FinAegis omnibus account", "created_at": _now()},
            )
        accounts = MockBankAccount.objects.filter(custodian=self.code, account_id=account_id)
        if lock:
            accounts = accounts.select_for_update()
        return accounts.first()

    def _external_ok(self, account_id: str) -> bool:
        return bool(ACCOUNT_ID.match(account_id)) and account_id not in self.closed_accounts

    def _move(self, account: MockBankAccount | None, asset_code: str, amount: int) -> None:
        if account is None:
            return  # an account at another bank: not on these books
        account.balances[asset_code] = account.balances.get(asset_code, 0) + amount
        account.save(update_fields=["balances"])

    def _complete(self, tx: MockBankTransaction, at: dt.datetime) -> None:
        self._move(self._held(tx.to_account, lock=True), tx.asset_code, tx.amount)
        tx.status, tx.completed_at = COMPLETED, at
        tx.save(update_fields=["status", "completed_at"])

    def _settle(self, tx: MockBankTransaction) -> MockBankTransaction:
        if tx.status == PENDING and tx.settle_at is not None and tx.settle_at <= _now():
            self._complete(tx, tx.settle_at)
        return tx

    def _settle_due(self) -> None:
        with transaction.atomic():
            due = MockBankTransaction.objects.select_for_update().filter(
                custodian=self.code, status=PENDING, settle_at__lte=_now()
            )
            for tx in due.order_by("created_at"):
                self._settle(tx)

    def _transaction(self, transaction_id: str, *, lock: bool = True) -> MockBankTransaction:
        rows = MockBankTransaction.objects.filter(custodian=self.code, pk=transaction_id)
        tx = (rows.select_for_update() if lock else rows).first()
        if tx is None:
            raise CustodianRejected(
                f"{self.name}: no transaction {transaction_id}",
                details={"transaction_id": transaction_id},
            )
        return tx

    def _check(self, request: TransferRequest) -> None:
        if not isinstance(request.amount, int) or request.amount <= 0:
            raise CustodianRejected(f"{self.name}: the amount must be a positive integer")
        if request.asset_code not in self.supported_assets:
            raise CustodianRejected(
                f"{self.name}: {request.asset_code} is not supported",
                details={"asset_code": request.asset_code},
            )
        if not request.reference:
            raise CustodianRejected(f"{self.name}: a reference is required")
        ends = (request.from_account, request.to_account)
        held = [self._held(account_id) for account_id in ends]
        if all(account is None for account in held):
            raise CustodianRejected(f"{self.name}: neither account is held here")
        for account_id, account in zip(ends, held, strict=True):
            if account is None and not self._external_ok(account_id):
                raise CustodianRejected(
                    f"{self.name}: account {account_id} is closed or unknown",
                    details={"account": account_id},
                )
            if account is not None and account.status != "active":
                raise CustodianRejected(
                    f"{self.name}: account {account_id} is closed", details={"account": account_id}
                )

    # --- the protocol --------------------------------------------------------------------------

    def get_balance(self, account_id: str, asset_code: str) -> Balance:
        timed_out = self._enter("get_balance", f"{account_id}:{asset_code}")
        self._settle_due()
        account = self._held(account_id)
        if account is None:
            raise CustodianRejected(
                f"{self.name}: account {account_id} is not held here",
                details={"account": account_id},
            )
        if timed_out:
            raise self._timeout("get_balance")
        return Balance(account_id, asset_code, account.balances.get(asset_code, 0))

    def get_account_info(self, account_id: str) -> AccountInfo:
        timed_out = self._enter("get_account_info", account_id)
        self._settle_due()
        account = self._held(account_id)
        if timed_out:
            raise self._timeout("get_account_info")
        if account is not None:
            return AccountInfo(account_id, account.name, account.status, True, account.balances)
        if not ACCOUNT_ID.match(account_id):
            raise CustodianRejected(f"{self.name}: {account_id!r} is not an account id")
        status = "closed" if account_id in self.closed_accounts else "active"
        return AccountInfo(account_id, "", status, False, {})

    def initiate_transfer(self, request: TransferRequest) -> CustodianTransaction:
        timed_out = self._enter("initiate_transfer", request.reference)
        now = _now()
        with transaction.atomic():
            tx = (
                MockBankTransaction.objects.select_for_update()
                .filter(custodian=self.code, reference=request.reference)
                .first()
            )
            if tx is not None:
                same = (tx.from_account, tx.to_account, tx.asset_code, tx.amount) == (
                    request.from_account,
                    request.to_account,
                    request.asset_code,
                    request.amount,
                )
                if not same:
                    raise CustodianRejected(
                        f"{self.name}: reference {request.reference} belongs to another transfer",
                        details={"reference": request.reference},
                    )
                self._settle(tx)
            else:
                tx = self._create(request, now)
        if timed_out:
            raise self._timeout("initiate_transfer")
        return _as_transaction(tx)

    def _create(self, request: TransferRequest, now: dt.datetime) -> MockBankTransaction:
        self._check(request)
        source = self._held(request.from_account, lock=True)
        if source is not None:
            available = source.balances.get(request.asset_code, 0)
            if available < request.amount:
                raise CustodianRejected(
                    f"{self.name}: insufficient funds in {request.from_account}",
                    details={"available": available, "requested": request.amount},
                )
            self._move(source, request.asset_code, -request.amount)  # held until it settles
        stuck = bool(self.stuck_rate) and self._rng("stuck", request.reference).random() < (
            self.stuck_rate
        )
        settle_at = None if stuck else now + dt.timedelta(seconds=self.settle_after_seconds)
        tx = MockBankTransaction.objects.create(
            transaction_id=f"MB{uuid.uuid4().hex[:20].upper()}",
            custodian=self.code,
            reference=request.reference,
            from_account=request.from_account,
            to_account=request.to_account,
            asset_code=request.asset_code,
            amount=request.amount,
            status=PENDING,
            settle_at=settle_at,
            created_at=now,
        )
        if settle_at is not None and settle_at <= now:
            self._complete(tx, now)
        return tx

    def get_transaction_status(self, transaction_id: str) -> CustodianTransaction:
        timed_out = self._enter("get_transaction_status", transaction_id)
        with transaction.atomic():
            tx = self._settle(self._transaction(transaction_id))
        if timed_out:
            raise self._timeout("get_transaction_status")
        return _as_transaction(tx)

    def cancel_transaction(self, transaction_id: str) -> CustodianTransaction:
        timed_out = self._enter("cancel_transaction", transaction_id)
        with transaction.atomic():
            tx = self._settle(self._transaction(transaction_id))
            if tx.status == COMPLETED:
                raise CustodianRejected(
                    f"{self.name}: transaction {transaction_id} has settled; it cannot be "
                    "cancelled",
                    details={"transaction_id": transaction_id, "status": tx.status},
                )
            if tx.status == PENDING:
                self._move(self._held(tx.from_account, lock=True), tx.asset_code, tx.amount)
                tx.status, tx.completed_at = CANCELLED, _now()
                tx.save(update_fields=["status", "completed_at"])
        if timed_out:
            raise self._timeout("cancel_transaction")
        return _as_transaction(tx)

    def get_supported_assets(self) -> list[str]:
        if self._enter("get_supported_assets"):
            raise self._timeout("get_supported_assets")
        return list(self.supported_assets)

    def validate_account(self, account_id: str) -> bool:
        timed_out = self._enter("validate_account", account_id)
        account = self._held(account_id)
        if timed_out:
            raise self._timeout("validate_account")
        if account is not None:
            return account.status == "active"
        return self._external_ok(account_id)

    def get_transaction_history(
        self, account_id: str, *, since: dt.datetime | None = None, limit: int = 100
    ) -> list[CustodianTransaction]:
        timed_out = self._enter("get_transaction_history", account_id)
        self._settle_due()
        rows = MockBankTransaction.objects.filter(custodian=self.code).filter(
            Q(from_account=account_id) | Q(to_account=account_id)
        )
        if since is not None:
            rows = rows.filter(created_at__gte=since)
        history = [_as_transaction(tx) for tx in rows.order_by("-created_at")[:limit]]
        if timed_out:
            raise self._timeout("get_transaction_history")
        return history

    # --- the sandbox: what a real bank's test environment offers, never used by workflows ------

    def open_customer_account(self, account_id: str, *, name: str) -> MockBankAccount:
        """A customer's own account here, opened once with the configured opening balances
        (with DEBUG every customer gets some money to deposit; otherwise none)."""
        opening = self.customer_opening_balances
        if opening is None:
            opening = settings.MOCK_BANK_CUSTOMER_OPENING_BALANCES
        account, _ = MockBankAccount.objects.get_or_create(
            custodian=self.code,
            account_id=account_id,
            defaults={"name": name[:200], "balances": dict(opening), "created_at": _now()},
        )
        return account

    def fund(self, account_id: str, asset_code: str, amount: int) -> None:
        """Money arrives in a held account from outside any workflow (a wire we did not start);
        a negative amount is money the bank took (a fee)."""
        with transaction.atomic():
            account = self._held(account_id, lock=True)
            if account is None:
                raise CustodianRejected(f"{self.name}: account {account_id} is not held here")
            self._move(account, asset_code, amount)

    def fail_transaction(self, transaction_id: str, reason: str) -> None:
        """The bank gives up on a pending transfer (the receiving bank bounced it)."""
        with transaction.atomic():
            tx = self._transaction(transaction_id)
            if tx.status != PENDING:
                raise CustodianRejected(f"{self.name}: {transaction_id} is {tx.status}")
            self._move(self._held(tx.from_account, lock=True), tx.asset_code, tx.amount)
            tx.status, tx.failure_reason, tx.completed_at = FAILED, reason[:200], _now()
            tx.save(update_fields=["status", "failure_reason", "completed_at"])


def _as_transaction(tx: MockBankTransaction) -> CustodianTransaction:
    return CustodianTransaction(
        transaction_id=tx.transaction_id,
        reference=tx.reference,
        status=tx.status,
        from_account=tx.from_account,
        to_account=tx.to_account,
        asset_code=tx.asset_code,
        amount=tx.amount,
        created_at=tx.created_at,
        completed_at=tx.completed_at,
        failure_reason=tx.failure_reason,
    )
