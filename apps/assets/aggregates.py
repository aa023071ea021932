"""The asset aggregates: an Asset's definition and activity, and the rate history of one pair.

Pure Python: the services pass in everything the rules need (the actor, the 24-hour average);
state holds JSON values only (Decimals and datetimes as strings) so the default snapshot works.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from apps.assets.events import (
    AssetActivated,
    AssetDeactivated,
    AssetDefined,
    ExchangeRateApproved,
    ExchangeRateDeactivated,
    ExchangeRateDeviationDetected,
    ExchangeRateRecorded,
    ExchangeRateRejected,
)
from apps.assets.rates import refuse_reciprocal_gain
from apps.core.aggregates import AggregateRoot, applies
from apps.core.errors import DomainError, InvalidInput, MakerCannotDecide

# Fixed forever: the aggregate uuids of assets and rate pairs are derived from it.
NAMESPACE = uuid.UUID("74e6cfcf-4688-48d6-b6d1-b7b14fcccd7e")

DEVIATION_PERCENT_PLACES = Decimal("0.0001")
RATE_PLACES_QUANTUM = Decimal("1e-18")  # the rate columns' scale (models.RATE_PLACES)


def asset_uuid(code: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"asset:{code}")


def rate_pair_uuid(from_code: str, to_code: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"rate:{from_code}/{to_code}")


class AssetAlreadyDefined(DomainError):
    code = "ASSET_ALREADY_DEFINED"
    default_message = "An asset with this code is already defined differently."


class AssetAlreadyActive(DomainError):
    code = "ASSET_ALREADY_ACTIVE"
    default_message = "The asset is already active."


class AssetAlreadyInactive(DomainError):
    code = "ASSET_ALREADY_INACTIVE"
    default_message = "The asset is already inactive."


class ExchangeRateAlreadyInactive(DomainError):
    code = "EXCHANGE_RATE_ALREADY_INACTIVE"
    default_message = "The exchange rate is already inactive."


class Asset(AggregateRoot):
    """One asset, addressed by its code. A defined asset starts active."""

    aggregate_type = "assets.Asset"

    def __init__(self, aggregate_uuid: uuid.UUID):
        super().__init__(aggregate_uuid)
        self.code = ""
        self.name = ""
        self.type = ""
        self.precision = 0
        self.metadata: dict[str, Any] = {}
        self.is_active = False

    @classmethod
    def for_code(cls, code: str) -> Asset:
        return cls(asset_uuid(code))

    @property
    def is_defined(self) -> bool:
        return bool(self.code)

    def define(
        self, *, code: str, name: str, type: str, precision: int, metadata: dict[str, Any]
    ) -> bool:
        """Record the definition; False (and nothing recorded) when the same one exists."""
        if self.is_defined:
            wanted = (code, name, type, precision, metadata)
            if wanted == (self.code, self.name, self.type, self.precision, self.metadata):
                return False
            raise AssetAlreadyDefined(
                details={
                    "asset_code": self.code,
                    "defined": {"name": self.name, "type": self.type, "precision": self.precision},
                }
            )
        self.record(
            AssetDefined(code=code, name=name, type=type, precision=precision, metadata=metadata)
        )
        return True

    def activate(self, *, by: str, reason: str = "") -> None:
        if self.is_active:
            raise AssetAlreadyActive(details={"asset_code": self.code})
        self.record(AssetActivated(by=by, reason=reason))

    def deactivate(self, *, by: str, reason: str = "") -> None:
        if not self.is_active:
            raise AssetAlreadyInactive(details={"asset_code": self.code})
        self.record(AssetDeactivated(by=by, reason=reason))

    @applies(AssetDefined)
    def _defined(self, evt: AssetDefined) -> None:
        self.code = evt.code
        self.name = evt.name
        self.type = evt.type
        self.precision = evt.precision
        self.metadata = dict(evt.metadata)
        self.is_active = True

    @applies(AssetActivated)
    def _activated(self, evt: AssetActivated) -> None:
        self.is_active = True

    @applies(AssetDeactivated)
    def _deactivated(self, evt: AssetDeactivated) -> None:
        self.is_active = False


class RateDecisionNeedsStaff(DomainError):
    code = "STAFF_DECISION_REQUIRED"
    default_message = "Only a staff member can approve or reject a pending exchange rate."
    http_status = 403


class ExchangeRateNotPending(DomainError):
    code = "EXCHANGE_RATE_NOT_PENDING"
    default_message = "The exchange rate is not awaiting approval."


def deviation_percent(rate: Decimal, reference: Decimal) -> Decimal:
    """How far `rate` is from `reference`, in percent of the reference, exactly."""
    with localcontext() as ctx:
        ctx.prec = 60
        return abs(rate - reference) * 100 / reference


class RatePair(AggregateRoot):
    """The rates recorded for one ordered pair (FROM/TO), the warnings raised on them and the
    decisions on those that waited for approval."""

    aggregate_type = "assets.RatePair"
    # A refreshed pair gets a rate every few minutes, forever: snapshot often so loading it
    # replays a short tail (its state stays small).
    snapshot_every = 100

    def __init__(self, aggregate_uuid: uuid.UUID):
        super().__init__(aggregate_uuid)
        self.from_code = ""
        self.to_code = ""
        self.last_rate: str | None = None
        self.last_valid_at: str | None = None
        self.rates_recorded = 0
        self.deviations_detected = 0
        self.deactivated_rate_ids: list[int] = []
        # The version of each pending rate's event -> who recorded it (JSON keys are strings).
        self.pending_rates: dict[str, str] = {}

    @classmethod
    def for_pair(cls, from_code: str, to_code: str) -> RatePair:
        return cls(rate_pair_uuid(from_code, to_code))

    def record_rate(
        self,
        *,
        from_code: str,
        to_code: str,
        rate: Decimal,
        bid: Decimal | None,
        ask: Decimal | None,
        source: str,
        valid_at: datetime,
        expires_at: datetime | None,
        reverse_rate: Decimal | None = None,
        reverse_bid: Decimal | None = None,
        reverse_ask: Decimal | None = None,
        reference: Decimal | None,
        band_percent: Decimal,
        recorded_by: str,
    ) -> Decimal | None:
        """Record the rate (and, when given, the reverse direction's rate recorded with it).

        `reference` is what the pair's rate is compared with (None for the first rate of a
        pair). A rate, or a reverse rate against the reference's inverse, more than
        `band_percent` away is recorded as pending, with a deviation warning per direction;
        the largest deviation is returned (None: the rate is in force at once).
        """
        if self.from_code and (from_code, to_code) != (self.from_code, self.to_code):
            raise InvalidInput(
                "This rate belongs to another pair.",
                details={"pair": [f"expected {self.from_code}/{self.to_code}"]},
            )
        if from_code == to_code:
            raise InvalidInput(details={"to_code": ["must differ from from_code"]})
        if rate <= 0 or (reverse_rate is not None and reverse_rate <= 0):
            raise InvalidInput(details={"rate": ["must be greater than zero"]})
        if reverse_rate is not None:
            refuse_reciprocal_gain(from_code, to_code, rate, reverse_rate)
        warnings = self._deviations(from_code, to_code, rate, reference, band_percent)
        if reverse_rate is not None and reference is not None and reference > 0:
            with localcontext() as ctx:
                ctx.prec = 60
                reverse_reference = 1 / reference
            warnings += self._deviations(
                to_code, from_code, reverse_rate, reverse_reference, band_percent
            )
        self.record(
            ExchangeRateRecorded(
                from_code=from_code,
                to_code=to_code,
                rate=rate,
                bid=bid,
                ask=ask,
                source=source,
                valid_at=valid_at,
                expires_at=expires_at,
                reverse_rate=reverse_rate,
                reverse_bid=reverse_bid,
                reverse_ask=reverse_ask,
                pending=bool(warnings),
                recorded_by=recorded_by,
            )
        )
        for warning in warnings:
            self.record(warning)
        return max((w.deviation_percent for w in warnings), default=None)

    @staticmethod
    def _deviations(
        from_code: str,
        to_code: str,
        rate: Decimal,
        reference: Decimal | None,
        band_percent: Decimal,
    ) -> list[ExchangeRateDeviationDetected]:
        if reference is None or reference <= 0:
            return []
        deviation = deviation_percent(rate, reference)
        if deviation <= band_percent:
            return []
        with localcontext() as ctx:
            ctx.prec = 60
            average = reference.quantize(RATE_PLACES_QUANTUM, rounding=ROUND_HALF_EVEN)
        return [
            ExchangeRateDeviationDetected(
                from_code=from_code,
                to_code=to_code,
                rate=rate,
                average=average,
                deviation_percent=deviation.quantize(DEVIATION_PERCENT_PLACES),
            )
        ]

    def deactivate_rate(self, *, rate_id: int, by: str, reason: str = "") -> None:
        if rate_id in self.deactivated_rate_ids:
            raise ExchangeRateAlreadyInactive(
                details={"rate_id": rate_id, "from": self.from_code, "to": self.to_code}
            )
        self.record(ExchangeRateDeactivated(rate_id=rate_id, by=by, reason=reason))

    def _pending_maker(self, rate_id: int, rate_version: int, by: str) -> str:
        maker = self.pending_rates.get(str(rate_version))
        if maker is None or rate_id in self.deactivated_rate_ids:
            raise ExchangeRateNotPending(details={"rate_id": rate_id})
        if maker == by:
            raise MakerCannotDecide(details={"rate_id": rate_id, "recorded_by": maker})
        return maker

    def approve_rate(
        self, *, rate_id: int, rate_version: int, by: str, effective_at: datetime
    ) -> None:
        """Put a pending rate in force: only a staff member other than its maker may."""
        self._pending_maker(rate_id, rate_version, by)
        self.record(
            ExchangeRateApproved(
                rate_id=rate_id, rate_version=rate_version, by=by, effective_at=effective_at
            )
        )

    def reject_rate(self, *, rate_id: int, rate_version: int, by: str, reason: str = "") -> None:
        self._pending_maker(rate_id, rate_version, by)
        self.record(
            ExchangeRateRejected(rate_id=rate_id, rate_version=rate_version, by=by, reason=reason)
        )

    @applies(ExchangeRateRecorded)
    def _rate_recorded(self, evt: ExchangeRateRecorded) -> None:
        self.from_code = evt.from_code
        self.to_code = evt.to_code
        self.last_rate = str(evt.rate)
        self.last_valid_at = evt.valid_at.isoformat()
        self.rates_recorded += 1
        if evt.pending:
            # `apply` counts the version after this method: this event's version is one more.
            self.pending_rates = {**self.pending_rates, str(self.version + 1): evt.recorded_by}

    @applies(ExchangeRateDeviationDetected)
    def _deviation_detected(self, evt: ExchangeRateDeviationDetected) -> None:
        self.deviations_detected += 1

    @applies(ExchangeRateDeactivated)
    def _rate_deactivated(self, evt: ExchangeRateDeactivated) -> None:
        self.deactivated_rate_ids = [*self.deactivated_rate_ids, evt.rate_id]

    @applies(ExchangeRateApproved, ExchangeRateRejected)
    def _rate_decided(self, evt: ExchangeRateApproved | ExchangeRateRejected) -> None:
        self.pending_rates = {
            version: maker
            for version, maker in self.pending_rates.items()
            if version != str(evt.rate_version)
        }
