"""Write side of assets and exchange rates: each function is one atomic command."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.assets.aggregates import Asset as AssetAggregate
from apps.assets.aggregates import RatePair, asset_uuid, rate_pair_uuid
from apps.assets.events import ExchangeRateRecorded
from apps.assets.models import RATE_DIGITS, RATE_PLACES, Asset, AssetType, ExchangeRate, RateSource
from apps.assets.providers import Quote, RateProvider, rate_provider
from apps.assets.selectors import asset_cache_drop, exchange_rate_cache_drop
from apps.core import store
from apps.core.context import current_actor
from apps.core.errors import AggregateNotFound, AssetNotFound, ExchangeRateNotFound, InvalidInput

logger = logging.getLogger(__name__)

CODE_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")
MAX_PRECISION = 18
AVERAGE_WINDOW = timedelta(hours=24)
_PLACES = Decimal(1).scaleb(-RATE_PLACES)
_RATE_LIMIT = Decimal(10) ** (RATE_DIGITS - RATE_PLACES)


def _actor_label() -> str:
    actor = current_actor()
    return f"{actor.get('type', 'unknown')}:{actor.get('id', 'unknown')}"


def _json_metadata(value: Any, path: str = "metadata") -> Any:
    """Metadata as plain JSON (tuples become lists); floats and other types are refused."""
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise InvalidInput(details={path: ["keys must be strings"]})
        return {key: _json_metadata(item, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_metadata(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    raise InvalidInput(details={path: [f"{type(value).__name__} is not allowed; use str or int"]})


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or len(reason) > 500:
        raise InvalidInput(details={"reason": ["a text of at most 500 characters"]})
    return reason


def _load_asset(code: str) -> AssetAggregate:
    try:
        return store.load_one(AssetAggregate, asset_uuid(code))
    except AggregateNotFound:
        raise AssetNotFound(details={"asset_code": code}) from None


def _load_rate_pair(from_code: str, to_code: str) -> RatePair:
    try:
        return store.load_one(RatePair, rate_pair_uuid(from_code, to_code))
    except AggregateNotFound:
        return RatePair.for_pair(from_code, to_code)


# --- assets --------------------------------------------------------------------------------------


@store.command
def asset_define(
    *,
    code: str,
    name: str,
    type: str,
    precision: int,
    metadata: dict[str, Any] | None = None,
) -> Asset:
    """Define an asset (active from the start). The same definition again changes nothing."""
    errors: dict[str, list[str]] = {}
    if not isinstance(code, str) or not CODE_PATTERN.match(code):
        errors["code"] = ["2 to 10 upper-case letters or digits, starting with a letter"]
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        errors["name"] = ["a name of 1 to 100 characters is required"]
    if type not in AssetType.values:
        errors["type"] = [f"one of {', '.join(AssetType.values)}"]
    if (
        not isinstance(precision, int)
        or isinstance(precision, bool)
        or not 0 <= precision <= MAX_PRECISION
    ):
        errors["precision"] = [f"an integer from 0 to {MAX_PRECISION}"]
    if metadata is not None and not isinstance(metadata, dict):
        errors["metadata"] = ["must be an object"]
    if errors:
        raise InvalidInput(details=errors)
    metadata = _json_metadata(metadata or {})

    try:
        asset = _load_asset(code)
    except AssetNotFound:
        asset = AssetAggregate.for_code(code)
    if asset.define(code=code, name=name, type=type, precision=precision, metadata=metadata):
        store.save(asset)
        _drop_asset_cache_now_and_after_commit()
    return Asset.objects.get(code=code)


def _drop_asset_cache_now_and_after_commit() -> None:
    # Now, for the rest of this transaction; after commit, for readers that refilled the cache
    # from the old rows in the meantime.
    asset_cache_drop()
    transaction.on_commit(asset_cache_drop)


@store.command
def asset_activate(*, code: str, reason: str = "") -> Asset:
    asset = _load_asset(code)
    asset.activate(by=_actor_label(), reason=_reason(reason))
    store.save(asset)
    _drop_asset_cache_now_and_after_commit()
    return Asset.objects.get(code=code)


@store.command
def asset_deactivate(*, code: str, reason: str = "") -> Asset:
    asset = _load_asset(code)
    asset.deactivate(by=_actor_label(), reason=_reason(reason))
    store.save(asset)
    _drop_asset_cache_now_and_after_commit()
    return Asset.objects.get(code=code)


# --- exchange rates ------------------------------------------------------------------------------


def _rate_value(field: str, value: Any, errors: dict[str, list[str]]) -> Decimal | None:
    """A positive Decimal at the rate column's scale (rounded half-even), or an error noted."""
    if isinstance(value, float):
        errors[field] = ["floats are not accepted; pass a Decimal or a decimal string"]
        return None
    if isinstance(value, bool):
        errors[field] = ["must be a decimal number"]
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        errors[field] = ["must be a decimal number"]
        return None
    if not number.is_finite() or number <= 0:
        errors[field] = ["must be greater than zero"]
        return None
    if number >= _RATE_LIMIT:
        errors[field] = [f"must be below {_RATE_LIMIT}"]
        return None
    with localcontext() as ctx:
        ctx.prec = RATE_DIGITS + 10
        stored = number.quantize(_PLACES, rounding=ROUND_HALF_EVEN)
    if not stored:
        errors[field] = [
            f"is zero at {RATE_PLACES} decimal places; record the reverse pair instead"
        ]
        return None
    return stored


def _moment(field: str, value: Any, errors: dict[str, list[str]]) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or timezone.is_naive(value):
        errors[field] = ["must be a timezone-aware datetime"]
        return None
    return value


def _average_24h(from_code: str, to_code: str, until: datetime) -> Decimal | None:
    """The mean of the pair's active rates valid in the 24 hours up to `until`, exactly."""
    rates = list(
        ExchangeRate.objects.filter(
            from_asset_id=from_code,
            to_asset_id=to_code,
            is_active=True,
            valid_at__gt=until - AVERAGE_WINDOW,
            valid_at__lte=until,
        ).values_list("rate", flat=True)
    )
    if not rates:
        return None
    with localcontext() as ctx:
        ctx.prec = 60
        mean = sum(rates, Decimal(0)) / len(rates)
        return mean.quantize(_PLACES, rounding=ROUND_HALF_EVEN)


@store.command
def exchange_rate_record(
    *,
    from_code: str,
    to_code: str,
    rate: Decimal,
    bid: Decimal | None = None,
    ask: Decimal | None = None,
    source: str = "manual",
    valid_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> ExchangeRate:
    """Record a rate: 1 `from_code` = `rate` `to_code`, rounded to RATE_PLACES (18) decimal places.

    A rate more than 10% away from the pair's 24-hour average is still recorded, with a warning
    (logged, and stored as an ExchangeRateDeviationDetected event).
    """
    errors: dict[str, list[str]] = {}
    rate = _rate_value("rate", rate, errors)
    bid = None if bid is None else _rate_value("bid", bid, errors)
    ask = None if ask is None else _rate_value("ask", ask, errors)
    valid_at = _moment("valid_at", valid_at, errors) or timezone.now()
    expires_at = _moment("expires_at", expires_at, errors)
    for field, code in (("from_code", from_code), ("to_code", to_code)):
        if not isinstance(code, str) or not code:
            errors[field] = ["an asset code is required"]
    if from_code == to_code:
        errors["to_code"] = ["must differ from from_code"]
    if source not in RateSource.values:
        errors["source"] = [f"one of {', '.join(RateSource.values)}"]
    if bid is not None and ask is not None and bid > ask:
        errors["bid"] = ["must not exceed ask"]
    if expires_at is not None and expires_at <= valid_at:
        errors["expires_at"] = ["must be after valid_at"]
    if errors:
        raise InvalidInput(details=errors)
    for code in (from_code, to_code):
        if not Asset.objects.filter(code=code).exists():
            raise AssetNotFound(details={"asset_code": code})

    pair = _load_rate_pair(from_code, to_code)
    average = _average_24h(from_code, to_code, valid_at)
    deviation = pair.record_rate(
        from_code=from_code,
        to_code=to_code,
        rate=rate,
        bid=bid,
        ask=ask,
        source=source,
        valid_at=valid_at,
        expires_at=expires_at,
        average_24h=average,
    )
    stored = store.save(pair)
    if deviation is not None:
        logger.warning(
            "exchange rate %s/%s of %s deviates %s%% from its 24h average %s",
            from_code,
            to_code,
            rate,
            deviation,
            average,
        )
    transaction.on_commit(exchange_rate_cache_drop)
    recorded = next(rec for evt, rec in stored if isinstance(evt, ExchangeRateRecorded))
    return ExchangeRate.objects.get(id=recorded.id)


@store.command
def exchange_rate_deactivate(*, rate_id: int, reason: str = "") -> ExchangeRate:
    """Withdraw a recorded rate from use (a wrong entry); lookups fall back to older rates."""
    if not isinstance(rate_id, int) or isinstance(rate_id, bool):
        raise InvalidInput(details={"rate_id": ["must be an integer"]})
    row = ExchangeRate.objects.filter(id=rate_id).first()
    if row is None:
        raise ExchangeRateNotFound(details={"rate_id": rate_id})
    pair = _load_rate_pair(row.from_asset_id, row.to_asset_id)
    pair.deactivate_rate(rate_id=rate_id, by=_actor_label(), reason=_reason(reason))
    store.save(pair)
    transaction.on_commit(exchange_rate_cache_drop)
    row.refresh_from_db()
    return row


@store.command
def _quotes_record(*, quotes: Iterable[Quote], provider_name: str) -> int:
    count = 0
    for quote in quotes:
        try:
            # Each quote is a nested command (a savepoint): a refused one leaves no trace.
            exchange_rate_record(
                from_code=quote.from_code,
                to_code=quote.to_code,
                rate=quote.rate,
                bid=quote.bid,
                ask=quote.ask,
                source=quote.source,
                valid_at=quote.valid_at,
                expires_at=quote.expires_at,
            )
        except (AssetNotFound, InvalidInput) as exc:
            logger.warning(
                "skipped a %s quote %s/%s: %s %s",
                provider_name,
                quote.from_code,
                quote.to_code,
                exc.code,
                exc.details,
            )
            continue
        count += 1
    return count


def exchange_rates_refresh(*, provider: RateProvider | None = None) -> int:
    """Fetch quotes from the provider (default: the EXCHANGE_RATE_PROVIDER setting) and record
    them in one transaction; returns how many were recorded. A quote for an asset that is not
    defined here, or with an invalid rate, is logged and skipped.

    The fetch happens before the transaction opens, so a slow provider holds no locks.
    """
    provider = provider or rate_provider()
    quotes = list(provider.fetch())
    if not quotes:
        return 0
    count = _quotes_record(quotes=quotes, provider_name=provider.name)
    logger.info("recorded %d exchange rate(s) from the %s provider", count, provider.name)
    return count
