"""Events of the asset domain: asset definitions and their state, exchange rates and warnings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from apps.core.events import DomainEvent, EventData, event, upcaster


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


@event("assets.ExchangeRateRecorded", version=2)
class ExchangeRateRecorded(DomainEvent):
    """A rate of FROM/TO. The `reverse_*` fields are set when TO/FROM was recorded together with
    it; otherwise the reverse direction is this rate's inverse. A `pending` rate was beyond the
    band from its reference: it is not used until a staff member other than `recorded_by`
    approves it."""

    from_code: str
    to_code: str
    rate: Decimal
    bid: Decimal | None
    ask: Decimal | None
    source: str
    valid_at: datetime
    expires_at: datetime | None
    reverse_rate: Decimal | None
    reverse_bid: Decimal | None
    reverse_ask: Decimal | None
    pending: bool
    recorded_by: str


@upcaster("assets.ExchangeRateRecorded", from_version=1)
def _rate_recorded_v1(data: EventData) -> EventData:
    # Version 1 rates were one direction each, in use at once; who recorded them is in meta_data.
    return {
        **data,
        "reverse_rate": None,
        "reverse_bid": None,
        "reverse_ask": None,
        "pending": False,
        "recorded_by": "",
    }


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


@event("assets.ExchangeRateApproved")
class ExchangeRateApproved(DomainEvent):
    """A pending rate put in force by a second staff member, from `effective_at` on.
    `rate_id` is the id of the event that recorded it, `rate_version` that event's version."""

    rate_id: int
    rate_version: int
    by: str
    effective_at: datetime


@event("assets.ExchangeRateRejected")
class ExchangeRateRejected(DomainEvent):
    rate_id: int
    rate_version: int
    by: str
    reason: str
