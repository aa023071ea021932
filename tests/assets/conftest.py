from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from apps.assets.services import asset_define, exchange_rate_record


@pytest.fixture(autouse=True)
def _empty_cache():
    """Cached quotes and precisions must not leak from one (rolled back) test into the next."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def assets(db):
    """The reference currencies without any rate."""
    for code, type_, precision in (
        ("USD", "fiat", 2),
        ("EUR", "fiat", 2),
        ("GBP", "fiat", 2),
        ("JPY", "fiat", 0),
        ("BTC", "crypto", 8),
        ("XAU", "commodity", 3),
    ):
        asset_define(code=code, name=f"{code} asset", type=type_, precision=precision)


@pytest.fixture
def record_rate(assets, now):
    """exchange_rate_record with short arguments: ago/expires_in are timedeltas from now."""

    def record(from_code, to_code, rate, *, ago=dt.timedelta(minutes=1), expires_in=None, **kw):
        return exchange_rate_record(
            from_code=from_code,
            to_code=to_code,
            rate=Decimal(rate),
            valid_at=now - ago,
            expires_at=None if expires_in is None else now + expires_in,
            **kw,
        )

    return record
