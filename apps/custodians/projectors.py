"""custodians events -> balances, reconciliations, discrepancies, webhook events; workflows
events of the custodian deposit and withdrawal runs -> the customers' deposits and withdrawals."""

from __future__ import annotations

from apps.core.projection import EventRecord, Projector
from apps.custodians.events import (
    BalancesSynced,
    DiscrepancyCleared,
    DiscrepancyFound,
    DiscrepancyResolved,
    Reconciled,
    WebhookReceived,
)
from apps.custodians.models import (
    CustodianBalance,
    CustodianDiscrepancy,
    CustodianMovement,
    CustodianReconciliation,
    CustodianWebhookEvent,
)
from apps.custodians.workflows import CUSTODIAN_DEPOSIT, CUSTODIAN_WITHDRAWAL, TRANSFER_STEPS
from apps.workflows.events import (
    StepCompleted,
    WorkflowCompensated,
    WorkflowCompleted,
    WorkflowStarted,
)

custodians_projector = Projector(
    "custodians",
    read_models=(
        CustodianDiscrepancy,
        CustodianReconciliation,
        CustodianBalance,
        CustodianWebhookEvent,
    ),
)
Status = CustodianDiscrepancy.Status


@custodians_projector.on(BalancesSynced)
def _synced(evt: BalancesSynced, record: EventRecord) -> None:
    CustodianBalance.objects.filter(custodian=evt.custodian).exclude(
        asset_code__in=list(evt.balances)
    ).delete()
    for asset_code, amount in evt.balances.items():
        CustodianBalance.objects.update_or_create(
            custodian=evt.custodian,
            asset_code=asset_code,
            defaults={"amount": amount, "synced_at": evt.synced_at},
        )


@custodians_projector.on(Reconciled)
def _reconciled(evt: Reconciled, record: EventRecord) -> None:
    CustodianReconciliation.objects.create(
        uuid=evt.reconciliation_uuid,
        custodian=evt.custodian,
        checked_at=evt.checked_at,
        clean=all(row["difference"] == 0 for row in evt.results),
        results=evt.results,
    )


@custodians_projector.on(DiscrepancyFound)
def _found(evt: DiscrepancyFound, record: EventRecord) -> None:
    if evt.supersedes is not None:
        CustodianDiscrepancy.objects.filter(uuid=evt.supersedes).update(
            status=Status.SUPERSEDED, closed_at=record.created_at
        )
    CustodianDiscrepancy.objects.create(
        uuid=evt.discrepancy_uuid,
        custodian=evt.custodian,
        asset_code=evt.asset_code,
        ledger_balance=evt.ledger_balance,
        expected=evt.expected,
        custodian_balance=evt.custodian_balance,
        difference=evt.difference,
        status=Status.OPEN,
        reconciliation_id=evt.reconciliation_uuid,
        detected_at=record.created_at,
    )


@custodians_projector.on(DiscrepancyCleared)
def _cleared(evt: DiscrepancyCleared, record: EventRecord) -> None:
    CustodianDiscrepancy.objects.filter(uuid=evt.discrepancy_uuid).update(
        status=Status.CLEARED, closed_at=record.created_at
    )


@custodians_projector.on(DiscrepancyResolved)
def _resolved(evt: DiscrepancyResolved, record: EventRecord) -> None:
    CustodianDiscrepancy.objects.filter(uuid=evt.discrepancy_uuid).update(
        status=Status.RESOLVED, closed_at=record.created_at, note=evt.note[:500], resolved_by=evt.by
    )


@custodians_projector.on(WebhookReceived)
def _webhook(evt: WebhookReceived, record: EventRecord) -> None:
    CustodianWebhookEvent.objects.create(
        uuid=record.aggregate_uuid,
        custodian=evt.custodian,
        event_id=evt.event_id,
        event_type=evt.notification_type,
        payload=evt.payload,
        effect=evt.effect,
        received_at=record.created_at,
    )


# --- deposits and withdrawals: a read model of the workflow runs ----------------------------

# Registered on the workflows event table: a rebuild of the workflows app replays the runs'
# events and reproduces these rows too.
movements_projector = Projector("workflows", read_models=(CustodianMovement,))
MOVEMENT_KINDS = {
    CUSTODIAN_DEPOSIT: (CustodianMovement.Kind.DEPOSIT, "source"),
    CUSTODIAN_WITHDRAWAL: (CustodianMovement.Kind.WITHDRAWAL, "destination"),
}
Movement = CustodianMovement.Status


@movements_projector.on(WorkflowStarted)
def _movement_started(evt: WorkflowStarted, record: EventRecord) -> None:
    kind = MOVEMENT_KINDS.get(evt.workflow_type)
    if kind is None:
        return
    kind_name, counterparty = kind
    CustodianMovement.objects.create(
        uuid=record.aggregate_uuid,
        kind=kind_name,
        status=Movement.PENDING,
        account_uuid=evt.input["account_uuid"],
        asset_code=evt.input["asset_code"],
        amount=evt.input["amount"],
        custodian=evt.input["custodian"],
        counterparty=evt.input[counterparty],
        reference=evt.input.get("reference", ""),
        created_at=record.created_at,
    )


@movements_projector.on(StepCompleted)
def _movement_sent(evt: StepCompleted, record: EventRecord) -> None:
    if evt.step in TRANSFER_STEPS:
        CustodianMovement.objects.filter(uuid=record.aggregate_uuid).update(sent=True)


@movements_projector.on(WorkflowCompleted)
def _movement_completed(evt: WorkflowCompleted, record: EventRecord) -> None:
    CustodianMovement.objects.filter(uuid=record.aggregate_uuid).update(
        status=Movement.COMPLETED, completed_at=record.created_at
    )


@movements_projector.on(WorkflowCompensated)
def _movement_undone(evt: WorkflowCompensated, record: EventRecord) -> None:
    movements = CustodianMovement.objects.filter(uuid=record.aggregate_uuid)
    movements.filter(sent=True).update(status=Movement.RETURNED, completed_at=record.created_at)
    movements.filter(sent=False).update(status=Movement.FAILED, completed_at=record.created_at)
