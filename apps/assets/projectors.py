"""Asset events -> the Asset, ExchangeRate and RateDeviation read models."""

from __future__ import annotations

from apps.assets.events import (
    AssetActivated,
    AssetDeactivated,
    AssetDefined,
    ExchangeRateDeactivated,
    ExchangeRateDeviationDetected,
    ExchangeRateRecorded,
)
from apps.assets.models import Asset, ExchangeRate, RateDeviation
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
        valid_at=evt.valid_at,
        expires_at=evt.expires_at,
        is_active=True,
        created_at=record.created_at,
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
