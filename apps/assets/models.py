"""The asset domain's event table and its read models (written only by `projectors.py`)."""

from __future__ import annotations

from django.db import models

from apps.core.models import StoredEvent

RATE_DIGITS = 30
RATE_PLACES = 18


class AssetType(models.TextChoices):
    FIAT = "fiat", "Fiat currency"
    CRYPTO = "crypto", "Crypto asset"
    COMMODITY = "commodity", "Commodity"
    CUSTOM = "custom", "Custom"
    BASKET = "basket", "Basket"


class RateSource(models.TextChoices):
    MANUAL = "manual", "Manual entry"
    API = "api", "Provider API"
    ORACLE = "oracle", "Oracle"
    MARKET = "market", "Market"


class RateStatus(models.TextChoices):
    ACCEPTED = "accepted", "In force"
    PENDING = "pending", "Awaiting approval"
    REJECTED = "rejected", "Rejected"


class AssetEvent(StoredEvent):
    pass


class Asset(models.Model):
    """Read model of an asset. Amounts of it are integers of 10**-precision units."""

    code = models.CharField(max_length=10, primary_key=True)
    uuid = models.UUIDField(unique=True, editable=False)  # the aggregate's uuid
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=10, choices=AssetType.choices)
    precision = models.PositiveSmallIntegerField()
    is_active = models.BooleanField(default=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class ExchangeRate(models.Model):
    """Read model of one recorded rate: 1 unit of `from_asset` is worth `rate` of `to_asset`.

    Its id is the id of the event that recorded it, so a rebuild reproduces it exactly. The
    `reverse_*` columns hold the TO/FROM rate when both were recorded together; without them the
    reverse direction is this rate's inverse. Only an accepted, active row is ever used.
    """

    id = models.BigIntegerField(primary_key=True)
    from_asset = models.ForeignKey(
        Asset, to_field="code", on_delete=models.PROTECT, related_name="rates_from"
    )
    to_asset = models.ForeignKey(
        Asset, to_field="code", on_delete=models.PROTECT, related_name="rates_to"
    )
    rate = models.DecimalField(max_digits=RATE_DIGITS, decimal_places=RATE_PLACES)
    bid = models.DecimalField(
        max_digits=RATE_DIGITS, decimal_places=RATE_PLACES, null=True, blank=True
    )
    ask = models.DecimalField(
        max_digits=RATE_DIGITS, decimal_places=RATE_PLACES, null=True, blank=True
    )
    reverse_rate = models.DecimalField(
        max_digits=RATE_DIGITS, decimal_places=RATE_PLACES, null=True, blank=True
    )
    reverse_bid = models.DecimalField(
        max_digits=RATE_DIGITS, decimal_places=RATE_PLACES, null=True, blank=True
    )
    reverse_ask = models.DecimalField(
        max_digits=RATE_DIGITS, decimal_places=RATE_PLACES, null=True, blank=True
    )
    source = models.CharField(max_length=10, choices=RateSource.choices)
    valid_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    status = models.CharField(
        max_length=10, choices=RateStatus.choices, default=RateStatus.ACCEPTED
    )
    recorded_by = models.CharField(max_length=100, blank=True)
    decided_by = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["from_asset", "to_asset", "-valid_at", "-id"]
        indexes = [
            models.Index(
                fields=["from_asset", "to_asset", "-valid_at"], name="assets_rate_pair_valid"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.from_asset_id}/{self.to_asset_id} {self.rate} @ {self.valid_at:%Y-%m-%d %H:%M}"
        )


class RateDeviation(models.Model):
    """A warning: a new rate was more than the threshold away from the pair's 24-hour average.

    Its id is the id of the event that recorded the warning.
    """

    id = models.BigIntegerField(primary_key=True)
    from_asset = models.ForeignKey(
        Asset, to_field="code", on_delete=models.PROTECT, related_name="deviations_from"
    )
    to_asset = models.ForeignKey(
        Asset, to_field="code", on_delete=models.PROTECT, related_name="deviations_to"
    )
    rate = models.DecimalField(max_digits=RATE_DIGITS, decimal_places=RATE_PLACES)
    average_24h = models.DecimalField(max_digits=RATE_DIGITS, decimal_places=RATE_PLACES)
    deviation_percent = models.DecimalField(max_digits=30, decimal_places=4)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["created_at"], name="assets_deviation_created")]

    def __str__(self) -> str:
        return (
            f"{self.from_asset_id}/{self.to_asset_id} {self.rate} is {self.deviation_percent}% "
            f"from {self.average_24h}"
        )
