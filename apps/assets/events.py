"""Events of the asset domain: asset definitions and their state, exchange rates and warnings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from apps.core.events import DomainEvent, event


@event("assets.AssetDefined")
class AssetDefined(DomainEvent):
    code: str
    name: str
    type: str
    precision: int
    metadata: dict


@event("assets.AssetActivated")
class AssetActivated(DomainEvent):
    by: str
    reason: str


@event("assets.AssetDeactivated")
class AssetDeactivated(DomainEvent):
    by: str
    reason: str


@event("assets.ExchangeRateRecorded")
class ExchangeRateRecorded(DomainEvent):
    from_code: str
    to_code: str
    rate: Decimal
    bid: Decimal | None
    ask: Decimal | None
    source: str
    valid_at: datetime
    expires_at: datetime | None


@event("assets.ExchangeRateDeviationDetected")
class ExchangeRateDeviationDetected(DomainEvent):
    from_code: str
    to_code: str
    rate: Decimal
    average: Decimal
    deviation_percent: Decimal


@event("assets.ExchangeRateDeactivated")
class ExchangeRateDeactivated(DomainEvent):
    """A recorded rate withdrawn from use; `rate_id` is the id of the event that recorded it."""

    rate_id: int
    by: str
    reason: str
