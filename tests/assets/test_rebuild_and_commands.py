"""Replaying the asset events reproduces the read models; the operator command."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

from apps.assets.models import Asset, AssetEvent, ExchangeRate, RateDeviation
from apps.assets.services import (
    asset_deactivate,
    asset_define,
    exchange_rate_approve,
    exchange_rate_deactivate,
    exchange_rate_record,
    exchange_rate_reject,
)
from apps.core.context import command_context

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)


def _read_models():
    return {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (Asset, ExchangeRate, RateDeviation)
    }


def test_rebuild_projections_reproduces_the_read_models_exactly(now):
    apps.get_app_config("assets").seed_reference_data()

    def record(rate, ago, expires_at=None):
        return exchange_rate_record(
            from_code="EUR",
            to_code="USD",
            rate=Decimal(rate),
            bid=Decimal(rate) - Decimal("0.01"),
            valid_at=now - ago,
            expires_at=expires_at,
        )

    record("1.00", 3 * HOUR, expires_at=now + HOUR)
    wrong = record("1.50", 2 * HOUR)
    exchange_rate_deactivate(rate_id=wrong.id, reason="typo")
    rejected = record("1.30", HOUR)  # a deviation warning: pending
    with command_context(actor={"type": "staff", "id": "checker"}):
        exchange_rate_reject(rate_id=rejected.id, reason="typo")
    # A pair linked to USD alone, so the approved jump opens no cycle.
    asset_define(code="ZZZ", name="Test coin", type="crypto", precision=8)
    exchange_rate_record(from_code="ZZZ", to_code="USD", rate=Decimal("1"), valid_at=now - HOUR)
    jump = exchange_rate_record(from_code="ZZZ", to_code="USD", rate=Decimal("5"))
    with command_context(actor={"type": "staff", "id": "checker"}):
        exchange_rate_approve(rate_id=jump.id)
    asset_deactivate(code="ETH", reason="delisted")
    before = _read_models()
    statuses = ExchangeRate.objects.filter(id__in=[rejected.id, jump.id]).values_list("status")
    assert sorted(s for (s,) in statuses) == ["accepted", "rejected"]
    assert RateDeviation.objects.count() >= 1
    assert not ExchangeRate.objects.get(id=wrong.id).is_active
    assert not Asset.objects.get(code="ETH").is_active

    # Damage the read models; the replay must put back exactly what the events say.
    ExchangeRate.objects.filter(id=wrong.id).update(is_active=True, rate=Decimal("9"))
    RateDeviation.objects.all().delete()
    Asset.objects.filter(code="ETH").update(is_active=True, name="Ethereum?")
    assert _read_models() != before

    out = io.StringIO()
    call_command("rebuild_projections", "assets", stdout=out)

    assert f"assets: replayed {AssetEvent.objects.count()} events" in out.getvalue()
    assert _read_models() == before


def test_the_event_table_is_append_only(assets):
    row = AssetEvent.objects.first()
    with pytest.raises(DatabaseError), transaction.atomic():
        AssetEvent.objects.filter(id=row.id).update(event_data={})
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {AssetEvent._meta.db_table}")
    assert AssetEvent.objects.filter(id=row.id).exists()


def test_the_asset_chains_verify(record_rate):
    record_rate("EUR", "USD", "1.08")
    asset_deactivate(code="EUR")
    out = io.StringIO()
    call_command("verify_events", stdout=out)
    assert "All event chains verify." in out.getvalue()


def test_refresh_exchange_rates_records_the_providers_rates():
    apps.get_app_config("assets").seed_reference_data()
    before = ExchangeRate.objects.count()
    out = io.StringIO()
    call_command("refresh_exchange_rates", stdout=out)
    assert out.getvalue().strip() == "recorded 56 exchange rate(s) from the demo provider"
    assert ExchangeRate.objects.count() == before + 56
    meta = AssetEvent.objects.order_by("-id").first().meta_data
    assert meta["actor"] == {"type": "command", "id": "refresh_exchange_rates"}


def test_refresh_exchange_rates_uses_the_setting_or_the_option(assets):
    out = io.StringIO()
    with override_settings(EXCHANGE_RATE_PROVIDER="apps.assets.providers.ManualRateProvider"):
        call_command("refresh_exchange_rates", stdout=out)
    call_command(
        "refresh_exchange_rates",
        provider="apps.assets.providers.ManualRateProvider",
        stdout=out,
    )
    manual = "recorded 0 exchange rate(s) from the manual provider"
    assert out.getvalue().splitlines() == [manual, manual]
    with pytest.raises(CommandError):
        call_command("refresh_exchange_rates", provider="apps.assets.providers.Nope")
