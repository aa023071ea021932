"""Workflows that move money through a custodian: deposit, withdrawal, bulk payout.

The ledger side of each goes through the payments services (a deposit or withdrawal posting
against the custodian's settlement account, a reversal to compensate) as local steps, so a
posting and the record of its step commit together. The custodian side is called with the
step's idempotency key as the transfer reference, so a step run again after a crash finds the
transfer it made the first time.
"""

from __future__ import annotations

import datetime as dt
import uuid
from functools import partial
from typing import Any

from django.conf import settings

from apps.accounts.selectors import account_get
from apps.assets.selectors import asset_get_active
from apps.core.errors import InvalidInput
from apps.custodians.connectors import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    CircuitOpen,
    CustodianRejected,
    CustodianTransaction,
    CustodianTransientError,
    TransferRequest,
    UnknownCustodian,
)
from apps.custodians.models import ExternalAccount
from apps.custodians.registry import connector_for, custodian_config
from apps.payments.services import deposit_create, transfer_return, withdrawal_create
from apps.workflows.definition import (
    Step,
    StepContext,
    StepDelayed,
    StepError,
    StepPending,
    Workflow,
    register,
)
from apps.workflows.models import WorkflowRun as WorkflowRunView
from apps.workflows.services import workflow_start

CUSTODIAN_DEPOSIT = "custodians.deposit"
CUSTODIAN_WITHDRAWAL = "custodians.withdrawal"
BULK_PAYOUT = "custodians.bulk_payout"
MAX_PAYOUTS = 100
MAX_ACCOUNT_ID = 64
MAX_REFERENCE = 255
HISTORY_SEARCH_LIMIT = 500
CUSTODIAN_ERRORS = (CustodianTransientError,)
# The steps whose completion means the custodian accepted the transfer: undoing the run after
# that returns money that really moved there.
TRANSFER_STEPS = ("send_at_custodian", "receive_at_custodian")
# Run uuids of movements started with a reference: the same reference on the same account is
# the same movement, however often it is started (a retried request, a double click).
MOVEMENT_NAMESPACE = uuid.UUID("0f3e6c1a-52b7-4d8e-9a61-7b2c4e8d9f03")


def movement_run_uuid(workflow_type: str, item: dict[str, Any]) -> uuid.UUID | None:
    """The run uuid of a deposit or withdrawal with a reference (None without one)."""
    if not item.get("reference"):
        return None
    name = f"{workflow_type}:{item['custodian']}:{item['account_uuid']}:{item['reference']}"
    return uuid.uuid5(MOVEMENT_NAMESPACE, name)


# --- input ---------------------------------------------------------------------------------


def _field_error(field: str, message: str) -> InvalidInput:
    return InvalidInput(details={field: [message]})


def _movement(data: dict[str, Any], counterparty: str, custodian: str) -> dict[str, Any]:
    """Check one movement's input; returns it normalised (JSON values only)."""
    try:
        account_uuid = uuid.UUID(str(data.get("account_uuid")))
    except ValueError:
        raise _field_error("account_uuid", "must be a uuid") from None
    account_get(account_uuid)
    amount = data.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise _field_error("amount", "must be a positive integer of minor units")
    asset_code = asset_get_active(str(data.get("asset_code", ""))).code
    other = data.get(counterparty)
    if not isinstance(other, str) or not other or len(other) > MAX_ACCOUNT_ID:
        raise _field_error(counterparty, f"must be an account id of 1 to {MAX_ACCOUNT_ID} chars")
    reference = data.get("reference") or ""
    if not isinstance(reference, str) or len(reference) > MAX_REFERENCE:
        raise _field_error("reference", f"at most {MAX_REFERENCE} characters")
    return {
        "account_uuid": str(account_uuid),
        "amount": amount,
        "asset_code": asset_code,
        counterparty: other,
        "custodian": custodian,
        "reference": reference,
    }


def _check_own_source(item: dict[str, Any]) -> dict[str, Any]:
    """A deposit pulls money from the account owner's own registered account at the custodian;
    pulling from any account id a caller names would take someone else's money."""
    owner = account_get(uuid.UUID(item["account_uuid"])).owner_id
    registered = ExternalAccount.objects.filter(
        custodian=item["custodian"], account_id=item["source"], owner_uuid=owner
    ).exists()
    if owner is None or not registered:
        raise _field_error("source", "must be the account owner's registered account there")
    return item


def _custodian(data: dict[str, Any]) -> str:
    code = data.get("custodian") or settings.DEFAULT_CUSTODIAN
    try:
        custodian_config(str(code))
    except UnknownCustodian:
        raise _field_error("custodian", f"unknown custodian {code}") from None
    return code


# --- steps shared by the workflows ----------------------------------------------------------


def _tx_result(code: str, tx: CustodianTransaction) -> dict[str, Any]:
    return {
        "transaction_id": tx.transaction_id,
        "status": tx.status,
        "external_id": f"{code}:{tx.transaction_id}",
    }


def _check_counterparty(ctx: StepContext, *, item: dict[str, Any], field: str) -> dict[str, Any]:
    connector = connector_for(item["custodian"])
    if item["asset_code"] not in connector.get_supported_assets():
        raise StepError(
            f"{item['custodian']} does not hold {item['asset_code']}",
            details={"asset_code": item["asset_code"]},
        )
    if not connector.validate_account(item[field]):
        raise StepError(
            f"{item['custodian']} refuses account {item[field]}", details={field: item[field]}
        )
    return {field: item[field], "valid": True}


def _transfer(ctx: StepContext, *, item: dict[str, Any], outgoing: bool) -> dict[str, Any]:
    """Outgoing: our omnibus account -> the destination; incoming: the source -> omnibus."""
    connector = connector_for(item["custodian"])
    ours = connector.settlement_account
    request = TransferRequest(
        from_account=ours if outgoing else item["source"],
        to_account=item["destination"] if outgoing else ours,
        asset_code=item["asset_code"],
        amount=item["amount"],
        reference=ctx.idempotency_key,
        description=item["reference"],
    )
    tx = connector.initiate_transfer(request)
    if tx.status in (FAILED, CANCELLED):
        raise StepError(
            f"the custodian {tx.status} the transfer: {tx.failure_reason}",
            details={"transaction_id": tx.transaction_id},
        )
    return _tx_result(item["custodian"], tx)


def _verify(ctx: StepContext, *, item: dict[str, Any], transfer_step: str) -> dict[str, Any]:
    connector = connector_for(item["custodian"])
    tx = connector.get_transaction_status(ctx.results[transfer_step]["transaction_id"])
    if tx.status == COMPLETED:
        return {**_tx_result(item["custodian"], tx), "completed_at": tx.completed_at}
    if tx.status == PENDING:
        raise StepPending(
            f"{tx.transaction_id} is pending", retry_after=settings.CUSTODIAN_POLL_SECONDS
        )
    raise StepError(
        f"the custodian reports the transfer {tx.status}: {tx.failure_reason}",
        details={"transaction_id": tx.transaction_id, "status": tx.status},
    )


def _find_transfer(ctx: StepContext, item: dict[str, Any]) -> CustodianTransaction | None:
    """The transfer the step made: by its id when the step completed, else (the step's outcome
    is in doubt) by its reference in the custodian's history."""
    connector = connector_for(item["custodian"])
    if ctx.result and ctx.result.get("transaction_id"):
        return connector.get_transaction_status(ctx.result["transaction_id"])
    history = connector.get_transaction_history(
        connector.settlement_account, limit=HISTORY_SEARCH_LIMIT
    )
    return next((tx for tx in history if tx.reference == ctx.idempotency_key), None)


def _undo_transfer(ctx: StepContext, *, item: dict[str, Any]) -> dict[str, Any]:
    """Compensation of a transfer at the custodian: cancel it while pending, send it back once
    settled (and wait for the return to settle), nothing if it never happened or failed."""
    connector = connector_for(item["custodian"])
    tx = _find_transfer(ctx, item)
    if tx is None:
        return {"action": "none", "reason": "the custodian has no such transfer"}
    if tx.status in (FAILED, CANCELLED):
        return {"action": "none", "transaction_id": tx.transaction_id, "status": tx.status}
    if tx.status == PENDING:
        try:
            tx = connector.cancel_transaction(tx.transaction_id)
        except CustodianRejected:
            tx = connector.get_transaction_status(tx.transaction_id)  # it settled meanwhile
        if tx.status == CANCELLED:
            return {"action": "cancelled", "transaction_id": tx.transaction_id}
    back = connector.initiate_transfer(
        TransferRequest(
            from_account=tx.to_account,
            to_account=tx.from_account,
            asset_code=tx.asset_code,
            amount=tx.amount,
            reference=f"{ctx.idempotency_key}:return",
            description=f"return of {tx.transaction_id}",
        )
    )
    if back.status == PENDING:
        raise StepPending(
            f"return {back.transaction_id} is pending", retry_after=settings.CUSTODIAN_POLL_SECONDS
        )
    if back.status != COMPLETED:
        raise StepError(
            f"the return of {tx.transaction_id} {back.status}: {back.failure_reason}",
            details={"transaction_id": tx.transaction_id, "return": back.transaction_id},
        )
    return {
        "action": "returned",
        "transaction_id": tx.transaction_id,
        "return_transaction_id": back.transaction_id,
    }


def _debit_ledger(ctx: StepContext, *, item: dict[str, Any]) -> dict[str, Any]:
    transfer = withdrawal_create(
        account_uuid=uuid.UUID(item["account_uuid"]),
        amount=item["amount"],
        asset_code=item["asset_code"],
        reference=item["reference"],
        custodian=item["custodian"],
    )
    return {"transfer_uuid": str(transfer.uuid)}


def _credit_ledger(ctx: StepContext, *, item: dict[str, Any]) -> dict[str, Any]:
    transfer = deposit_create(
        account_uuid=uuid.UUID(item["account_uuid"]),
        amount=item["amount"],
        asset_code=item["asset_code"],
        reference=item["reference"],
        custodian=item["custodian"],
    )
    return {"transfer_uuid": str(transfer.uuid)}


def _reverse_ledger(ctx: StepContext) -> dict[str, Any]:
    """Compensation of a ledger posting: the reversal's compensating entry (local, so it commits
    with the record that it was done)."""
    assert ctx.result is not None  # a local step is compensated only once it completed
    reversed_transfer = transfer_return(
        transfer_uuid=uuid.UUID(ctx.result["transfer_uuid"]),
        reason=f"workflow {ctx.run_uuid} compensated ({ctx.workflow_type})",
    )
    return {
        "transfer_uuid": ctx.result["transfer_uuid"],
        "reversal_uuid": str(reversed_transfer.reversal_uuid),
    }


def _timeout() -> int:
    return settings.CUSTODIAN_SETTLEMENT_TIMEOUT_SECONDS


def _seconds_until(at: dt.datetime | None, now: dt.datetime) -> float:
    if at is None:
        return float(settings.CUSTODIAN_CIRCUIT_BREAKER["open_seconds"])
    return max(1.0, (at - now).total_seconds())


def _breaker_delays(function):
    """An open circuit breaker did not call the custodian at all: the step is delayed until the
    breaker lets calls through again, with no attempt used and nothing compensated."""
    if function is None:
        return None

    def call(ctx: StepContext) -> dict[str, Any]:
        try:
            return function(ctx)
        except CircuitOpen as exc:
            wait = _seconds_until(exc.retry_at, ctx.now)
            raise StepDelayed(str(exc), retry_after=wait) from None

    return call


def _custodian_step(name: str, action, compensation=None, **kwargs) -> Step:
    return Step(
        name,
        _breaker_delays(action),
        _breaker_delays(compensation),
        transient=CUSTODIAN_ERRORS,
        **kwargs,
    )


# --- the workflows ---------------------------------------------------------------------------


@register
class CustodianWithdrawal(Workflow):
    """Debit the ledger -> send from our omnibus account at the custodian -> wait until the
    custodian settles it. Compensation: cancel or return at the custodian, credit back."""

    type = CUSTODIAN_WITHDRAWAL

    def validate(self, input: dict[str, Any]) -> dict[str, Any]:
        return _movement(input, "destination", _custodian(input))

    def steps(self, input: dict[str, Any]) -> list[Step]:
        return [
            _custodian_step(
                "check_destination", partial(_check_counterparty, item=input, field="destination")
            ),
            Step(
                "debit_ledger",
                partial(_debit_ledger, item=input),
                _reverse_ledger,
                local=True,
            ),
            _custodian_step(
                "send_at_custodian",
                partial(_transfer, item=input, outgoing=True),
                partial(_undo_transfer, item=input),
            ),
            _custodian_step(
                "verify_at_custodian",
                partial(_verify, item=input, transfer_step="send_at_custodian"),
                timeout_seconds=_timeout(),
            ),
        ]


@register
class CustodianDeposit(Workflow):
    """Take the money in at the custodian -> wait until it settles -> credit the ledger.
    Compensation: cancel or send back at the custodian."""

    type = CUSTODIAN_DEPOSIT

    def validate(self, input: dict[str, Any]) -> dict[str, Any]:
        return _check_own_source(_movement(input, "source", _custodian(input)))

    def steps(self, input: dict[str, Any]) -> list[Step]:
        return [
            _custodian_step(
                "check_source", partial(_check_counterparty, item=input, field="source")
            ),
            _custodian_step(
                "receive_at_custodian",
                partial(_transfer, item=input, outgoing=False),
                partial(_undo_transfer, item=input),
            ),
            _custodian_step(
                "verify_at_custodian",
                partial(_verify, item=input, transfer_step="receive_at_custodian"),
                timeout_seconds=_timeout(),
            ),
            # The last step: nothing after it can fail, so it needs no compensation.
            Step("credit_ledger", partial(_credit_ledger, item=input), local=True),
        ]


def _item(input: dict[str, Any], index: int) -> dict[str, Any]:
    return input["payouts"][index]


def _check_all(ctx: StepContext) -> dict[str, Any]:
    for item in ctx.input["payouts"]:
        _check_counterparty(ctx, item=item, field="destination")
    return {"checked": len(ctx.input["payouts"])}


def _start_items(ctx: StepContext) -> dict[str, Any]:
    """Each payout becomes its own withdrawal run, compensated on its own if it fails. Local:
    the children exist if and only if this step is recorded."""
    children = []
    for index, item in enumerate(ctx.input["payouts"]):
        # A payout with a reference is the same run as a withdrawal started with it on its own.
        run_uuid = movement_run_uuid(CUSTODIAN_WITHDRAWAL, item)
        child = workflow_start(
            workflow_type=CUSTODIAN_WITHDRAWAL,
            input=item,
            run_uuid=run_uuid or uuid.uuid5(ctx.run_uuid, f"payout:{index}"),
            parent=ctx.run_uuid,
        )
        children.append(str(child.uuid))
    return {"runs": children}


def _collect(ctx: StepContext) -> dict[str, Any]:
    order = ctx.results["start_payouts"]["runs"]
    children = {
        str(run_uuid): status
        for run_uuid, status in WorkflowRunView.objects.filter(uuid__in=order).values_list(
            "uuid", "status"
        )
    }
    active = [run for run in order if children.get(run) in ("running", "compensating", None)]
    if active:
        raise StepPending(
            f"{len(active)} payout(s) still running", retry_after=settings.CUSTODIAN_POLL_SECONDS
        )
    items = [{"index": i, "run": run, "status": children[run]} for i, run in enumerate(order)]
    return {
        "items": items,
        "completed": sum(item["status"] == "completed" for item in items),
        "compensated": sum(item["status"] == "compensated" for item in items),
        "failed": sum(item["status"] == "failed" for item in items),
    }


@register
class BulkPayout(Workflow):
    """Many withdrawals through one custodian.

    Atomic: one saga over every item (debit all, send all, verify all); any failure undoes every
    item that was done, sent money included (cancelled or returned at the custodian). Not
    atomic: each item is its own withdrawal run, and the batch reports how each one ended.
    """

    type = BULK_PAYOUT

    def validate(self, input: dict[str, Any]) -> dict[str, Any]:
        custodian = _custodian(input)
        payouts = input.get("payouts")
        if not isinstance(payouts, list) or not 1 <= len(payouts) <= MAX_PAYOUTS:
            raise _field_error("payouts", f"must be a list of 1 to {MAX_PAYOUTS} payouts")
        atomic = input.get("atomic", True)
        if not isinstance(atomic, bool):
            raise _field_error("atomic", "must be true or false")
        items = []
        for index, payout in enumerate(payouts):
            if not isinstance(payout, dict):
                raise _field_error("payouts", f"item {index} must be an object")
            try:
                items.append(_movement(payout, "destination", custodian))
            except InvalidInput as exc:
                raise InvalidInput(details={"index": index, **exc.details}) from None
        return {"custodian": custodian, "atomic": atomic, "payouts": items}

    def steps(self, input: dict[str, Any]) -> list[Step]:
        if not input["atomic"]:
            return [
                Step("start_payouts", _start_items, local=True),
                Step(
                    "collect_payouts",
                    _collect,
                    timeout_seconds=2 * _timeout(),
                ),
            ]
        indexes = range(len(input["payouts"]))
        return [
            _custodian_step("check_destinations", _check_all),
            *(
                Step(
                    f"debit:{i}",
                    partial(_debit_ledger, item=_item(input, i)),
                    _reverse_ledger,
                    local=True,
                )
                for i in indexes
            ),
            *(
                _custodian_step(
                    f"send:{i}",
                    partial(_transfer, item=_item(input, i), outgoing=True),
                    partial(_undo_transfer, item=_item(input, i)),
                )
                for i in indexes
            ),
            *(
                _custodian_step(
                    f"verify:{i}",
                    partial(_verify, item=_item(input, i), transfer_step=f"send:{i}"),
                    timeout_seconds=_timeout(),
                )
                for i in indexes
            ),
        ]
