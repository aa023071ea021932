"""Write side of assets and exchange rates: each function is one atomic command."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.assets.aggregates import Asset as AssetAggregate
from apps.assets.aggregates import (
    ExchangeRateNotPending,
    RateDecisionNeedsStaff,
    RatePair,
    asset_uuid,
    rate_pair_uuid,
)
from apps.assets.events import ExchangeRateRecorded
from apps.assets.models import (
    RATE_DIGITS,
    RATE_PLACES,
    Asset,
    AssetEvent,
    AssetType,
    ExchangeRate,
    RateSource,
    RateStatus,
)
from apps.assets.providers import Quote, RateProvider, rate_provider
from apps.assets.rates import ExchangeRateArbitrage, refuse_profitable_cycles
from apps.assets.selectors import (
    asset_cache_drop,
    exchange_rate_cache_drop,
    exchange_rate_get,
    exchange_rate_sides,
    exchange_rates_in_force,
)
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


def _band_percent() -> Decimal:
    return Decimal(str(settings.EXCHANGE_RATE_BAND_PCT))


def _pair_rows(from_code: str, to_code: str) -> Q:
    return Q(from_asset_id=from_code, to_asset_id=to_code) | Q(
        from_asset_id=to_code, to_asset_id=from_code
    )


def _reference(from_code: str, to_code: str, at: datetime) -> Decimal | None:
    """What a new FROM/TO rate is compared with: the mean of the pair's accepted rates (in
    either direction, expressed as FROM/TO) valid in the 24 hours up to `at`; else the mid in
    force `at` (direct, inverse or crossed); None for the first rate of a pair."""
    rows = ExchangeRate.objects.filter(
        _pair_rows(from_code, to_code),
        status=RateStatus.ACCEPTED,
        is_active=True,
        valid_at__gt=at - AVERAGE_WINDOW,
        valid_at__lte=at,
    ).values_list("from_asset_id", "rate", "reverse_rate")
    with localcontext() as ctx:
        ctx.prec = 60
        values = [
            rate if code == from_code else (reverse or 1 / rate) for code, rate, reverse in rows
        ]
        if values:
            mean = sum(values, Decimal(0)) / len(values)
            return mean.quantize(_PLACES, rounding=ROUND_HALF_EVEN)
    try:
        return exchange_rate_get(from_code, to_code, at=at).rate
    except ExchangeRateNotFound:
        return None


def _lock_rate_book() -> None:
    """Rate changes take turns: two changes of different pairs, each checked while the other was
    not yet committed, could each pass and together close a gaining cycle. The asset rows serve
    as the book's lock (taken in code order; no other writer locks them in another order). A
    batch's rows written before the lock are its own; what another batch committed meanwhile is
    read once the lock is held."""
    list(Asset.objects.select_for_update().order_by("code").values_list("code", flat=True))


def _refuse_arbitrage(
    *, adding: tuple[ExchangeRate, ...] = (), without_ids: tuple[int, ...] = ()
) -> None:
    """Refuse a change after which some cycle of customer conversions would gain: the bids in
    force, with `adding` in force and `without_ids` withdrawn, are checked now and at each later
    moment a recorded rate comes into force (a rate dated ahead meets the rates recorded since).
    Expiry only removes rates, so it never needs a check."""
    _lock_rate_book()
    now = timezone.now()
    later = set(
        ExchangeRate.objects.filter(
            status=RateStatus.ACCEPTED, is_active=True, valid_at__gt=now
        ).values_list("valid_at", flat=True)
    )
    later.update(row.valid_at for row in adding if row.valid_at > now)
    for moment in [now, *sorted(later)]:
        bids = {}
        for row in exchange_rates_in_force(moment, adding=adding, without_ids=without_ids):
            for code in (row.from_asset_id, row.to_asset_id):
                other = row.to_asset_id if code == row.from_asset_id else row.from_asset_id
                bids[(code, other)] = exchange_rate_sides(row, code)[0].bid
        try:
            refuse_profitable_cycles(bids)
        except ExchangeRateArbitrage as exc:
            exc.details["at"] = moment.isoformat()
            raise


def _rate_fields(
    *,
    from_code: Any,
    to_code: Any,
    rate: Any,
    bid: Any,
    ask: Any,
    reverse_rate: Any,
    reverse_bid: Any,
    reverse_ask: Any,
    source: Any,
    valid_at: Any,
    expires_at: Any,
) -> ExchangeRate:
    """The checked input of a rate, as an unsaved row; every problem is reported at once."""
    errors: dict[str, list[str]] = {}

    def value(field: str, number: Any) -> Decimal | None:
        return None if number is None else _rate_value(field, number, errors)

    rate = _rate_value("rate", rate, errors)
    bid, ask = value("bid", bid), value("ask", ask)
    reverse_rate = value("reverse_rate", reverse_rate)
    reverse_bid, reverse_ask = value("reverse_bid", reverse_bid), value("reverse_ask", reverse_ask)
    valid_at = _moment("valid_at", valid_at, errors) or timezone.now()
    expires_at = _moment("expires_at", expires_at, errors)
    for field, code in (("from_code", from_code), ("to_code", to_code)):
        if not isinstance(code, str) or not code:
            errors[field] = ["an asset code is required"]
    if from_code == to_code:
        errors["to_code"] = ["must differ from from_code"]
    if source not in RateSource.values:
        errors["source"] = [f"one of {', '.join(RateSource.values)}"]
    for prefix, mid, low, high in (
        ("", rate, bid, ask),
        ("reverse_", reverse_rate, reverse_bid, reverse_ask),
    ):
        if mid is None and (low is not None or high is not None):
            errors[f"{prefix}rate"] = ["is required with a bid or an ask"]
        if mid is not None and low is not None and low > mid:
            errors[f"{prefix}bid"] = ["must not exceed the rate"]
        if mid is not None and high is not None and high < mid:
            errors[f"{prefix}ask"] = ["must not be below the rate"]
    if expires_at is not None and expires_at <= valid_at:
        errors["expires_at"] = ["must be after valid_at"]
    if errors:
        raise InvalidInput(details=errors)
    for code in (from_code, to_code):
        if not Asset.objects.filter(code=code).exists():
            raise AssetNotFound(details={"asset_code": code})
    return ExchangeRate(
        from_asset_id=from_code,
        to_asset_id=to_code,
        rate=rate,
        bid=bid,
        ask=ask,
        reverse_rate=reverse_rate,
        reverse_bid=reverse_bid,
        reverse_ask=reverse_ask,
        source=source,
        valid_at=valid_at,
        expires_at=expires_at,
        status=RateStatus.ACCEPTED,
    )


def _record(candidate: ExchangeRate, *, check_cycles: bool) -> ExchangeRate:
    from_code, to_code = candidate.from_asset_id, candidate.to_asset_id
    if check_cycles:
        # A pending rate is checked too: the maker learns now, not when it is approved.
        _refuse_arbitrage(adding=(candidate,))
    pair = _load_rate_pair(from_code, to_code)
    reference = _reference(from_code, to_code, candidate.valid_at)
    deviation = pair.record_rate(
        from_code=from_code,
        to_code=to_code,
        rate=candidate.rate,
        bid=candidate.bid,
        ask=candidate.ask,
        source=candidate.source,
        valid_at=candidate.valid_at,
        expires_at=candidate.expires_at,
        reverse_rate=candidate.reverse_rate,
        reverse_bid=candidate.reverse_bid,
        reverse_ask=candidate.reverse_ask,
        reference=reference,
        band_percent=_band_percent(),
        recorded_by=_actor_label(),
    )
    stored = store.save(pair)
    if deviation is not None:
        logger.warning(
            "exchange rate %s/%s of %s deviates %s%% from its reference %s: pending approval",
            from_code,
            to_code,
            candidate.rate,
            deviation,
            reference,
        )
    transaction.on_commit(exchange_rate_cache_drop)
    recorded = next(rec for evt, rec in stored if isinstance(evt, ExchangeRateRecorded))
    return ExchangeRate.objects.get(id=recorded.id)


@store.command
def exchange_rate_record(
    *,
    from_code: str,
    to_code: str,
    rate: Decimal,
    bid: Decimal | None = None,
    ask: Decimal | None = None,
    reverse_rate: Decimal | None = None,
    reverse_bid: Decimal | None = None,
    reverse_ask: Decimal | None = None,
    source: str = "manual",
    valid_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> ExchangeRate:
    """Record a rate: 1 `from_code` = `rate` `to_code`, rounded to RATE_PLACES (18) decimal places.

    The rate also defines the reverse direction (its inverse), unless `reverse_rate` (1 `to_code`
    = `reverse_rate` `from_code`) is recorded with it; the two must not multiply to more than 1.
    Every channel (console, command, provider refresh) records through here, and:
    - a change after which a cycle of conversions at the customer bids would gain is refused
      (ExchangeRateArbitrage, details name the cycle);
    - a rate more than EXCHANGE_RATE_BAND_PCT away from its reference (the pair's 24-hour
      average, else the rate in force) is recorded with status "pending" and a deviation
      warning, and is not used until another staff member approves it (`exchange_rate_approve`).
    The returned row's `status` says which.
    """
    candidate = _rate_fields(
        from_code=from_code,
        to_code=to_code,
        rate=rate,
        bid=bid,
        ask=ask,
        reverse_rate=reverse_rate,
        reverse_bid=reverse_bid,
        reverse_ask=reverse_ask,
        source=source,
        valid_at=valid_at,
        expires_at=expires_at,
    )
    return _record(candidate, check_cycles=True)


def _pending_rate(rate_id: Any) -> tuple[ExchangeRate, int]:
    """The pending row and the version of the event that recorded it in its pair's stream."""
    if not isinstance(rate_id, int) or isinstance(rate_id, bool):
        raise InvalidInput(details={"rate_id": ["must be an integer"]})
    row = ExchangeRate.objects.filter(id=rate_id).first()
    if row is None:
        raise ExchangeRateNotFound(details={"rate_id": rate_id})
    if row.status != RateStatus.PENDING or not row.is_active:
        raise ExchangeRateNotPending(details={"rate_id": rate_id, "status": row.status})
    version = AssetEvent.objects.values_list("aggregate_version", flat=True).get(id=rate_id)
    return row, version


def _staff_decider() -> str:
    if current_actor().get("type") != "staff":
        raise RateDecisionNeedsStaff(details={"actor": _actor_label()})
    return _actor_label()


@store.command
def exchange_rate_approve(*, rate_id: int) -> ExchangeRate:
    """Put a pending rate in force from now on (or from its own validity, if later). Only a
    staff member other than the one who recorded it may, and not if it would open a cycle of
    conversions that gains."""
    by = _staff_decider()
    row, version = _pending_rate(rate_id)
    now = timezone.now()
    if row.expires_at is not None and row.expires_at <= now:
        raise InvalidInput(
            "The rate expired while it waited; record a new one.",
            details={"rate_id": ["has expired"]},
        )
    pair = _load_rate_pair(row.from_asset_id, row.to_asset_id)
    effective_at = max(row.valid_at, now)
    pair.approve_rate(rate_id=rate_id, rate_version=version, by=by, effective_at=effective_at)
    row.valid_at, row.status = effective_at, RateStatus.ACCEPTED
    _refuse_arbitrage(adding=(row,))
    store.save(pair)
    transaction.on_commit(exchange_rate_cache_drop)
    return ExchangeRate.objects.get(id=rate_id)


@store.command
def exchange_rate_reject(*, rate_id: int, reason: str = "") -> ExchangeRate:
    """Refuse a pending rate for good (a staff member other than its maker)."""
    by = _staff_decider()
    row, version = _pending_rate(rate_id)
    pair = _load_rate_pair(row.from_asset_id, row.to_asset_id)
    pair.reject_rate(rate_id=rate_id, rate_version=version, by=by, reason=_reason(reason))
    store.save(pair)
    return ExchangeRate.objects.get(id=rate_id)


@store.command
def exchange_rate_deactivate(*, rate_id: int, reason: str = "") -> ExchangeRate:
    """Withdraw a recorded rate from use (a wrong entry); lookups fall back to older rates,
    unless the rates in force then would let a cycle of conversions gain."""
    if not isinstance(rate_id, int) or isinstance(rate_id, bool):
        raise InvalidInput(details={"rate_id": ["must be an integer"]})
    row = ExchangeRate.objects.filter(id=rate_id).first()
    if row is None:
        raise ExchangeRateNotFound(details={"rate_id": rate_id})
    pair = _load_rate_pair(row.from_asset_id, row.to_asset_id)
    pair.deactivate_rate(rate_id=rate_id, by=_actor_label(), reason=_reason(reason))
    if row.status == RateStatus.ACCEPTED:
        _refuse_arbitrage(without_ids=(rate_id,))
    store.save(pair)
    transaction.on_commit(exchange_rate_cache_drop)
    row.refresh_from_db()
    return row


def _basket_quotes() -> Iterator[Quote]:
    """Each basket's rates at the value of its composition (apps.baskets: one price), computed
    when reached, i.e. from the rates the batch has just recorded."""
    from apps.baskets.services import basket_quotes

    yield from basket_quotes()


@store.command
def _quotes_record(*, quotes: Iterable[Quote], provider_name: str) -> list[ExchangeRate]:
    recorded = []
    for quote in itertools.chain(quotes, _basket_quotes()):
        try:
            # Each quote is a nested command (a savepoint): a refused one leaves no trace.
            with transaction.atomic():
                candidate = _rate_fields(
                    from_code=quote.from_code,
                    to_code=quote.to_code,
                    rate=quote.rate,
                    bid=quote.bid,
                    ask=quote.ask,
                    reverse_rate=None,
                    reverse_bid=None,
                    reverse_ask=None,
                    source=quote.source,
                    valid_at=quote.valid_at,
                    expires_at=quote.expires_at,
                )
                # The batch moves many pairs at once: checked as a whole below, since a
                # market move checked one quote at a time would meet the stale others.
                recorded.append(_record(candidate, check_cycles=False))
        except (AssetNotFound, InvalidInput) as exc:
            logger.warning(
                "skipped a %s quote %s/%s: %s %s",
                provider_name,
                quote.from_code,
                quote.to_code,
                exc.code,
                exc.details,
            )
    if recorded:
        _refuse_arbitrage()
    return recorded


def exchange_rates_refresh(*, provider: RateProvider | None = None) -> int:
    """Fetch quotes from the provider (default: the EXCHANGE_RATE_PROVIDER setting) and record
    them in one transaction; returns how many were recorded (in force or pending). A quote for
    an asset that is not defined here, or with an invalid rate, is logged and skipped; a quote
    beyond the band from its reference waits for approval like any other rate. A batch after
    which a cycle of conversions would gain is refused whole (ExchangeRateArbitrage).

    The fetch happens before the transaction opens, so a slow provider holds no locks.
    """
    provider = provider or rate_provider()
    quotes = list(provider.fetch())
    if not quotes:
        return 0
    recorded = _quotes_record(quotes=quotes, provider_name=provider.name)
    pending = sum(row.status == RateStatus.PENDING for row in recorded)
    logger.info(
        "recorded %d exchange rate(s) from the %s provider, %d pending approval",
        len(recorded),
        provider.name,
        pending,
    )
    return len(recorded)
