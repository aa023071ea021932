"""Asset events -> the Asset, ExchangeRate and RateDeviation read models."""

from __future__ import annotations

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
from apps.assets.models import Asset, ExchangeRate, RateDeviation, RateStatus
from apps.core.projection import EventRecord, Projector

assets_projector = Projector("assets", read_models=(RateDeviation, ExchangeRate, Asset))


@assets_projector.on(AssetDefined)
def _asset_defined(evt: AssetDefined, record: EventRecord) -> None:
    Asset.objects.create(
        code=evt.code,
        uuid=record.aggregate_uuid,
        name=evt.name,
        type=evt.type,
        precision=evt.precision,
        metadata=evt.metadata,
        is_active=True,
        created_at=record.created_at,
        updated_at=record.created_at,
    )


@assets_projector.on(AssetActivated, AssetDeactivated)
def _asset_activity(evt: AssetActivated | AssetDeactivated, record: EventRecord) -> None:
    Asset.objects.filter(uuid=record.aggregate_uuid).update(
        is_active=isinstance(evt, AssetActivated), updated_at=record.created_at
    )


@assets_projector.on(ExchangeRateRecorded)
def _rate_recorded(evt: ExchangeRateRecorded, record: EventRecord) -> None:
    ExchangeRate.objects.create(
        id=record.id,
        from_asset_id=evt.from_code,
        to_asset_id=evt.to_code,
        rate=evt.rate,
        bid=evt.bid,
        ask=evt.ask,
        source=evt.source,
        reverse_rate=evt.reverse_rate,
        reverse_bid=evt.reverse_bid,
        reverse_ask=evt.reverse_ask,
        valid_at=evt.valid_at,
        expires_at=evt.expires_at,
        is_active=True,
        status=RateStatus.PENDING if evt.pending else RateStatus.ACCEPTED,
        recorded_by=evt.recorded_by,
        created_at=record.created_at,
    )


@assets_projector.on(ExchangeRateApproved)
def _rate_approved(evt: ExchangeRateApproved, record: EventRecord) -> None:
    row = ExchangeRate.objects.get(id=evt.rate_id)
    # In force from the approval on: a rate waiting for its checker never applies backdated.
    row.valid_at = max(row.valid_at, evt.effective_at)
    row.status = RateStatus.ACCEPTED
    row.decided_by = evt.by
    row.save(update_fields=["valid_at", "status", "decided_by"])


@assets_projector.on(ExchangeRateRejected)
def _rate_rejected(evt: ExchangeRateRejected, record: EventRecord) -> None:
    ExchangeRate.objects.filter(id=evt.rate_id).update(
        status=RateStatus.REJECTED, decided_by=evt.by
    )


@assets_projector.on(ExchangeRateDeactivated)
def _rate_deactivated(evt: ExchangeRateDeactivated, record: EventRecord) -> None:
    ExchangeRate.objects.filter(id=evt.rate_id).update(is_active=False)


@assets_projector.on(ExchangeRateDeviationDetected)
def _deviation_detected(evt: ExchangeRateDeviationDetected, record: EventRecord) -> None:
    RateDeviation.objects.create(
        id=record.id,
        from_asset_id=evt.from_code,
        to_asset_id=evt.to_code,
        rate=evt.rate,
        average_24h=evt.average,
        deviation_percent=evt.deviation_percent,
        created_at=record.created_at,
    )
