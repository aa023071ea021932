"""The baskets event table, its read models (written only by `projectors.py`) and two plain
tables: the partner banks (reference data) and the hourly basket values (a record of
calculations, written by `services.basket_value_record`)."""

from __future__ import annotations

from django.db import models

from apps.core.models import StoredEvent

WEIGHT = {"max_digits": 5, "decimal_places": 2}
VALUE = {"max_digits": 30, "decimal_places": 18}


class BasketEvent(StoredEvent):
    """The append-only event table of the Basket, BasketOperation and BankAllocation aggregates."""

    class Meta(StoredEvent.Meta):
        verbose_name = "basket event"


class BasketAsset(models.Model):
    class Type(models.TextChoices):
        FIXED = "fixed"
        DYNAMIC = "dynamic"

    class Frequency(models.TextChoices):
        DAILY = "daily"
        WEEKLY = "weekly"
        MONTHLY = "monthly"
        QUARTERLY = "quarterly"
        NEVER = "never"

    code = models.CharField(max_length=10, primary_key=True)  # the basket's asset code
    uuid = models.UUIDField(unique=True, editable=False)  # the aggregate's uuid
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=10, choices=Type.choices)
    rebalance_frequency = models.CharField(max_length=10, choices=Frequency.choices)
    is_active = models.BooleanField(default=True)
    last_rebalanced_at = models.DateTimeField(null=True, blank=True)
    last_rebalance = models.JSONField(null=True, blank=True)  # adjustments and value
    reserve_account = models.UUIDField()
    # A composition decided by a vote, waiting for its day: [{"asset_code", "weight"}].
    pending_components = models.JSONField(null=True, blank=True)
    pending_effective_on = models.DateField(null=True, blank=True)
    pending_poll_uuid = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["code"]
        permissions = [("rebalance_basket", "Can rebalance a basket and change its state")]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class BasketComponent(models.Model):
    basket = models.ForeignKey(
        BasketAsset,
        to_field="code",
        on_delete=models.CASCADE,
        related_name="components",
        db_constraint=False,
    )
    asset_code = models.CharField(max_length=10)
    weight = models.DecimalField(**WEIGHT)
    min_weight = models.DecimalField(**WEIGHT)
    max_weight = models.DecimalField(**WEIGHT)
    # Minor units of the asset per minor unit of the basket, fixed at each rebalance so that
    # the value shares equal the weights; empty for a basket fixed before quantities existed.
    # A decimal string, exactly as on the event: SQLite keeps a decimal column as a float.
    quantity = models.CharField(max_length=60, blank=True, default="")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["basket", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["basket", "asset_code"], name="baskets_component_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.basket_id} {self.asset_code} {self.weight}%"


class BasketCompositionChange(models.Model):
    """The composition history: definition, scheduled and applied changes, rebalances.

    Its id is the id of the event that made the change, so a rebuild reproduces it exactly.
    """

    class Kind(models.TextChoices):
        DEFINED = "defined"
        SCHEDULED = "scheduled"
        CHANGED = "changed"
        REBALANCED = "rebalanced"
        QUANTITIES = "quantities"  # the quantities per unit fixed again (value unchanged)

    id = models.BigIntegerField(primary_key=True)
    basket = models.ForeignKey(
        BasketAsset,
        to_field="code",
        on_delete=models.CASCADE,
        related_name="composition_changes",
        db_constraint=False,
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    weights = models.JSONField()  # {"USD": "40.00", ...} after the change (scheduled: decided)
    previous_weights = models.JSONField(null=True, blank=True)
    poll_uuid = models.UUIDField(null=True, blank=True)
    effective_on = models.DateField(null=True, blank=True)
    value = models.DecimalField(**VALUE, null=True, blank=True)  # rebalances: USD per unit
    reason = models.CharField(max_length=500, blank=True)
    actor = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.basket_id} {self.kind} @ {self.created_at:%Y-%m-%d %H:%M}"


class BasketValue(models.Model):
    """The value of one basket unit in USD at a moment (the hourly history)."""

    basket = models.ForeignKey(
        BasketAsset,
        to_field="code",
        on_delete=models.DO_NOTHING,
        related_name="values",
        db_constraint=False,
    )
    value = models.DecimalField(**VALUE)
    currency = models.CharField(max_length=10, default="USD")
    # {"USD": {"weight": "40.00", "rate": "1"}, ...}: what the value was computed from.
    components = models.JSONField(default=dict)
    calculated_at = models.DateTimeField()

    class Meta:
        ordering = ["-calculated_at", "-id"]
        indexes = [
            models.Index(fields=["basket", "-calculated_at"], name="baskets_value_basket_time")
        ]

    def __str__(self) -> str:
        return f"{self.basket_id} = {self.value} {self.currency} @ {self.calculated_at}"


class BasketOperation(models.Model):
    class Kind(models.TextChoices):
        COMPOSE = "compose"
        DECOMPOSE = "decompose"

    uuid = models.UUIDField(primary_key=True)  # also the entry uuid of its postings
    kind = models.CharField(max_length=10, choices=Kind.choices)
    account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.PROTECT,
        related_name="basket_operations",
        db_constraint=False,
    )
    basket_code = models.CharField(max_length=10)
    amount = models.BigIntegerField()
    components = models.JSONField()  # [{"asset_code", "amount", "weight"}]
    actor = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "uuid"]
        indexes = [
            models.Index(fields=["account", "-created_at"], name="baskets_operation_account")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.basket_code} ({self.uuid})"


class PartnerBank(models.Model):
    """A bank that holds customer deposits (reference data)."""

    code = models.CharField(max_length=20, primary_key=True)
    name = models.CharField(max_length=100)
    country = models.CharField(max_length=2)
    # The deposit-insurance limit per depositor, in minor units of `insurance_currency`.
    insurance_limit = models.BigIntegerField()
    insurance_currency = models.CharField(max_length=10, default="EUR")
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class BankAllocationEntry(models.Model):
    """One bank's share of one user's deposits."""

    user_uuid = models.UUIDField()
    bank_code = models.CharField(max_length=20)
    percentage = models.DecimalField(**WEIGHT)
    is_primary = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["user_uuid", "position"]
        verbose_name_plural = "bank allocation entries"
        constraints = [
            models.UniqueConstraint(
                fields=["user_uuid", "bank_code"], name="baskets_allocation_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_uuid} {self.bank_code} {self.percentage}%"
