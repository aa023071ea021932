"""Read side of custodians: the registered connectors and their health, balances, discrepancies,
the customers' deposits and withdrawals."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from apps.core.errors import NotFound
from apps.custodians.models import (
    CircuitBreakerState,
    CustodianBalance,
    CustodianDiscrepancy,
    CustodianMovement,
    CustodianReconciliation,
)
from apps.custodians.registry import custodian_codes, custodian_config


@dataclass(frozen=True)
class CustodianHealth:
    code: str
    name: str
    connector: str
    is_default: bool
    status: str  # available | degraded (half-open, or failing lately) | unavailable (open)
    circuit: dict[str, Any]
    last_balance_sync: dt.datetime | None
    last_reconciliation: dict[str, Any] | None
    open_discrepancies: int


def _circuit(state: CircuitBreakerState | None) -> dict[str, Any]:
    if state is None:
        return {
            "state": CircuitBreakerState.State.CLOSED,
            "consecutive_failures": 0,
            "recent_failure_rate": None,
            "opened_at": None,
            "retry_at": None,
            "last_failure_at": None,
        }
    outcomes = state.recent_outcomes
    retry_at = None
    if state.state == CircuitBreakerState.State.OPEN and state.opened_at is not None:
        retry_at = state.opened_at + dt.timedelta(
            seconds=settings.CUSTODIAN_CIRCUIT_BREAKER["open_seconds"]
        )
    return {
        "state": state.state,
        "consecutive_failures": state.consecutive_failures,
        # A ratio as a decimal string: no floats leave this API.
        "recent_failure_rate": f"{outcomes.count('0') / len(outcomes):.2f}" if outcomes else None,
        "opened_at": state.opened_at,
        "retry_at": retry_at,
        "last_failure_at": state.last_failure_at,
    }


def _status(circuit: dict[str, Any]) -> str:
    if circuit["state"] == CircuitBreakerState.State.OPEN:
        # Past retry_at the next call goes through half-open: the custodian may be back.
        if circuit["retry_at"] and circuit["retry_at"] <= timezone.now():
            return "degraded"
        return "unavailable"
    if circuit["state"] == CircuitBreakerState.State.HALF_OPEN or circuit["consecutive_failures"]:
        return "degraded"
    return "available"


def custodian_list() -> list[CustodianHealth]:
    """Every configured custodian with its circuit breaker and reconciliation state."""
    states = {s.custodian: s for s in CircuitBreakerState.objects.all()}
    healths = []
    for code in custodian_codes():
        config = custodian_config(code)
        circuit = _circuit(states.get(code))
        synced = (
            CustodianBalance.objects.filter(custodian=code)
            .order_by("-synced_at")
            .values_list("synced_at", flat=True)
            .first()
        )
        latest = CustodianReconciliation.objects.filter(custodian=code).first()
        healths.append(
            CustodianHealth(
                code=code,
                name=config.get("name", code),
                connector=config["class"].rsplit(".", 1)[-1],
                is_default=code == settings.DEFAULT_CUSTODIAN,
                status=_status(circuit),
                circuit=circuit,
                last_balance_sync=synced,
                last_reconciliation=(
                    {"checked_at": latest.checked_at, "clean": latest.clean} if latest else None
                ),
                open_discrepancies=CustodianDiscrepancy.objects.filter(
                    custodian=code, status=CustodianDiscrepancy.Status.OPEN
                ).count(),
            )
        )
    return healths


def custodian_discrepancy_list(
    *, custodian: str | None = None, status: str | None = None
) -> QuerySet[CustodianDiscrepancy]:
    discrepancies = CustodianDiscrepancy.objects.all()
    if custodian is not None:
        discrepancies = discrepancies.filter(custodian=custodian)
    if status is not None:
        discrepancies = discrepancies.filter(status=status)
    return discrepancies.order_by("-detected_at", "asset_code")


def custodian_balances(custodian: str) -> dict[str, int]:
    """What the custodian reported at the last sync, per asset."""
    return dict(
        CustodianBalance.objects.filter(custodian=custodian).values_list("asset_code", "amount")
    )


def movement_get(movement_uuid: uuid.UUID, *, kind: str) -> CustodianMovement:
    movement = CustodianMovement.objects.filter(uuid=movement_uuid, kind=kind).first()
    if movement is None:
        raise NotFound(f"No such {kind}.", details={"uuid": str(movement_uuid)})
    return movement


def movement_list(
    *, account_uuid: uuid.UUID, kind: str, status: str | None = None
) -> QuerySet[CustodianMovement]:
    """An account's deposits or withdrawals, newest first."""
    movements = CustodianMovement.objects.filter(account_uuid=account_uuid, kind=kind)
    if status is not None:
        movements = movements.filter(status=status)
    return movements.order_by("-created_at", "uuid")


def account_has_pending_movements(account_uuid: uuid.UUID) -> bool:
    """Whether a deposit or withdrawal of the account is still in progress: money may yet
    arrive for it or be credited back to it."""
    return CustodianMovement.objects.filter(
        account_uuid=account_uuid, status=CustodianMovement.Status.PENDING
    ).exists()
