"""Custodian aggregates: one per custodian (what it reported and how it reconciled), and one per
inbound webhook event (its existence is what makes a second delivery a duplicate)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from apps.core.aggregates import AggregateRoot, applies
from apps.core.errors import DomainError
from apps.custodians.events import (
    BalancesSynced,
    DiscrepancyCleared,
    DiscrepancyFound,
    DiscrepancyResolved,
    Reconciled,
    WebhookReceived,
)

# Custodian aggregates have fixed uuids derived from their code, like the system accounts.
CUSTODIAN_NAMESPACE = uuid.UUID("8d4f2b61-7c0e-4a8b-9a43-2f6d1c9e5b70")


def custodian_uuid(code: str) -> uuid.UUID:
    return uuid.uuid5(CUSTODIAN_NAMESPACE, code)


def webhook_uuid(code: str, event_id: str) -> uuid.UUID:
    return uuid.uuid5(CUSTODIAN_NAMESPACE, f"webhook:{code}:{event_id}")


class DiscrepancyNotOpen(DomainError):
    code = "DISCREPANCY_NOT_OPEN"
    default_message = "The discrepancy is not open (cleared, superseded or resolved already)."


class WebhookAlreadyProcessed(DomainError):
    code = "WEBHOOK_ALREADY_PROCESSED"
    default_message = "This webhook event has already been processed."
    http_status = 200


class Custodian(AggregateRoot):
    aggregate_type = "custodians.Custodian"

    def __init__(self, aggregate_uuid: uuid.UUID):
        super().__init__(aggregate_uuid)
        self.code = ""
        self.balances: dict[str, int] = {}
        # asset code -> {"uuid", "expected", "custodian_balance"} of its open discrepancy
        self.open_discrepancies: dict[str, dict[str, Any]] = {}
        # asset code -> the figures of a discrepancy staff resolved: the same figures again are
        # the same, explained, difference and open nothing new until the books agree once more
        self.acknowledged: dict[str, dict[str, Any]] = {}

    def sync_balances(self, *, code: str, balances: dict[str, int], at: dt.datetime) -> None:
        self.record(BalancesSynced(custodian=code, balances=dict(balances), synced_at=at))

    def reconcile(
        self,
        *,
        code: str,
        reconciliation_uuid: uuid.UUID,
        comparisons: list[dict[str, Any]],
        at: dt.datetime,
    ) -> None:
        """Record the comparison; open a discrepancy per asset that differs, unless the same
        figures are open already; clear the open one of an asset that agrees again."""
        self.record(
            Reconciled(
                custodian=code,
                reconciliation_uuid=reconciliation_uuid,
                results=comparisons,
                checked_at=at,
            )
        )
        for row in comparisons:
            asset = row["asset_code"]
            current = self.open_discrepancies.get(asset)
            if row["difference"] == 0:
                if current is not None:
                    self.record(
                        DiscrepancyCleared(
                            discrepancy_uuid=uuid.UUID(current["uuid"]),
                            reconciliation_uuid=reconciliation_uuid,
                        )
                    )
                continue
            figures = (row["expected"], row["custodian_balance"])
            known = [current, self.acknowledged.get(asset)]
            if any(
                d is not None and (d["expected"], d["custodian_balance"]) == figures for d in known
            ):
                continue
            self.record(
                DiscrepancyFound(
                    custodian=code,
                    # One per reconciliation and asset: stable, so a replay finds the same rows.
                    discrepancy_uuid=uuid.uuid5(reconciliation_uuid, asset),
                    reconciliation_uuid=reconciliation_uuid,
                    asset_code=asset,
                    ledger_balance=row["ledger_balance"],
                    expected=row["expected"],
                    custodian_balance=row["custodian_balance"],
                    difference=row["difference"],
                    supersedes=uuid.UUID(current["uuid"]) if current else None,
                )
            )

    def resolve(self, *, discrepancy_uuid: uuid.UUID, note: str, by: dict[str, Any]) -> None:
        if not any(d["uuid"] == str(discrepancy_uuid) for d in self.open_discrepancies.values()):
            raise DiscrepancyNotOpen(details={"discrepancy": str(discrepancy_uuid)})
        self.record(DiscrepancyResolved(discrepancy_uuid=discrepancy_uuid, note=note, by=by))

    def _close(self, discrepancy_uuid: uuid.UUID) -> str | None:
        for asset, d in list(self.open_discrepancies.items()):
            if d["uuid"] == str(discrepancy_uuid):
                del self.open_discrepancies[asset]
                return asset
        return None

    @applies(BalancesSynced)
    def _synced(self, evt: BalancesSynced) -> None:
        self.code = evt.custodian
        self.balances = dict(evt.balances)

    @applies(Reconciled)
    def _reconciled(self, evt: Reconciled) -> None:
        self.code = evt.custodian
        for row in evt.results:
            if row["difference"] == 0:
                self.acknowledged.pop(row["asset_code"], None)

    @applies(DiscrepancyFound)
    def _found(self, evt: DiscrepancyFound) -> None:
        self.open_discrepancies[evt.asset_code] = {
            "uuid": str(evt.discrepancy_uuid),
            "expected": evt.expected,
            "custodian_balance": evt.custodian_balance,
        }

    @applies(DiscrepancyCleared)
    def _cleared(self, evt: DiscrepancyCleared) -> None:
        self._close(evt.discrepancy_uuid)

    @applies(DiscrepancyResolved)
    def _resolved(self, evt: DiscrepancyResolved) -> None:
        open_figures = {d["uuid"]: d for d in self.open_discrepancies.values()}
        asset = self._close(evt.discrepancy_uuid)
        if asset is not None:
            self.acknowledged[asset] = open_figures[str(evt.discrepancy_uuid)]


class CustodianWebhook(AggregateRoot):
    aggregate_type = "custodians.CustodianWebhook"

    def __init__(self, aggregate_uuid: uuid.UUID):
        super().__init__(aggregate_uuid)
        self.received = False

    def receive(
        self,
        *,
        custodian: str,
        event_id: str,
        notification_type: str,
        payload: dict[str, Any],
        effect: dict[str, Any],
    ) -> None:
        if self.received:
            raise WebhookAlreadyProcessed(details={"event_id": event_id})
        self.record(
            WebhookReceived(
                custodian=custodian,
                event_id=event_id,
                notification_type=notification_type,
                payload=payload,
                effect=effect,
            )
        )

    @applies(WebhookReceived)
    def _received(self, evt: WebhookReceived) -> None:
        self.received = True
