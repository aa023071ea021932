"""The Account aggregate: multi-asset balances and the rules that guard them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from apps.accounts.events import (
    AccountClosed,
    AccountCreated,
    AccountFrozen,
    AccountUnfrozen,
    MoneyAdded,
    MoneySubtracted,
)
from apps.core import errors
from apps.core.aggregates import AggregateRoot, applies

CUSTOMER = "customer"
SYSTEM = "system"
ENTRY_KINDS = ("deposit", "withdrawal", "transfer", "conversion", "reversal", "fee")


@dataclass(frozen=True)
class Posting:
    """One side of a journal entry as the account sees it."""

    asset_code: str
    amount: int
    entry_uuid: uuid.UUID
    kind: str
    counterparty: uuid.UUID | None = None
    reference: str = ""
    rate: Decimal | None = None


class Account(AggregateRoot):
    """A customer or system account holding integer minor units of any number of assets.

    Customer accounts never go below zero; system accounts (custodian settlement, fees, FX
    position) are the other side of deposits, withdrawals and conversions and may.
    """

    aggregate_type = "accounts.Account"

    def __init__(self, aggregate_uuid: uuid.UUID):
        super().__init__(aggregate_uuid)
        self.name = ""
        self.owner_uuid: str | None = None
        self.kind = CUSTOMER
        self.system_code: str | None = None
        self.frozen = False
        self.closed = False
        self.balances: dict[str, int] = {}

    # --- commands ----------------------------------------------------------------------------

    def open(
        self, *, name: str, owner_uuid: uuid.UUID | None, kind: str, system_code: str | None
    ) -> None:
        if kind not in (CUSTOMER, SYSTEM):
            raise errors.InvalidInput(details={"kind": [f"must be {CUSTOMER} or {SYSTEM}"]})
        if not name.strip():
            raise errors.InvalidInput(details={"name": ["must not be blank"]})
        self.record(
            AccountCreated(name=name, owner_uuid=owner_uuid, kind=kind, system_code=system_code)
        )

    def freeze(self, *, reason: str, by: dict[str, Any]) -> None:
        self._require_open()
        if self.frozen:
            raise errors.AccountAlreadyFrozen(details={"account": str(self.uuid)})
        self.record(AccountFrozen(reason=reason, by=by))

    def unfreeze(self, *, reason: str, by: dict[str, Any]) -> None:
        self._require_open()
        if not self.frozen:
            raise errors.AccountNotFrozen(details={"account": str(self.uuid)})
        self.record(AccountUnfrozen(reason=reason, by=by))

    def close(self, *, by: dict[str, Any], reason: str = "") -> None:
        self._require_open()
        if self.frozen:
            raise errors.AccountFrozen(details={"account": str(self.uuid)})
        held = {code: amount for code, amount in self.balances.items() if amount}
        if held:
            raise errors.AccountHasBalance(details={"account": str(self.uuid), "balances": held})
        self.record(AccountClosed(by=by, reason=reason))

    def credit(self, posting: Posting, *, forced: bool = False) -> None:
        """Put money in; `forced` (a staff-forced reversal only) passes a freeze."""
        self._require_movable(posting, allow_frozen=forced)
        balance_after = self.balance(posting.asset_code) + posting.amount
        self.record(MoneyAdded(balance_after=balance_after, **_posting_fields(posting)))

    def debit(self, posting: Posting, *, forced: bool = False) -> None:
        """Take money out; `forced` (a staff-forced reversal only) passes a freeze and may take
        a customer below zero."""
        self._require_movable(posting, allow_frozen=forced)
        current = self.balance(posting.asset_code)
        balance_after = current - posting.amount
        if balance_after < 0 and self.kind == CUSTOMER and not forced:
            raise errors.InsufficientFunds(
                details={
                    "account": str(self.uuid),
                    "asset_code": posting.asset_code,
                    "current_balance": current,
                    "requested": posting.amount,
                }
            )
        self.record(MoneySubtracted(balance_after=balance_after, **_posting_fields(posting)))

    def balance(self, asset_code: str) -> int:
        return self.balances.get(asset_code, 0)

    def _require_open(self) -> None:
        if self.closed:
            raise errors.AccountClosed(details={"account": str(self.uuid)})

    def ensure_can_post(self, *, allow_frozen: bool = False) -> None:
        """The account rules that don't depend on the amount: open, and not frozen."""
        self._require_open()
        if self.frozen and not allow_frozen:
            raise errors.AccountFrozen(details={"account": str(self.uuid)})

    def _require_movable(self, posting: Posting, *, allow_frozen: bool = False) -> None:
        self.ensure_can_post(allow_frozen=allow_frozen)
        if not isinstance(posting.amount, int) or isinstance(posting.amount, bool):
            raise errors.InvalidInput(details={"amount": ["must be an integer of minor units"]})
        if posting.amount <= 0:
            raise errors.InvalidInput(details={"amount": ["must be greater than zero"]})
        if posting.kind not in ENTRY_KINDS:
            raise errors.InvalidInput(
                details={"kind": [f"must be one of {', '.join(ENTRY_KINDS)}"]}
            )

    # --- state -------------------------------------------------------------------------------

    @applies(AccountCreated)
    def _created(self, evt: AccountCreated) -> None:
        self.name = evt.name
        self.owner_uuid = str(evt.owner_uuid) if evt.owner_uuid else None
        self.kind = evt.kind
        self.system_code = evt.system_code

    @applies(AccountFrozen)
    def _frozen(self, evt: AccountFrozen) -> None:
        self.frozen = True

    @applies(AccountUnfrozen)
    def _unfrozen(self, evt: AccountUnfrozen) -> None:
        self.frozen = False

    @applies(AccountClosed)
    def _closed(self, evt: AccountClosed) -> None:
        self.closed = True

    @applies(MoneyAdded, MoneySubtracted)
    def _moved(self, evt: MoneyAdded | MoneySubtracted) -> None:
        self.balances[evt.asset_code] = evt.balance_after


def _posting_fields(posting: Posting) -> dict[str, Any]:
    return {
        "asset_code": posting.asset_code,
        "amount": posting.amount,
        "entry_uuid": posting.entry_uuid,
        "kind": posting.kind,
        "counterparty": posting.counterparty,
        "reference": posting.reference,
        "rate": posting.rate,
    }
