"""Write side of payments: every movement of money is one balanced journal entry.

A transfer, deposit, withdrawal or conversion builds a journal entry and posts it through the
posting kernel (apps/accounts/posting.py), which locks the accounts, checks the balance and the
rules and records the postings, together with a Transfer aggregate that describes the entry; all
of it commits together or not at all. Deposits and withdrawals post against the custodian's
settlement account (only the custodian workflows call them: money enters and leaves through a
custodian) and conversions against the FX position account; those system accounts may go
negative, customer accounts never.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings

from apps.accounts.aggregates import Account
from apps.accounts.models import Account as AccountView
from apps.accounts.posting import (
    JournalEntry,
    Leg,
    Mode,
    accounts_lock,
    amount_check,
    entry_apply,
    entry_post,
    positive_amount,
    transfer_legs,
)
from apps.accounts.services import FX_POSITION, settlement_code, system_account_uuid
from apps.assets.models import AssetType
from apps.assets.selectors import asset_get_active, assets_of_type, convert, value_at_mid
from apps.core import store
from apps.core.context import current_actor
from apps.core.errors import (
    AccountFrozen,
    AggregateNotFound,
    DestinationAccountFrozen,
    DomainError,
    InsufficientFunds,
    InvalidInput,
    NotFound,
    SameAccount,
    SourceAccountFrozen,
    TransferNotReversible,
)
from apps.core.events import DomainEvent
from apps.core.idempotency import ReplayedDomainError, request_fingerprint, run_idempotent
from apps.core.projection import EventRecord
from apps.payments.aggregates import MovementRequest, Transfer, check_movement
from apps.payments.events import TransferCompleted
from apps.payments.models import MovementRequest as MovementRequestView
from apps.payments.models import Transfer as TransferView
from apps.payments.projectors import completed_transfer

MAX_REFERENCE_LENGTH = 255
R = TypeVar("R")

if TYPE_CHECKING:
    from apps.assets.models import Asset


def _check_reference(reference: str) -> str:
    if len(reference) > MAX_REFERENCE_LENGTH:
        raise InvalidInput(details={"reference": [f"at most {MAX_REFERENCE_LENGTH} characters"]})
    return reference


def _once(idempotency_key: str | None, request: dict, create: Callable[[], TransferView]):
    """Run `create` once per caller and key; a retry gets the same transfer or the same error."""
    if idempotency_key is None:
        return create()
    result = run_idempotent(
        scope=str(current_actor()["id"]),
        key=idempotency_key,
        fingerprint=request_fingerprint(request),
        handler=lambda: (201, {"transfer_uuid": str(create().uuid)}),
    )
    if result.status_code >= 400:
        raise ReplayedDomainError(result.body, result.status_code)
    return TransferView.objects.get(uuid=result.body["transfer_uuid"])


def _record_entry(
    entry: Transfer,
    *,
    kind: str,
    source_uuid: uuid.UUID,
    target_uuid: uuid.UUID,
    from_asset: str,
    to_asset: str,
    amount: int,
    to_amount: int,
    rate: Decimal | None,
    reference: str,
    reason: str = "",
) -> None:
    entry.complete(
        kind=kind,
        from_account=source_uuid,
        to_account=target_uuid,
        from_asset=from_asset,
        to_asset=to_asset,
        amount=amount,
        to_amount=to_amount,
        rate=rate,
        reference=reference,
        actor=current_actor(),
        reason=reason,
    )


def _converted(amount: int, from_asset: str, to_asset: str) -> tuple[int, Decimal]:
    baskets = assets_of_type([from_asset, to_asset], AssetType.BASKET)
    if baskets:
        # A basket unit exists only against its reserve's components: one bought from the FX
        # position at its rate would be backed by nothing (compose and decompose instead).
        raise InvalidInput(
            details={"asset_code": [f"{', '.join(sorted(baskets))} is composed, not converted"]}
        )
    conversion = convert(amount, from_asset, to_asset)
    if conversion.converted_amount <= 0:
        raise InvalidInput(
            details={"amount": [f"too small to convert into at least one unit of {to_asset}"]}
        )
    return conversion.converted_amount, conversion.rate


def _saved_entries(stored: list[tuple[DomainEvent, EventRecord]]) -> dict[uuid.UUID, TransferView]:
    """The read models of the entries a command just saved, as projected (no query), by uuid."""
    return {
        record.aggregate_uuid: completed_transfer(evt, record)
        for evt, record in stored
        if isinstance(evt, TransferCompleted)
    }


def _saved_entry(stored: list[tuple[DomainEvent, EventRecord]]) -> TransferView:
    (view,) = _saved_entries(stored).values()
    return view


# --- transfers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferRequest:
    from_account: uuid.UUID
    to_account: uuid.UUID
    amount: int
    asset_code: str
    to_asset_code: str | None = None
    reference: str = ""


@dataclass(frozen=True)
class _CheckedTransfer:
    """A transfer request whose amount, reference and assets have been checked."""

    req: TransferRequest
    amount: int
    reference: str
    from_asset: str
    to_asset: str

    @property
    def cross(self) -> bool:
        return self.to_asset != self.from_asset

    @property
    def accounts(self) -> list[uuid.UUID]:
        fx = [system_account_uuid(FX_POSITION)] if self.cross else []
        return [self.req.from_account, self.req.to_account, *fx]


def _check_transfer(
    req: TransferRequest, active_asset: Callable[[str], Asset] = asset_get_active
) -> _CheckedTransfer:
    amount = positive_amount(req.amount)
    reference = _check_reference(req.reference)
    if req.from_account == req.to_account:
        raise SameAccount(details={"account": str(req.from_account)})
    from_asset = active_asset(req.asset_code).code
    to_asset = active_asset(req.to_asset_code).code if req.to_asset_code else from_asset
    amount_check(from_asset, amount)
    return _CheckedTransfer(req, amount, reference, from_asset, to_asset)


def _conversion_legs(
    account: uuid.UUID,
    target: uuid.UUID,
    from_asset: str,
    amount: int,
    to_asset: str,
    to_amount: int,
) -> tuple[Leg, ...]:
    """`account` pays `amount` of from_asset; `target` receives `to_amount` of to_asset; the FX
    position account is the other side of both."""
    fx = system_account_uuid(FX_POSITION)
    return (
        Leg(account, from_asset, -amount, counterparty=target if target != account else fx),
        Leg(fx, from_asset, amount, counterparty=account, kind="conversion", reference=""),
        Leg(fx, to_asset, -to_amount, counterparty=target, kind="conversion", reference=""),
        Leg(target, to_asset, to_amount, counterparty=account if target != account else fx),
    )


def _frozen_side(exc: AccountFrozen, source: uuid.UUID) -> AccountFrozen:
    """A transfer names which side is frozen."""
    side = (
        SourceAccountFrozen
        if exc.details.get("account") == str(source)
        else (DestinationAccountFrozen)
    )
    return side(details=exc.details)


def _post_transfer(
    checked: _CheckedTransfer, accounts: dict[uuid.UUID, Account], reason: str = ""
) -> Transfer:
    """Post the transfer's entry on the loaded (and locked) accounts; returns its descriptor."""
    amount, reference = checked.amount, checked.reference
    from_asset, to_asset = checked.from_asset, checked.to_asset
    source, target = checked.req.from_account, checked.req.to_account
    entry = Transfer(uuid.uuid4())
    if checked.cross:
        to_amount, rate = _converted(amount, from_asset, to_asset)
        legs = _conversion_legs(source, target, from_asset, amount, to_asset, to_amount)
    else:
        to_amount, rate = amount, None
        legs = transfer_legs(source, target, from_asset, amount)
    try:
        entry_apply(JournalEntry(entry.uuid, "transfer", legs, reference, rate), accounts)
    except AccountFrozen as exc:
        raise _frozen_side(exc, source) from None
    _record_entry(
        entry,
        kind="transfer",
        source_uuid=source,
        target_uuid=target,
        from_asset=from_asset,
        to_asset=to_asset,
        amount=amount,
        to_amount=to_amount,
        rate=rate,
        reference=reference,
        reason=reason,
    )
    return entry


@store.command
def _transfer_command(req: TransferRequest, reason: str = "") -> TransferView:
    checked = _check_transfer(req)
    accounts = accounts_lock(checked.accounts)
    entry = _post_transfer(checked, accounts, reason)
    return _saved_entry(store.save(*accounts.values(), entry))


def transfer_create(
    *,
    from_account: uuid.UUID,
    to_account: uuid.UUID,
    amount: int,
    asset_code: str,
    to_asset_code: str | None = None,
    reference: str = "",
    idempotency_key: str | None = None,
) -> TransferView:
    """Move money between two accounts; across assets when `to_asset_code` differs."""
    req = TransferRequest(from_account, to_account, amount, asset_code, to_asset_code, reference)
    request = {"op": "transfer", **{k: str(v) for k, v in req.__dict__.items()}}
    return _once(idempotency_key, request, lambda: _transfer_command(req))


# --- deposits, withdrawals, conversions ------------------------------------------------------


def _settlement_uuid(custodian: str | None) -> uuid.UUID:
    custodian = custodian or settings.DEFAULT_CUSTODIAN
    if custodian not in settings.CUSTODIANS:
        raise InvalidInput(details={"custodian": [f"unknown custodian {custodian}"]})
    return system_account_uuid(settlement_code(custodian))


@store.command
def _settlement_command(
    kind: str,
    account_uuid: uuid.UUID,
    amount: int,
    asset_code: str,
    reference: str,
    custodian: str | None,
    reason: str = "",
) -> TransferView:
    """A deposit (settlement -> account) or a withdrawal (account -> settlement)."""
    amount = positive_amount(amount)
    asset = asset_get_active(asset_code).code
    settlement = _settlement_uuid(custodian)
    source, target = (settlement, account_uuid) if kind == "deposit" else (account_uuid, settlement)
    entry = Transfer(uuid.uuid4())
    _record_entry(
        entry,
        kind=kind,
        source_uuid=source,
        target_uuid=target,
        from_asset=asset,
        to_asset=asset,
        amount=amount,
        to_amount=amount,
        rate=None,
        reference=reference,
        reason=reason,
    )
    legs = transfer_legs(source, target, asset, amount)
    return _saved_entry(entry_post(JournalEntry(entry.uuid, kind, legs, reference), entry))


def _settlement_movement(
    kind: str,
    account_uuid: uuid.UUID,
    amount: int,
    asset_code: str,
    reference: str,
    custodian: str | None,
    idempotency_key: str | None,
) -> TransferView:
    reference = _check_reference(reference)
    request = {
        "op": kind,
        "account": str(account_uuid),
        "amount": str(amount),
        "asset": asset_code,
        "reference": reference,
        "custodian": custodian or "",
    }
    return _once(
        idempotency_key,
        request,
        lambda: _settlement_command(kind, account_uuid, amount, asset_code, reference, custodian),
    )


def deposit_create(
    *,
    account_uuid: uuid.UUID,
    amount: int,
    asset_code: str,
    reference: str = "",
    custodian: str | None = None,
    idempotency_key: str | None = None,
) -> TransferView:
    """Money arrived at the custodian for this account: credit it against the settlement account."""
    return _settlement_movement(
        "deposit", account_uuid, amount, asset_code, reference, custodian, idempotency_key
    )


def withdrawal_create(
    *,
    account_uuid: uuid.UUID,
    amount: int,
    asset_code: str,
    reference: str = "",
    custodian: str | None = None,
    idempotency_key: str | None = None,
) -> TransferView:
    """Pay money out through the custodian: debit the account against the settlement account."""
    return _settlement_movement(
        "withdrawal", account_uuid, amount, asset_code, reference, custodian, idempotency_key
    )


@store.command
def _conversion_command(
    account_uuid: uuid.UUID, from_asset: str, to_asset: str, amount: int
) -> TransferView:
    amount = positive_amount(amount)
    from_asset = asset_get_active(from_asset).code
    to_asset = asset_get_active(to_asset).code
    if from_asset == to_asset:
        raise InvalidInput(details={"to_asset": ["must differ from from_asset"]})
    to_amount, rate = _converted(amount, from_asset, to_asset)
    entry = Transfer(uuid.uuid4())
    _record_entry(
        entry,
        kind="conversion",
        source_uuid=account_uuid,
        target_uuid=account_uuid,
        from_asset=from_asset,
        to_asset=to_asset,
        amount=amount,
        to_amount=to_amount,
        rate=rate,
        reference="",
    )
    legs = _conversion_legs(account_uuid, account_uuid, from_asset, amount, to_asset, to_amount)
    return _saved_entry(entry_post(JournalEntry(entry.uuid, "conversion", legs, "", rate), entry))


def conversion_create(
    *,
    account_uuid: uuid.UUID,
    from_asset: str,
    to_asset: str,
    amount: int,
    idempotency_key: str | None = None,
) -> TransferView:
    """Exchange one asset for another inside one account at the current rate."""
    request = {
        "op": "conversion",
        "account": str(account_uuid),
        "from": from_asset,
        "to": to_asset,
        "amount": str(amount),
    }
    return _once(
        idempotency_key,
        request,
        lambda: _conversion_command(account_uuid, from_asset, to_asset, amount),
    )


# --- reversal --------------------------------------------------------------------------------


def _reversal_legs(transfer: Transfer) -> tuple[Leg, ...]:
    """The original entry's legs mirrored: what was credited is debited and the other way round."""
    source, target = uuid.UUID(transfer.from_account), uuid.UUID(transfer.to_account)
    if transfer.from_asset == transfer.to_asset:
        return transfer_legs(target, source, transfer.to_asset, transfer.to_amount)
    fx = system_account_uuid(FX_POSITION)
    return (
        Leg(target, transfer.to_asset, -transfer.to_amount, counterparty=source),
        Leg(fx, transfer.to_asset, transfer.to_amount, counterparty=target),
        Leg(fx, transfer.from_asset, -transfer.amount, counterparty=source),
        Leg(source, transfer.from_asset, transfer.amount, counterparty=target),
    )


def _load_transfer(transfer_uuid: uuid.UUID) -> Transfer:
    try:
        (transfer,) = store.load(Transfer, transfer_uuid)
    except AggregateNotFound:
        raise NotFound("No such transfer.", details={"uuid": str(transfer_uuid)}) from None
    return transfer


def _reverse(transfer_uuid: uuid.UUID, reason: str, mode: Mode) -> TransferView:
    transfer = _load_transfer(transfer_uuid)
    reversal_uuid = uuid.uuid4()
    transfer.reverse(
        reversal_uuid=reversal_uuid,
        reason=reason,
        forced=mode is Mode.FORCED,
        by=current_actor(),
    )
    rate = Decimal(transfer.rate) if transfer.rate else None
    entry = JournalEntry(reversal_uuid, "reversal", _reversal_legs(transfer), "", rate, mode)
    try:
        entry_post(entry, transfer)
    except InsufficientFunds as exc:
        raise TransferNotReversible(
            "The receiver no longer holds the funds; staff may force the reversal.",
            details=exc.details,
        ) from None
    return TransferView.objects.get(uuid=transfer_uuid)


@store.command
def transfer_reverse(*, transfer_uuid: uuid.UUID, reason: str, force: bool = False) -> TransferView:
    """Post the compensating entry of a transfer, once (staff).

    Refused when the receiver no longer holds the funds, unless a staff member forces it; then
    the receiver may go below zero and its account is flagged for follow-up.
    """
    return _reverse(transfer_uuid, reason, Mode.FORCED if force else Mode.NORMAL)


@store.command
def transfer_return(*, transfer_uuid: uuid.UUID, reason: str) -> TransferView:
    """Give money back to where it came from (a workflow's compensation, a returned payout).

    Not a customer action: it lands on a frozen account too. It never takes the receiver of the
    original entry below zero.
    """
    return _reverse(transfer_uuid, reason, Mode.RETURNING)


# --- bulk ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkItemResult:
    index: int
    status: str  # completed | failed
    transfer: TransferView | None = None
    error: dict[str, Any] | None = None


@store.command
def _bulk_atomic(requests: list[TransferRequest]) -> list[BulkItemResult]:
    """All transfers in one transaction, saved together: one statement per table for the batch.

    Every account of the batch is locked up front, in uuid order, so two batches can't deadlock;
    each item is posted on the in-memory accounts, so later items see earlier items' balances.
    """
    involved = {u for r in requests for u in (r.from_account, r.to_account)}
    if any(r.to_asset_code for r in requests):
        involved.add(system_account_uuid(FX_POSITION))
    accounts = accounts_lock(involved)
    active_asset = functools.cache(asset_get_active)  # a batch asks for the same few assets
    entries = [
        _indexed(index, lambda r: _post_transfer(_check_transfer(r, active_asset), accounts), req)
        for index, req in enumerate(requests)
    ]
    views = _saved_entries(store.save(*accounts.values(), *entries))
    return [BulkItemResult(i, "completed", views[e.uuid]) for i, e in enumerate(entries)]


def _indexed(index: int, fn: Callable[..., R], *args: Any) -> R:
    """Call fn; a domain error names the item of the batch it is about."""
    try:
        return fn(*args)
    except DomainError as exc:
        exc.details = {"index": index, **exc.details}
        raise


def transfer_bulk_create(*, transfers: list[TransferRequest], atomic: bool) -> list[BulkItemResult]:
    """Many transfers: all or nothing (`atomic`), or each on its own with a result per item."""
    if not transfers:
        raise InvalidInput(details={"transfers": ["must not be empty"]})
    if atomic:
        return _bulk_atomic(transfers)
    results = []
    for index, req in enumerate(transfers):
        try:
            results.append(BulkItemResult(index, "completed", _transfer_command(req)))
        except DomainError as exc:
            results.append(BulkItemResult(index, "failed", error=exc.as_dict()))
    return results


# --- manual movements by staff, with maker-checker above a threshold -------------------------


@dataclass(frozen=True)
class ManualMovementOutcome:
    """Either the movement was booked (`transfer`) or it waits for approval (`request`)."""

    transfer: TransferView | None = None
    request: MovementRequestView | None = None


def _needs_second_pair_of_eyes(amount: int, asset_code: str) -> bool:
    """Above MAKER_CHECKER_THRESHOLD_USD (in US cents, at the mid rates); with no rate to tell,
    the cautious answer is yes."""
    try:
        in_usd = value_at_mid(amount, asset_code, "USD")
    except DomainError:
        return True
    return in_usd > settings.MAKER_CHECKER_THRESHOLD_USD


@dataclass(frozen=True)
class StaffMovement:
    """Staff moving a customer's money: a ledger-only deposit or withdrawal (an adjustment), or
    a transfer out of the account (`to_account`); always with a reason."""

    kind: str
    account: uuid.UUID
    asset_code: str
    amount: int
    reason: str
    reference: str
    to_account: uuid.UUID | None = None


def _book_movement(movement: StaffMovement) -> TransferView:
    if movement.kind == "transfer":
        req = TransferRequest(
            movement.account,
            movement.to_account,
            movement.amount,
            movement.asset_code,
            reference=movement.reference,
        )
        return _transfer_command(req, movement.reason)
    return _settlement_command(
        movement.kind,
        movement.account,
        movement.amount,
        movement.asset_code,
        movement.reference,
        None,
        movement.reason,
    )


def _require_accounts_exist(*account_uuids: uuid.UUID) -> None:
    """Refused before anyone reviews it; read, not locked: the booking locks through the kernel."""
    found = set(AccountView.objects.filter(uuid__in=account_uuids).values_list("uuid", flat=True))
    for account_uuid in account_uuids:
        if account_uuid not in found:
            raise NotFound("No such account.", details={"uuid": str(account_uuid)})


@store.command
def manual_movement_submit(
    *,
    kind: str,
    account_uuid: uuid.UUID,
    asset_code: str,
    amount: int,
    reason: str,
    reference: str = "",
    to_account: uuid.UUID | None = None,
) -> ManualMovementOutcome:
    """Staff moving a customer's money (a deposit or withdrawal booked without a custodian, or a
    transfer out of the account to `to_account`): booked at once up to the threshold, otherwise
    recorded as a pending request for another staff member. Either way it carries the staff
    member (the actor) and the reason."""
    check_movement(kind=kind, reason=reason, account=account_uuid, to_account=to_account)
    amount = positive_amount(amount)
    asset_code = asset_get_active(asset_code).code
    amount_check(asset_code, amount)
    _require_accounts_exist(account_uuid, *([to_account] if to_account else []))
    movement = StaffMovement(
        kind,
        account_uuid,
        asset_code,
        amount,
        reason,
        _check_reference(reference or reason),
        to_account,
    )
    if not _needs_second_pair_of_eyes(amount, asset_code):
        return ManualMovementOutcome(transfer=_book_movement(movement))
    request = MovementRequest(uuid.uuid4())
    request.request(
        kind=kind,
        account=account_uuid,
        asset_code=asset_code,
        amount=amount,
        reference=movement.reference,
        reason=reason,
        maker=current_actor(),
        to_account=to_account,
    )
    store.save(request)
    return ManualMovementOutcome(request=MovementRequestView.objects.get(uuid=request.uuid))


def _load_movement(request_uuid: uuid.UUID) -> MovementRequest:
    try:
        return store.load_one(MovementRequest, request_uuid)
    except AggregateNotFound:
        raise NotFound("No such request.", details={"uuid": str(request_uuid)}) from None


@store.command
def movement_request_approve(*, request_uuid: uuid.UUID) -> MovementRequestView:
    """The checker books the movement; refused for the maker himself."""
    movement = _load_movement(request_uuid)
    checker = current_actor()
    movement.ensure_decidable_by(checker)  # before booking anything
    transfer = _book_movement(
        StaffMovement(
            movement.kind,
            uuid.UUID(movement.account),
            movement.asset_code,
            movement.amount,
            movement.reason,
            movement.reference,
            uuid.UUID(movement.to_account) if movement.to_account else None,
        )
    )
    movement.approve(checker=checker, transfer_uuid=transfer.uuid)
    store.save(movement)
    return MovementRequestView.objects.get(uuid=request_uuid)


@store.command
def movement_request_reject(*, request_uuid: uuid.UUID, reason: str) -> MovementRequestView:
    movement = _load_movement(request_uuid)
    movement.reject(checker=current_actor(), reason=reason)
    store.save(movement)
    return MovementRequestView.objects.get(uuid=request_uuid)


# --- demo data -------------------------------------------------------------------------------

_DEMO_LEDGER = {
    # owner role -> accounts: name -> deposits {asset: minor units}
    "customer": {
        "Everyday": {"USD": 250_000, "EUR": 120_050, "GBP": 45_000},
        "Savings": {"CHF": 1_000_000, "XAU": 2_500, "BTC": 5_000_000},
    },
    "maria": {"Main": {"EUR": 830_000, "USD": 12_345}},
    "kenji": {"Main": {"JPY": 2_500_000, "USD": 50_000}},
}


def demo_ledger_seed(*, users: dict) -> None:
    """A small bank to look at: accounts in several assets, transfers, a conversion, a reversal.

    Runs only once: a second `make run` finds the demo customer's accounts and leaves all alone.
    """
    from apps.accounts.models import Account as AccountView
    from apps.accounts.services import account_open

    if AccountView.objects.filter(owner=users["customer"]).exists():
        return
    opened = {}
    for role, accounts in _DEMO_LEDGER.items():
        for name, deposits in accounts.items():
            account = account_open(name=name, owner_uuid=users[role].uuid)
            opened[(role, name)] = account.uuid
            for asset_code, amount in deposits.items():
                deposit_create(
                    account_uuid=account.uuid,
                    amount=amount,
                    asset_code=asset_code,
                    reference="Opening deposit",
                )
    everyday, savings = opened[("customer", "Everyday")], opened[("customer", "Savings")]
    maria, kenji = opened[("maria", "Main")], opened[("kenji", "Main")]
    transfer_create(
        from_account=everyday, to_account=maria, amount=4_999, asset_code="USD", reference="Dinner"
    )
    transfer_create(
        from_account=maria,
        to_account=everyday,
        amount=20_000,
        asset_code="EUR",
        to_asset_code="USD",
        reference="Rent share",
    )
    transfer_create(from_account=kenji, to_account=everyday, amount=15_000, asset_code="JPY")
    conversion_create(account_uuid=everyday, from_asset="USD", to_asset="EUR", amount=10_000)
    withdrawal_create(account_uuid=savings, amount=100_000, asset_code="CHF", reference="ATM")
    mistaken = transfer_create(
        from_account=everyday, to_account=kenji, amount=1_000, asset_code="GBP", reference="Typo"
    )
    transfer_reverse(transfer_uuid=mistaken.uuid, reason="Sent to the wrong account")
