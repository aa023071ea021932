"""Concurrent writers of the same asset or rate pair on PostgreSQL: nothing lost or duplicated."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connections

from apps.assets.aggregates import asset_uuid, rate_pair_uuid
from apps.assets.models import AssetEvent, ExchangeRate
from apps.assets.selectors import exchange_rate_get
from apps.assets.services import asset_define, exchange_rate_record
from apps.core.verification import broken_links

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _run_threads(count: int, work) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def worker(index: int) -> None:
        try:
            start.wait()
            work(index)
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_racing_identical_definitions_record_one_event():
    def work(index: int) -> None:
        asset_define(code="CHF", name="Swiss Franc", type="fiat", precision=2)

    assert _run_threads(6, work) == []
    assert AssetEvent.objects.filter(aggregate_uuid=asset_uuid("CHF")).count() == 1


def test_racing_rates_of_one_new_pair_all_land_in_order():
    asset_define(code="USD", name="US Dollar", type="fiat", precision=2)
    asset_define(code="EUR", name="Euro", type="fiat", precision=2)
    per_thread = 5

    def work(index: int) -> None:
        for n in range(per_thread):
            exchange_rate_record(from_code="EUR", to_code="USD", rate=Decimal(f"1.0{index}{n}"))

    assert _run_threads(6, work) == []
    assert ExchangeRate.objects.count() == 6 * per_thread
    versions = list(
        AssetEvent.objects.filter(
            aggregate_uuid=rate_pair_uuid("EUR", "USD"),
            event_type="assets.ExchangeRateRecorded",
        ).values_list("aggregate_version", flat=True)
    )
    assert len(versions) == 6 * per_thread
    assert broken_links() == []
    newest = ExchangeRate.objects.order_by("-valid_at", "-id").first()
    assert exchange_rate_get("EUR", "USD").rate == newest.rate


def test_two_rate_changes_that_only_gain_together_cannot_both_land():
    """Each move is inside the spreads alone; both together would make USD -> EUR -> GBP -> USD
    gain. Checked side by side, both could pass: the second one must see the first."""
    for code in ("USD", "EUR", "GBP"):
        asset_define(code=code, name=code, type="fiat", precision=2)
    exchange_rate_record(from_code="USD", to_code="EUR", rate=Decimal("0.92"))
    exchange_rate_record(from_code="EUR", to_code="GBP", rate=Decimal("0.85"))
    exchange_rate_record(from_code="GBP", to_code="USD", rate=Decimal("1.28"))
    moves = [("USD", "EUR", Decimal("0.925")), ("EUR", "GBP", Decimal("0.855"))]

    def work(index: int) -> None:
        from_code, to_code, rate = moves[index]
        exchange_rate_record(from_code=from_code, to_code=to_code, rate=rate)

    errors = _run_threads(2, work)
    assert [type(e).__name__ for e in errors] == ["ExchangeRateArbitrage"]
    assert ExchangeRate.objects.count() == 4
