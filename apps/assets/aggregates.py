"""The asset aggregates: an Asset's definition and activity, and the rate history of one pair.

Pure Python: the services pass in everything the rules need (the actor, the 24-hour average);
state holds JSON values only (Decimals and datetimes as strings) so the default snapshot works.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any, ClassVar

from apps.assets.events import (
    AssetActivated,
    AssetDeactivated,
    AssetDefined,
    ExchangeRateDeactivated,
    ExchangeRateDeviationDetected,
    ExchangeRateRecorded,
)
from apps.core.aggregates import AggregateRoot, applies
from apps.core.errors import DomainError, InvalidInput

# Fixed forever: the aggregate uuids of assets and rate pairs are derived from it.
NAMESPACE = uuid.UUID("74e6cfcf-4688-48d6-b6d1-b7b14fcccd7e")

DEVIATION_PERCENT_PLACES = Decimal("0.0001")


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


class RatePair(AggregateRoot):
    """The rates recorded for one ordered pair (FROM/TO) and the warnings raised on them."""

    aggregate_type = "assets.RatePair"
    # A refreshed pair gets a rate every few minutes, forever: snapshot often so loading it
    # replays a short tail (its state stays small).
    snapshot_every = 100
    deviation_threshold_percent: ClassVar[Decimal] = Decimal("10")

    def __init__(self, aggregate_uuid: uuid.UUID):
        super().__init__(aggregate_uuid)
        self.from_code = ""
        self.to_code = ""
        self.last_rate: str | None = None
        self.last_valid_at: str | None = None
        self.rates_recorded = 0
        self.deviations_detected = 0
        self.deactivated_rate_ids: list[int] = []

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
        average_24h: Decimal | None,
    ) -> Decimal | None:
        """Record the rate; when it is more than the threshold away from `average_24h` (the
        pair's average over the last 24 hours, None when there was none), record the deviation
        too and return its percentage."""
        if self.from_code and (from_code, to_code) != (self.from_code, self.to_code):
            raise InvalidInput(
                "This rate belongs to another pair.",
                details={"pair": [f"expected {self.from_code}/{self.to_code}"]},
            )
        if from_code == to_code:
            raise InvalidInput(details={"to_code": ["must differ from from_code"]})
        if rate <= 0:
            raise InvalidInput(details={"rate": ["must be greater than zero"]})
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
            )
        )
        if average_24h is None or average_24h <= 0:
            return None
        with localcontext() as ctx:
            ctx.prec = 60
            deviation = abs(rate - average_24h) * 100 / average_24h
        if deviation <= self.deviation_threshold_percent:
            return None
        deviation = deviation.quantize(DEVIATION_PERCENT_PLACES)
        self.record(
            ExchangeRateDeviationDetected(
                from_code=from_code,
                to_code=to_code,
                rate=rate,
                average=average_24h,
                deviation_percent=deviation,
            )
        )
        return deviation

    def deactivate_rate(self, *, rate_id: int, by: str, reason: str = "") -> None:
        if rate_id in self.deactivated_rate_ids:
            raise ExchangeRateAlreadyInactive(
                details={"rate_id": rate_id, "from": self.from_code, "to": self.to_code}
            )
        self.record(ExchangeRateDeactivated(rate_id=rate_id, by=by, reason=reason))

    @applies(ExchangeRateRecorded)
    def _rate_recorded(self, evt: ExchangeRateRecorded) -> None:
        self.from_code = evt.from_code
        self.to_code = evt.to_code
        self.last_rate = str(evt.rate)
        self.last_valid_at = evt.valid_at.isoformat()
        self.rates_recorded += 1

    @applies(ExchangeRateDeviationDetected)
    def _deviation_detected(self, evt: ExchangeRateDeviationDetected) -> None:
        self.deviations_detected += 1

    @applies(ExchangeRateDeactivated)
    def _rate_deactivated(self, evt: ExchangeRateDeactivated) -> None:
        self.deactivated_rate_ids = [*self.deactivated_rate_ids, evt.rate_id]
