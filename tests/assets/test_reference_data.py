"""Reference assets and the first demo rates."""

from __future__ import annotations

import io

import pytest
from django.apps import apps
from django.core.management import call_command

from apps.assets.models import Asset, AssetEvent, ExchangeRate
from apps.assets.providers import DemoRateProvider
from apps.assets.selectors import asset_precisions, exchange_rate_get
from apps.assets.services import asset_deactivate

pytestmark = pytest.mark.django_db

EXPECTED = {
    "USD": ("fiat", 2),
    "EUR": ("fiat", 2),
    "GBP": ("fiat", 2),
    "CHF": ("fiat", 2),
    "JPY": ("fiat", 0),
    "XAU": ("commodity", 3),
    "BTC": ("crypto", 8),
    "ETH": ("crypto", 8),
    "GCU": ("basket", 2),
}


def _seed():
    apps.get_app_config("assets").seed_reference_data()


def test_seeding_defines_the_reference_assets_all_active():
    _seed()
    assert {a.code: (a.type, a.precision) for a in Asset.objects.all()} == EXPECTED
    assert all(Asset.objects.values_list("is_active", flat=True))
    assert asset_precisions() == {code: p for code, (_, p) in EXPECTED.items()}


def test_seeding_records_the_demo_rates_once():
    _seed()
    assert ExchangeRate.objects.count() == len(DemoRateProvider().fetch()) == 8 * 7
    assert str(exchange_rate_get("EUR", "USD").rate) == "1.080000000000000000"
    assert exchange_rate_get("EUR", "USD").source == "api"


def test_seeding_is_idempotent():
    _seed()
    call_command("load_reference_data", stdout=io.StringIO())  # the GCU's first rates too
    events = list(AssetEvent.objects.values_list("id", flat=True))
    rates = list(ExchangeRate.objects.values_list("id", flat=True))
    _seed()
    call_command("load_reference_data", stdout=io.StringIO())
    assert list(AssetEvent.objects.values_list("id", flat=True)) == events
    assert list(ExchangeRate.objects.values_list("id", flat=True)) == rates


def test_seeding_leaves_a_staff_decision_alone():
    _seed()
    asset_deactivate(code="XAU", reason="no custodian for gold yet")
    _seed()
    assert Asset.objects.get(code="XAU").is_active is False
