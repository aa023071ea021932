"""Read side of assets and exchange rates: the interface other apps call.

`exchange_rate_get` answers from Django's cache, keyed by pair under a version token that
`exchange_rate_cache_drop` replaces when a rate is recorded (after commit), so every cached quote
goes stale at once. A cached quote also lives at most EXCHANGE_RATE_CACHE_SECONDS and never past
the expiry of a rate it was made from.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, Inexact, localcontext

from django.conf import settings
from django.core.cache import cache
from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import Greatest, Least, RowNumber
from django.utils import timezone

from apps.assets.models import Asset, ExchangeRate, RateStatus
from apps.assets.rates import Sides, chained, customer_sides, inverse
from apps.core.errors import AssetInactive, AssetNotFound, ExchangeRateNotFound, InvalidInput

CROSS_CURRENCY = "USD"

_RATES_VERSION_KEY = "assets:rates:version"
_CATALOGUE_KEY = "assets:catalogue"
_CATALOGUE_SECONDS = 300
_CACHEABLE_CODE = re.compile(r"^[A-Za-z0-9._-]{1,20}$")


@dataclass(frozen=True)
class RateQuote:
    """One unit of `from_code` is worth `rate` units of `to_code`, and how that was found."""

    from_code: str
    to_code: str
    rate: Decimal
    bid: Decimal | None
    ask: Decimal | None
    source: str
    valid_at: datetime
    expires_at: datetime | None
    derivation: str  # "identity" | "direct" | "inverse" | "cross"


@dataclass(frozen=True)
class Conversion:
    """`amount` minor units of `from_code` are `converted_amount` minor units of `to_code`."""

    from_code: str
    to_code: str
    amount: int
    converted_amount: int
    rate: Decimal


# --- assets --------------------------------------------------------------------------------------


def asset_get(code: str) -> Asset:
    try:
        return Asset.objects.get(code=code)
    except Asset.DoesNotExist:
        raise AssetNotFound(details={"asset_code": code}) from None


@dataclass(frozen=True)
class _Catalogue:
    """Every asset's precision and the codes of the active ones: one cache entry, since every
    money movement asks both and a cache read is a round trip."""

    precisions: dict[str, int]
    active: frozenset[str]


def _catalogue() -> _Catalogue:
    # Cached as builtins, not as the class, so that a release changing the class can still read
    # what an older one cached.
    cached = cache.get(_CATALOGUE_KEY)
    if cached is None:
        rows = Asset.objects.values_list("code", "precision", "is_active")
        cached = (
            {code: precision for code, precision, _ in rows},
            frozenset(code for code, _, is_active in rows if is_active),
        )
        cache.set(_CATALOGUE_KEY, cached, _CATALOGUE_SECONDS)
    return _Catalogue(*cached)


def asset_get_active(code: str) -> Asset:
    """The asset if it exists and is active; an active one comes from the cache, unsaved."""
    catalogue = _catalogue()
    if code in catalogue.active:
        return Asset(code=code, precision=catalogue.precisions[code], is_active=True)
    asset = asset_get(code)
    if not asset.is_active:
        raise AssetInactive(details={"asset_code": code})
    return asset


def assets_of_type(codes: list[str], asset_type: str) -> set[str]:
    """Those of `codes` that are assets of this type (one query)."""
    return set(Asset.objects.filter(code__in=codes, type=asset_type).values_list("code", flat=True))


def asset_list(*, type: str | None = None, is_active: bool | None = None) -> QuerySet[Asset]:
    assets = Asset.objects.order_by("code")
    if type is not None:
        assets = assets.filter(type=type)
    if is_active is not None:
        assets = assets.filter(is_active=is_active)
    return assets


def asset_precisions() -> dict[str, int]:
    """Every asset's precision (active or not), from the cache when it can."""
    return _catalogue().precisions


def _precision(code: str) -> int:
    """An asset's precision: from the cache, or from the table for an asset defined since.

    A precision never changes once defined, so a cached one is never wrong, only maybe missing.
    """
    precision = asset_precisions().get(code)
    if precision is None:
        precision = Asset.objects.filter(code=code).values_list("precision", flat=True).first()
        if precision is None:
            raise AssetNotFound(details={"asset_code": code})
    return precision


def asset_cache_drop() -> None:
    cache.delete(_CATALOGUE_KEY)


# --- exchange rates ------------------------------------------------------------------------------


def exchange_rate_cache_drop() -> None:
    """Make every cached quote stale: later lookups use a new version token."""
    cache.set(_RATES_VERSION_KEY, uuid.uuid4().hex, None)


def _rates_version() -> str:
    version = cache.get(_RATES_VERSION_KEY)
    if version is None:
        cache.add(_RATES_VERSION_KEY, uuid.uuid4().hex, None)
        version = cache.get(_RATES_VERSION_KEY)
    return version or uuid.uuid4().hex  # a cache that keeps nothing: never a hit


def _half_spread() -> Decimal:
    """The bank's margin on each side of a mid, as a fraction (EXCHANGE_SPREAD_BPS is both)."""
    return Decimal(settings.EXCHANGE_SPREAD_BPS) / 20000


def _usable(at: datetime) -> Q:
    return Q(status=RateStatus.ACCEPTED, is_active=True, valid_at__lte=at)


def _expired(row: ExchangeRate, at: datetime) -> bool:
    return row.expires_at is not None and row.expires_at <= at


def _newest_of_pair(from_code: str, to_code: str, at: datetime) -> ExchangeRate | None:
    """The rate in force between two assets `at`: the newest accepted one recorded in either
    direction. When it has expired the pair has none: an older rate is never revived by the
    passing of time, since it was never checked against the rates recorded since."""
    row = (
        ExchangeRate.objects.filter(
            _usable(at),
            Q(from_asset_id=from_code, to_asset_id=to_code)
            | Q(from_asset_id=to_code, to_asset_id=from_code),
        )
        .order_by("-valid_at", "-id")
        .first()
    )
    return None if row is None or _expired(row, at) else row


def exchange_rate_sides(row: ExchangeRate, from_code: str) -> tuple[Sides, str]:
    """The quote a rate row gives from `from_code` to its other asset, and its derivation: its
    own direction as recorded, the reverse recorded with it, or else its inverse. Each side is
    at least the configured spread from the mid."""
    half = _half_spread()
    recorded = customer_sides(row.rate, row.bid, row.ask, half)
    if row.from_asset_id == from_code:
        return recorded, "direct"
    if row.reverse_rate is not None:
        return customer_sides(row.reverse_rate, row.reverse_bid, row.reverse_ask, half), "paired"
    return inverse(recorded), "inverse"


def exchange_rate_quote(row: ExchangeRate, from_code: str | None = None) -> RateQuote:
    """The quote a rate row gives from `from_code` (default: the direction it was recorded in)."""
    from_code = from_code or row.from_asset_id
    to_code = row.to_asset_id if from_code == row.from_asset_id else row.from_asset_id
    sides, derivation = exchange_rate_sides(row, from_code)
    return RateQuote(
        from_code=from_code,
        to_code=to_code,
        rate=sides.mid,
        bid=sides.bid,
        ask=sides.ask,
        source=row.source,
        valid_at=row.valid_at,
        expires_at=row.expires_at,
        derivation=derivation,
    )


def _leg(from_code: str, to_code: str, at: datetime) -> RateQuote | None:
    row = _newest_of_pair(from_code, to_code, at)
    return None if row is None else exchange_rate_quote(row, from_code)


def _earliest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return min(known) if known else None


def _lookup(from_code: str, to_code: str, at: datetime) -> RateQuote:
    quote = _leg(from_code, to_code, at)
    if quote is not None:
        return quote
    if CROSS_CURRENCY not in (from_code, to_code):
        first = _leg(from_code, CROSS_CURRENCY, at)
        second = _leg(CROSS_CURRENCY, to_code, at) if first is not None else None
        if first is not None and second is not None:
            crossed = chained(
                Sides(first.rate, first.bid, first.ask), Sides(second.rate, second.bid, second.ask)
            )
            return RateQuote(
                from_code=from_code,
                to_code=to_code,
                rate=crossed.mid,
                bid=crossed.bid,
                ask=crossed.ask,
                source=first.source
                if first.source == second.source
                else f"{first.source}+{second.source}",
                valid_at=max(first.valid_at, second.valid_at),
                expires_at=_earliest(first.expires_at, second.expires_at),
                derivation="cross",
            )
    raise ExchangeRateNotFound(details={"from": from_code, "to": to_code})


def _identity(code: str, at: datetime) -> RateQuote:
    _precision(code)  # an unknown asset has no rate, not even to itself
    one = Decimal(1)
    return RateQuote(code, code, one, one, one, "identity", at, None, "identity")


def exchange_rate_get(from_code: str, to_code: str, *, at: datetime | None = None) -> RateQuote:
    """The quote in force `at` (default now): the pair's newest rate (its own direction, the
    reverse recorded with it, or its inverse), else crossed through USD. `rate` is the mid,
    for valuation; `bid` is what a customer converting gets."""
    if at is not None:
        return _identity(from_code, at) if from_code == to_code else _lookup(from_code, to_code, at)
    now = timezone.now()
    if from_code == to_code:
        return _identity(from_code, now)
    if not (_CACHEABLE_CODE.match(from_code) and _CACHEABLE_CODE.match(to_code)):
        return _lookup(from_code, to_code, now)
    key = f"assets:rate:{_rates_version()}:{from_code}:{to_code}"
    quote = cache.get(key)
    if quote is not None:
        return quote
    quote = _lookup(from_code, to_code, now)
    seconds = settings.EXCHANGE_RATE_CACHE_SECONDS
    if quote.expires_at is not None:
        seconds = min(seconds, (quote.expires_at - now) // timedelta(seconds=1))
    if seconds > 0:
        cache.set(key, quote, seconds)
    return quote


def exchange_rates_in_force(
    at: datetime,
    *,
    adding: tuple[ExchangeRate, ...] = (),
    without_ids: tuple[int, ...] = (),
) -> list[ExchangeRate]:
    """The rate in force `at` for every pair of assets (one row per unordered pair), as it would
    be with `adding` (unsaved or pending rows, taken as accepted) and without the rows whose ids
    are `without_ids`. The services check a change against this before making it."""
    ranked = (
        ExchangeRate.objects.filter(_usable(at))
        .exclude(id__in=without_ids)
        .annotate(
            newness=Window(
                RowNumber(),
                partition_by=[Least("from_asset", "to_asset"), Greatest("from_asset", "to_asset")],
                order_by=[F("valid_at").desc(), F("id").desc()],
            )
        )
    )
    newest_ids = list(ranked.filter(newness=1).values_list("id", flat=True))
    by_pair = {
        frozenset((row.from_asset_id, row.to_asset_id)): row
        for row in ExchangeRate.objects.filter(id__in=newest_ids)
    }
    for row in adding:  # recorded now, so newer than a stored row of the same validity
        pair = frozenset((row.from_asset_id, row.to_asset_id))
        current = by_pair.get(pair)
        if row.valid_at <= at and (current is None or row.valid_at >= current.valid_at):
            by_pair[pair] = row
    return [row for row in by_pair.values() if not _expired(row, at)]


def exchange_rate_list(
    *, from_code: str | None = None, to_code: str | None = None, source: str | None = None
) -> QuerySet[ExchangeRate]:
    """The rate in force of every pair, as recorded (FROM/TO in the direction it was entered),
    optionally filtered."""
    ids = [row.id for row in exchange_rates_in_force(timezone.now())]
    rates = ExchangeRate.objects.filter(id__in=ids).order_by("from_asset", "to_asset")
    if from_code is not None:
        rates = rates.filter(from_asset_id=from_code)
    if to_code is not None:
        rates = rates.filter(to_asset_id=to_code)
    if source is not None:
        rates = rates.filter(source=source)
    return rates


# --- conversion ----------------------------------------------------------------------------------


def _minor_units(amount: int, rate: Decimal, from_code: str, to_code: str, rounding: str) -> int:
    """amount / 10**p_from * rate * 10**p_to, computed exactly, then rounded once."""
    from_precision, to_precision = _precision(from_code), _precision(to_code)
    with localcontext() as ctx:
        # Enough digits for the exact product; Inexact is trapped to prove nothing was rounded.
        ctx.prec = max(60, len(str(abs(amount))) + len(rate.as_tuple().digits) + 2)
        ctx.traps[Inexact] = True
        exact = (Decimal(amount) * rate).scaleb(to_precision - from_precision)
        return int(exact.to_integral_value(rounding=rounding))


def _amount(amount: int) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidInput(details={"amount": ["must be an integer number of minor units"]})
    if amount < 0:
        raise InvalidInput(details={"amount": ["must not be negative"]})
    return amount


def convert(amount: int, from_code: str, to_code: str) -> Conversion:
    """The customer's quote: what `amount` minor units of `from_code` buy of `to_code`.

    It converts at the bid (the mid less the bank's spread) and rounds down to the target's
    minor units, so the customer never gets a fraction the bank did not receive; the residue
    stays with the counterparty of the conversion (the FX position). `rate` is the bid applied.
    A result of 0 means the amount is too small to buy one minor unit.
    """
    amount = _amount(amount)
    _precision(from_code), _precision(to_code)  # an unknown asset, before a missing rate
    quote = exchange_rate_get(from_code, to_code)
    return Conversion(
        from_code=from_code,
        to_code=to_code,
        amount=amount,
        converted_amount=_minor_units(amount, quote.bid, from_code, to_code, ROUND_DOWN),
        rate=quote.bid,
    )


def value_at_mid(
    amount: int,
    from_code: str,
    to_code: str,
    *,
    at: datetime | None = None,
    rounding: str = ROUND_HALF_EVEN,
) -> int:
    """What `amount` minor units of `from_code` are worth in `to_code` at the mid, rounded
    half-even (or as `rounding` says: limits round up, so no amount is worth nothing): for
    valuation only (limits, thresholds, reports), never for paying out."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidInput(details={"amount": ["must be an integer number of minor units"]})
    _precision(from_code), _precision(to_code)
    quote = exchange_rate_get(from_code, to_code, at=at)
    return _minor_units(amount, quote.rate, from_code, to_code, rounding)
