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
from decimal import ROUND_HALF_EVEN, Decimal, Inexact, localcontext

from django.conf import settings
from django.core.cache import cache
from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from apps.assets.models import Asset, ExchangeRate
from apps.core.errors import AssetInactive, AssetNotFound, ExchangeRateNotFound, InvalidInput

# Rates derived by inversion or through USD keep this many significant digits.
DERIVED_RATE_DIGITS = 28
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


def _valid_at(at: datetime) -> Q:
    return Q(is_active=True, valid_at__lte=at) & (Q(expires_at__isnull=True) | Q(expires_at__gt=at))


def _stored(from_code: str, to_code: str, at: datetime) -> ExchangeRate | None:
    return (
        ExchangeRate.objects.filter(_valid_at(at), from_asset_id=from_code, to_asset_id=to_code)
        .order_by("-valid_at", "-id")
        .first()
    )


def _inverse(value: Decimal | None) -> Decimal | None:
    if value is None or not value:
        return None
    with localcontext() as ctx:
        ctx.prec = DERIVED_RATE_DIGITS
        ctx.rounding = ROUND_HALF_EVEN
        return 1 / value


def _product(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    if a is None or b is None:
        return None
    with localcontext() as ctx:
        ctx.prec = DERIVED_RATE_DIGITS
        ctx.rounding = ROUND_HALF_EVEN
        return a * b


def _leg(from_code: str, to_code: str, at: datetime) -> RateQuote | None:
    """The direct rate of the pair, else the inverse of the reverse pair's rate."""
    row = _stored(from_code, to_code, at)
    if row is not None:
        return RateQuote(
            from_code=from_code,
            to_code=to_code,
            rate=row.rate,
            bid=row.bid,
            ask=row.ask,
            source=row.source,
            valid_at=row.valid_at,
            expires_at=row.expires_at,
            derivation="direct",
        )
    row = _stored(to_code, from_code, at)
    if row is not None:
        return RateQuote(
            from_code=from_code,
            to_code=to_code,
            rate=_inverse(row.rate),
            bid=_inverse(row.ask),
            ask=_inverse(row.bid),
            source=row.source,
            valid_at=row.valid_at,
            expires_at=row.expires_at,
            derivation="inverse",
        )
    return None


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
            return RateQuote(
                from_code=from_code,
                to_code=to_code,
                rate=_product(first.rate, second.rate),
                bid=_product(first.bid, second.bid),
                ask=_product(first.ask, second.ask),
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
    """The rate valid `at` (default now): direct, else inverse, else cross through USD."""
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


def exchange_rate_list(
    *, from_code: str | None = None, to_code: str | None = None, source: str | None = None
) -> QuerySet[ExchangeRate]:
    """The current rate of every pair (the newest valid one), optionally filtered."""
    current = ExchangeRate.objects.filter(_valid_at(timezone.now()))
    if from_code is not None:
        current = current.filter(from_asset_id=from_code)
    if to_code is not None:
        current = current.filter(to_asset_id=to_code)
    ranked = current.annotate(
        newness=Window(
            RowNumber(),
            partition_by=[F("from_asset"), F("to_asset")],
            order_by=[F("valid_at").desc(), F("id").desc()],
        )
    )
    newest_ids = list(ranked.filter(newness=1).values_list("id", flat=True))
    rates = ExchangeRate.objects.filter(id__in=newest_ids).order_by("from_asset", "to_asset")
    if source is not None:
        rates = rates.filter(source=source)
    return rates


# --- conversion ----------------------------------------------------------------------------------


def convert(amount: int, from_code: str, to_code: str) -> Conversion:
    """Convert integer minor units of `from_code` into minor units of `to_code`.

    amount / 10**p_from * rate * 10**p_to is computed exactly, then rounded half-even once.
    """
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidInput(details={"amount": ["must be an integer number of minor units"]})
    from_precision, to_precision = _precision(from_code), _precision(to_code)
    quote = exchange_rate_get(from_code, to_code)
    with localcontext() as ctx:
        # Enough digits for the exact product; Inexact is trapped to prove nothing was rounded.
        ctx.prec = max(60, len(str(abs(amount))) + len(quote.rate.as_tuple().digits) + 2)
        ctx.traps[Inexact] = True
        exact = (Decimal(amount) * quote.rate).scaleb(to_precision - from_precision)
        converted = int(exact.to_integral_value(rounding=ROUND_HALF_EVEN))
    return Conversion(
        from_code=from_code,
        to_code=to_code,
        amount=amount,
        converted_amount=converted,
        rate=quote.rate,
    )
