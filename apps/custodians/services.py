"""Write side of custodians: start the custodian workflows, sync and reconcile balances,
receive webhooks, reset a circuit breaker.

Calls to a custodian never happen inside one of our transactions: a slow bank must not hold
row locks, and a rolled-back transaction cannot take back what the bank did. Each service asks
the custodian first, then records what it said in a command of its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.accounts.posting import amount_check
from apps.accounts.selectors import account_get, balances_by_asset
from apps.accounts.services import settlement_code, system_account_uuid
from apps.assets.models import Asset, AssetType
from apps.assets.selectors import asset_get_active
from apps.core import store
from apps.core.context import current_actor
from apps.core.errors import (
    AccountClosed,
    AccountFrozen,
    AggregateNotFound,
    AssetNotDepositable,
    DomainError,
    InsufficientFunds,
    InvalidInput,
    NotFound,
)
from apps.custodians.aggregates import (
    Custodian,
    CustodianWebhook,
    custodian_uuid,
    webhook_uuid,
)
from apps.custodians.connectors import (
    CustodianConnector,
    CustodianError,
    CustodianTransientError,
    UnknownCustodian,
)
from apps.custodians.models import (
    CustodianDiscrepancy,
    CustodianReconciliation,
    CustodianWebhookEvent,
    ExternalAccount,
    MockBankAccount,
)
from apps.custodians.registry import breaker_for, connector_for, custodian_codes, custodian_config
from apps.custodians.workflows import (
    BULK_PAYOUT,
    CUSTODIAN_DEPOSIT,
    CUSTODIAN_WITHDRAWAL,
    movement_run_uuid,
)
from apps.workflows.models import WorkflowRun as WorkflowRunView
from apps.workflows.selectors import workflow_runs_waiting_on
from apps.workflows.services import workflow_start, workflow_wake

logger = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 256 * 1024


def _now() -> dt.datetime:
    """The custodian services' clock; tests replace it for webhook timestamps."""
    return timezone.now()


# --- the custodian workflows -----------------------------------------------------------------


class MovementReferenceReused(DomainError):
    code = "REFERENCE_REUSED"
    default_message = (
        "A deposit or withdrawal with this reference exists on this account with other details."
    )
    http_status = 409


def _custodian_code(custodian: str | None) -> str:
    code = custodian or settings.DEFAULT_CUSTODIAN
    try:
        custodian_config(code)
    except UnknownCustodian:
        raise InvalidInput(details={"custodian": [f"unknown custodian {code}"]}) from None
    return code


def _checked_amount(asset_code: str, amount: Any) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidInput(details={"amount": ["must be a positive integer of minor units"]})
    return amount_check(asset_code, amount)


def _depositable(asset_code: str) -> str:
    """An active asset that is not a basket: GCU and other baskets exist only by composing, so
    no custodian can hold them (what a custodian holds is asked of it: custodian_asset_check)."""
    code = asset_get_active(asset_code).code
    if Asset.objects.filter(code=code, type=AssetType.BASKET).exists():
        raise AssetNotDepositable(details={"asset_code": code, "reason": "a basket is composed"})
    return code


def custodian_asset_check(*, asset_code: str, custodian: str | None = None) -> str:
    """Refuse an asset the custodian does not hold (ASSET_NOT_DEPOSITABLE), asking it; returns
    the asset's code.

    Call it outside any transaction (a slow bank must not hold our locks). A custodian that
    does not answer proves nothing: the workflow's first step asks again and fails the run.
    """
    code = _custodian_code(custodian)
    asset = _depositable(asset_code)
    try:
        supported = connector_for(code).get_supported_assets()
    except CustodianTransientError:
        return asset
    if asset not in supported:
        raise AssetNotDepositable(details={"asset_code": asset, "custodian": code})
    return asset


def _check_standing(account) -> None:
    if account.closed:
        raise AccountClosed(details={"account": str(account.uuid)})
    if account.frozen:
        raise AccountFrozen(details={"account": str(account.uuid)})


def _check_can_pay(account, asset_code: str, amount: int) -> None:
    """The debit step's rule, told in the request: a withdrawal beyond the balance is refused
    before any run exists (the debit step still decides, under the account's lock)."""
    current = balances_by_asset(account.uuid).get(asset_code, 0)
    if current < amount:
        raise InsufficientFunds(
            details={
                "account": str(account.uuid),
                "asset_code": asset_code,
                "current_balance": current,
                "requested": amount,
            }
        )


def _registered_account(account, custodian: str) -> str:
    if account.owner_id is None:
        raise InvalidInput(details={"account": ["has no owner with an account at the custodian"]})
    return external_account_ensure(owner_uuid=account.owner_id, custodian=custodian).account_id


def _same_movement(run: WorkflowRunView, input: dict[str, Any], counterparty: str) -> None:
    """A start with a reference used before returns the first run, if it is the same one."""
    fields = ("amount", "asset_code", counterparty)
    if any(run.input.get(f) != input[f] for f in fields):
        raise MovementReferenceReused(
            details={"reference": input["reference"], "existing": str(run.uuid)}
        )


def _movement_start(
    workflow_type: str, input: dict[str, Any], counterparty: str
) -> WorkflowRunView:
    run_uuid = movement_run_uuid(workflow_type, input)
    existing = WorkflowRunView.objects.filter(uuid=run_uuid).first() if run_uuid else None
    if existing is not None:
        _same_movement(existing, input, counterparty)
        return existing
    return workflow_start(workflow_type=workflow_type, input=input, run_uuid=run_uuid)


def custodian_withdrawal_start(
    *,
    account_uuid: uuid.UUID,
    amount: int,
    asset_code: str,
    destination: str | None = None,
    custodian: str | None = None,
    reference: str = "",
) -> WorkflowRunView:
    """Pay money out of an account to `destination` (default: the owner's registered account at
    the custodian) through the custodian; runs as a workflow, so the call returns once the run
    is recorded. The workflow debits the account first and credits it back if the payout fails
    or the bank returns it.

    A frozen or closed account, or a balance short of the amount, is refused here, before any
    run exists. The same reference on the same account is the same withdrawal: starting it
    again returns the first run (REFERENCE_REUSED if the details differ)."""
    code = _custodian_code(custodian)
    asset = _depositable(asset_code)
    amount = _checked_amount(asset, amount)
    account = account_get(account_uuid)
    _check_standing(account)
    _check_can_pay(account, asset, amount)
    input = {
        "account_uuid": str(account_uuid),
        "amount": amount,
        "asset_code": asset,
        "destination": destination or _registered_account(account, code),
        "custodian": code,
        "reference": reference,
    }
    return _movement_start(CUSTODIAN_WITHDRAWAL, input, "destination")


def custodian_deposit_start(
    *,
    account_uuid: uuid.UUID,
    amount: int,
    asset_code: str,
    source: str | None = None,
    custodian: str | None = None,
    reference: str = "",
) -> WorkflowRunView:
    """Take money in from `source` (the owner's registered account at the custodian, the
    default) and credit the account once the custodian confirms it settled.

    Nothing is credited before the custodian holds the money, so every unit in the ledger is
    backed. The same reference on the same account is the same deposit."""
    code = _custodian_code(custodian)
    asset = _depositable(asset_code)
    amount = _checked_amount(asset, amount)
    account = account_get(account_uuid)
    _check_standing(account)
    input = {
        "account_uuid": str(account_uuid),
        "amount": amount,
        "asset_code": asset,
        "source": source or _registered_account(account, code),
        "custodian": code,
        "reference": reference,
    }
    return _movement_start(CUSTODIAN_DEPOSIT, input, "source")


# --- the customers' own accounts at the custodians ------------------------------------------


def _external_account_id(owner_uuid: uuid.UUID) -> str:
    return f"CUST-{owner_uuid.hex[:24].upper()}"


def external_account_register(
    *, owner_uuid: uuid.UUID, account_id: str, custodian: str | None = None
) -> ExternalAccount:
    """Record that `account_id` at the custodian belongs to the user (onboarding)."""
    code = _custodian_code(custodian)
    registered, _ = ExternalAccount.objects.get_or_create(
        custodian=code,
        account_id=account_id,
        defaults={"owner_uuid": owner_uuid, "created_at": _now()},
    )
    if registered.owner_uuid != owner_uuid:
        raise InvalidInput(details={"account_id": ["is registered to someone else"]})
    return registered


def external_account_ensure(
    *, owner_uuid: uuid.UUID, custodian: str | None = None
) -> ExternalAccount:
    """The user's registered account at the custodian; the first time, one is registered (and
    opened at a mock bank, with its configured opening balances in development and demos)."""
    from apps.custodians.mock_bank import MockBank

    code = _custodian_code(custodian)
    existing = (
        ExternalAccount.objects.filter(custodian=code, owner_uuid=owner_uuid)
        .order_by("created_at", "account_id")
        .first()
    )
    if existing is not None:
        return existing
    registered = external_account_register(
        owner_uuid=owner_uuid, account_id=_external_account_id(owner_uuid), custodian=code
    )
    bank = connector_for(code).inner
    if isinstance(bank, MockBank):
        bank.open_customer_account(registered.account_id, name=f"customer {owner_uuid}")
    return registered


def bulk_payout_start(
    *, payouts: list[dict[str, Any]], atomic: bool, custodian: str | None = None
) -> WorkflowRunView:
    """Many withdrawals (`account_uuid`, `amount`, `asset_code`, `destination`, `reference`):
    all or nothing when `atomic`, else each on its own."""
    return workflow_start(
        workflow_type=BULK_PAYOUT,
        input={"custodian": custodian, "atomic": atomic, "payouts": payouts},
    )


# --- balances and reconciliation -------------------------------------------------------------


@dataclass(frozen=True)
class CustodianCheck:
    custodian: str
    ok: bool
    balances: dict[str, int] = field(default_factory=dict)
    reconciliation: CustodianReconciliation | None = None
    error: dict[str, Any] | None = None


def _codes(code: str | None) -> list[str]:
    if code is None:
        return custodian_codes()
    custodian_config(code)
    return [code]


def _reported_balances(connector: CustodianConnector) -> dict[str, int]:
    return {
        asset: connector.get_balance(connector.settlement_account, asset).amount
        for asset in sorted(connector.get_supported_assets())
    }


def _load_custodian(code: str) -> Custodian:
    try:
        return store.load_one(Custodian, custodian_uuid(code))
    except AggregateNotFound:
        return Custodian(custodian_uuid(code))


@store.command
def _balances_record(code: str, balances: dict[str, int]) -> None:
    custodian = _load_custodian(code)
    custodian.sync_balances(code=code, balances=balances, at=_now())
    store.save(custodian)


def _comparisons(code: str, reported: dict[str, int], open_assets: set[str]) -> list[dict]:
    ledger = balances_by_asset(system_account_uuid(settlement_code(code)))
    rows = []
    for asset in sorted(set(reported) | {a for a, b in ledger.items() if b} | open_assets):
        ledger_balance = ledger.get(asset, 0)
        expected = -ledger_balance  # the settlement account mirrors the omnibus account
        custodian_balance = reported.get(asset, 0)
        rows.append(
            {
                "asset_code": asset,
                "ledger_balance": ledger_balance,
                "expected": expected,
                "custodian_balance": custodian_balance,
                "difference": custodian_balance - expected,
            }
        )
    return rows


@store.command
def _reconciliation_record(code: str, reported: dict[str, int]) -> CustodianReconciliation:
    # Locking the settlement account too would hold up every deposit and withdrawal; the
    # comparison reads its committed balance, and a movement in flight shows as a difference
    # that the next reconciliation clears.
    custodian = _load_custodian(code)
    at = _now()
    custodian.sync_balances(code=code, balances=reported, at=at)
    reconciliation_uuid = uuid.uuid4()
    comparisons = _comparisons(code, reported, set(custodian.open_discrepancies))
    custodian.reconcile(
        code=code, reconciliation_uuid=reconciliation_uuid, comparisons=comparisons, at=at
    )
    store.save(custodian)
    return CustodianReconciliation.objects.get(uuid=reconciliation_uuid)


def _unreachable(code: str, exc: CustodianError, what: str) -> CustodianCheck:
    logger.error("custodian %s: %s failed: %s (%s)", code, what, exc.message, exc.code)
    return CustodianCheck(code, ok=False, error=exc.as_dict())


def custodian_balances_sync(*, code: str | None = None) -> list[CustodianCheck]:
    """Ask each custodian (or just `code`) what our omnibus account holds, and record it."""
    checks = []
    for custodian in _codes(code):
        try:
            reported = _reported_balances(connector_for(custodian))
        except CustodianError as exc:
            checks.append(_unreachable(custodian, exc, "balance sync"))
            continue
        _balances_record(custodian, reported)
        checks.append(CustodianCheck(custodian, ok=True, balances=reported))
    return checks


def custodian_reconcile(*, code: str | None = None) -> list[CustodianCheck]:
    """Compare what each custodian holds with its settlement account in the ledger; record the
    comparison and a discrepancy for each asset that differs."""
    checks = []
    for custodian in _codes(code):
        try:
            reported = _reported_balances(connector_for(custodian))
        except CustodianError as exc:
            checks.append(_unreachable(custodian, exc, "reconciliation"))
            continue
        reconciliation = _reconciliation_record(custodian, reported)
        if not reconciliation.clean:
            logger.error(
                "custodian %s does not reconcile with the ledger: %s",
                custodian,
                [r for r in reconciliation.results if r["difference"]],
            )
        checks.append(
            CustodianCheck(custodian, ok=True, balances=reported, reconciliation=reconciliation)
        )
    return checks


@store.command
def custodian_discrepancy_resolve(*, discrepancy_uuid: uuid.UUID, note: str) -> None:
    """Staff explain a discrepancy; the same figures do not open a new one until the books
    agree again."""
    if not note.strip():
        raise InvalidInput(details={"note": ["say what explains the difference"]})
    discrepancy = CustodianDiscrepancy.objects.filter(uuid=discrepancy_uuid).first()
    if discrepancy is None:
        raise NotFound("No such discrepancy.", details={"uuid": str(discrepancy_uuid)})
    custodian = store.load_one(Custodian, custodian_uuid(discrepancy.custodian))
    custodian.resolve(discrepancy_uuid=discrepancy_uuid, note=note, by=current_actor())
    store.save(custodian)


def circuit_breaker_reset(*, code: str) -> None:
    """Close a custodian's circuit now (staff know it is back), forgetting its failures."""
    custodian_config(code)
    breaker_for(code).reset()
    logger.warning("custodian %s: circuit reset by %s", code, current_actor())


# --- inbound webhooks ------------------------------------------------------------------------


class InvalidWebhookSignature(DomainError):
    code = "INVALID_SIGNATURE"
    default_message = "The webhook signature is missing or wrong."
    http_status = 401


class WebhookTimestampRejected(InvalidWebhookSignature):
    code = "WEBHOOK_TIMESTAMP_REJECTED"
    default_message = "The webhook timestamp is missing, malformed or outside the tolerance."


@dataclass(frozen=True)
class WebhookOutcome:
    duplicate: bool
    event: CustodianWebhookEvent


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<raw body>", hex: what the custodian sends, and checks."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _verify_signature(code: str, body: bytes, timestamp: str | None, signature: str | None):
    secret = custodian_config(code).get("webhook_secret") or ""
    if not secret:
        # Unsigned notifications are never accepted: with no secret there is nothing to check.
        raise InvalidWebhookSignature("No webhook secret is configured for this custodian.")
    if not timestamp or not re.fullmatch(r"\d{1,12}", timestamp):
        raise WebhookTimestampRejected()
    skew = abs(_now().timestamp() - int(timestamp))
    if skew > settings.CUSTODIAN_WEBHOOK_TOLERANCE_SECONDS:
        # An old (or far-future) timestamp is a replay of a captured request, or a broken clock.
        raise WebhookTimestampRejected(details={"skew_seconds": int(skew)})
    expected = webhook_signature(secret, timestamp, body)
    given = (signature or "").removeprefix("sha256=")
    if not hmac.compare_digest(expected, given):
        raise InvalidWebhookSignature()


def _parse(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(details={"body": ["must be a JSON object"]}) from None
    if not isinstance(payload, dict):
        raise InvalidInput(details={"body": ["must be a JSON object"]})
    event_id, event_type = payload.get("id"), payload.get("type")
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 200:
        raise InvalidInput(details={"id": ["must be a string of 1 to 200 characters"]})
    if not isinstance(event_type, str) or not 1 <= len(event_type) <= 100:
        raise InvalidInput(details={"type": ["must be a string of 1 to 100 characters"]})
    if not isinstance(payload.get("data", {}), dict):
        raise InvalidInput(details={"data": ["must be an object"]})
    return payload


def _webhook_effect(code: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A transaction changed at the custodian: wake the runs waiting for it, so they do not
    wait for their next poll."""
    transaction_id = payload.get("data", {}).get("transaction_id")
    if not payload["type"].startswith("transaction.") or not isinstance(transaction_id, str):
        return {"action": "recorded"}
    woken = [
        str(run)
        for run in workflow_runs_waiting_on(f"{code}:{transaction_id}")
        if workflow_wake(run_uuid=run)
    ]
    return {"action": "woke_runs", "runs": woken}


@store.command
def _webhook_record(code: str, payload: dict[str, Any]) -> WebhookOutcome:
    hook_uuid = webhook_uuid(code, payload["id"])
    existing = CustodianWebhookEvent.objects.filter(uuid=hook_uuid).first()
    if existing is not None:
        return WebhookOutcome(duplicate=True, event=existing)
    hook = CustodianWebhook(hook_uuid)
    hook.receive(
        custodian=code,
        event_id=payload["id"],
        notification_type=payload["type"],
        payload=payload,
        effect=_webhook_effect(code, payload),
    )
    # Two deliveries of one event at the same moment: the second one's stream insert fails,
    # the command runs again, and then finds the first one's row above.
    store.save(hook)
    return WebhookOutcome(duplicate=False, event=CustodianWebhookEvent.objects.get(uuid=hook_uuid))


def custodian_webhook_receive(
    *, code: str, body: bytes, timestamp: str | None, signature: str | None
) -> WebhookOutcome:
    """Check an inbound notification (custodian known, signature right, timestamp fresh) and
    process it once per event id; a repeated event id is a duplicate and changes nothing."""
    custodian_config(code)
    if len(body) > MAX_WEBHOOK_BYTES:
        raise InvalidInput(details={"body": [f"at most {MAX_WEBHOOK_BYTES} bytes"]})
    _verify_signature(code, body, timestamp, signature)
    return _webhook_record(code, _parse(body))


# --- the mock bank's opening balances (demo data) --------------------------------------------


def mock_bank_openings_seed() -> list[str]:
    """Give each mock bank's omnibus account what the demo ledger says is held there.

    The demo's opening deposits are booked straight on the ledger (against the settlement
    account) without the mock bank hearing of them; opening its omnibus account with the same
    amounts makes the first reconciliation clean. Only for an omnibus account that does not
    exist yet, so running it again changes nothing.
    """
    from apps.custodians.mock_bank import MockBank

    opened = []
    for code in custodian_codes():
        connector = connector_for(code).inner
        if not isinstance(connector, MockBank):
            continue
        if MockBankAccount.objects.filter(
            custodian=code, account_id=connector.settlement_account
        ).exists():
            continue
        held = balances_by_asset(system_account_uuid(settlement_code(code)))
        for asset, balance in held.items():
            if balance < 0:
                connector.fund(connector.settlement_account, asset, -balance)
        connector.validate_account(connector.settlement_account)  # opens it even when empty
        opened.append(code)
    return opened


def external_accounts_seed(*, users) -> None:
    """Each demo customer's own account at each custodian (funded at a mock bank), so a
    deposit through the API works end to end."""
    for user in users:
        if user.is_staff:
            continue
        for code in custodian_codes():
            external_account_ensure(owner_uuid=user.uuid, custodian=code)


def circuit_breakers_seed() -> None:
    """A closed breaker row per configured custodian, so the console lists every one."""
    for code in custodian_codes():
        breaker_for(code).state()
