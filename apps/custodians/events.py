"""Custodian events: balances they reported, reconciliations, discrepancies, inbound webhooks."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from apps.core.events import DomainEvent, event


@event("custodians.BalancesSynced")
class BalancesSynced(DomainEvent):
    custodian: str
    balances: dict[str, Any]  # asset code -> minor units, as the custodian reported them
    synced_at: dt.datetime


@event("custodians.Reconciled")
class Reconciled(DomainEvent):
    custodian: str
    reconciliation_uuid: uuid.UUID
    # [{asset_code, ledger_balance, expected, custodian_balance, difference}, ...]
    results: list[Any]
    checked_at: dt.datetime


@event("custodians.DiscrepancyFound")
class DiscrepancyFound(DomainEvent):
    custodian: str
    discrepancy_uuid: uuid.UUID
    reconciliation_uuid: uuid.UUID
    asset_code: str
    ledger_balance: int
    expected: int
    custodian_balance: int
    difference: int
    supersedes: uuid.UUID | None  # the open discrepancy of the same asset it replaces


@event("custodians.DiscrepancyCleared")
class DiscrepancyCleared(DomainEvent):
    """A later reconciliation found the custodian and the ledger agreeing again."""

    discrepancy_uuid: uuid.UUID
    reconciliation_uuid: uuid.UUID


@event("custodians.DiscrepancyResolved")
class DiscrepancyResolved(DomainEvent):
    """Staff explained the discrepancy (a fee the bank charged, a wire in transit, ...)."""

    discrepancy_uuid: uuid.UUID
    note: str
    by: dict[str, Any]


@event("custodians.WebhookReceived")
class WebhookReceived(DomainEvent):
    # Not "event_type": that name is every event's registered name (DomainEvent.event_type).
    custodian: str
    event_id: str
    notification_type: str
    payload: dict[str, Any]
    effect: dict[str, Any]  # what we did about it (runs woken, ...)
