"""Aggregate state is plain JSON: snapshots store it and loading from one gives the same state."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import transaction
from django.test import override_settings

from apps.assets.aggregates import Asset, RatePair, asset_uuid, rate_pair_uuid
from apps.assets.services import asset_deactivate, exchange_rate_deactivate
from apps.core import store
from apps.core.models import Snapshot

pytestmark = pytest.mark.django_db


def _replayed_state(cls, aggregate_uuid):
    """The state from the events alone, ignoring snapshots."""
    with transaction.atomic():
        Snapshot.objects.filter(aggregate_uuid=aggregate_uuid).delete()
        aggregate = store.load_one(cls, aggregate_uuid)
        transaction.set_rollback(True)
    return aggregate.snapshot_state()


def test_rate_pair_snapshots_restore_the_same_state(record_rate, monkeypatch):
    assert RatePair.snapshot_every == 100
    monkeypatch.setattr(RatePair, "snapshot_every", 2)
    first = record_rate("EUR", "USD", "1.00", ago=dt.timedelta(hours=2))
    record_rate("EUR", "USD", "1.50", ago=dt.timedelta(hours=1))  # + a deviation event
    exchange_rate_deactivate(rate_id=first.id)
    pair_uuid = rate_pair_uuid("EUR", "USD")
    snapshots = Snapshot.objects.filter(aggregate_uuid=pair_uuid).order_by("aggregate_version")
    assert [s.aggregate_version for s in snapshots] == [3, 4]
    for snapshot in snapshots:
        json.dumps(snapshot.state)  # plain JSON, no Decimal or datetime objects

    with transaction.atomic():
        loaded = store.load_one(RatePair, pair_uuid, lock=False)
    state = loaded.snapshot_state()
    assert state == _replayed_state(RatePair, pair_uuid)
    assert state["last_rate"] == "1.500000000000000000"
    assert state["deactivated_rate_ids"] == [first.id]
    assert (state["rates_recorded"], state["deviations_detected"]) == (2, 1)
    assert Decimal(state["last_rate"]) == Decimal("1.5")


@override_settings(EVENT_STORE_SNAPSHOT_EVERY=2)
def test_asset_snapshots_restore_the_same_state(assets):
    asset_deactivate(code="XAU")
    snapshot = Snapshot.objects.get(aggregate_uuid=asset_uuid("XAU"))
    json.dumps(snapshot.state)
    with transaction.atomic():
        loaded = store.load_one(Asset, asset_uuid("XAU"), lock=False)
    assert loaded.snapshot_state() == _replayed_state(Asset, asset_uuid("XAU"))
    assert (loaded.code, loaded.precision, loaded.is_active) == ("XAU", 3, False)
