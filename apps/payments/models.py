"""Transfer read model, projected from the payments event table."""

from __future__ import annotations

from django.db import models

from apps.core.models import StoredEvent


class PaymentEvent(StoredEvent):
    """The append-only event table of the Transfer aggregate."""

    class Meta(StoredEvent.Meta):
        verbose_name = "payment event"


class Transfer(models.Model):
    class Kind(models.TextChoices):
        TRANSFER = "transfer"
        DEPOSIT = "deposit"
        WITHDRAWAL = "withdrawal"
        CONVERSION = "conversion"

    class Status(models.TextChoices):
        COMPLETED = "completed"
        REVERSED = "reversed"

    uuid = models.UUIDField(primary_key=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=12, choices=Status.choices)
    from_account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.PROTECT,
        related_name="transfers_out",
        db_constraint=False,
    )
    to_account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.PROTECT,
        related_name="transfers_in",
        db_constraint=False,
    )
    from_asset = models.CharField(max_length=10)
    to_asset = models.CharField(max_length=10)
    amount = models.BigIntegerField()
    to_amount = models.BigIntegerField()
    rate = models.DecimalField(max_digits=30, decimal_places=18, null=True, blank=True)
    reference = models.CharField(max_length=255, blank=True)
    actor = models.JSONField(default=dict)
    # Why staff moved it (an adjustment, a transfer out of a customer's account); else empty.
    reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField()
    reversed_at = models.DateTimeField(null=True, blank=True)
    reversal_uuid = models.UUIDField(null=True, blank=True)
    reversal_reason = models.CharField(max_length=500, blank=True)
    reversal_forced = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "uuid"]
        indexes = [
            models.Index(fields=["from_account", "-created_at"], name="payments_from_created"),
            models.Index(fields=["to_account", "-created_at"], name="payments_to_created"),
            models.Index(fields=["-created_at"], name="payments_created"),
        ]
        permissions = [("reverse_transfer", "Can reverse a transfer")]

    def __str__(self) -> str:
        return f"{self.kind} {self.uuid} {self.amount} {self.from_asset}"


class MovementRequest(models.Model):
    """Staff moving a customer's money (a ledger-only deposit or withdrawal, or a transfer out of
    the account) waiting for (or decided by) a second staff member."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"

    uuid = models.UUIDField(primary_key=True)
    kind = models.CharField(max_length=12)
    account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.PROTECT,
        related_name="movement_requests",
        db_constraint=False,
    )
    asset_code = models.CharField(max_length=10)
    amount = models.BigIntegerField()
    reference = models.CharField(max_length=255, blank=True)
    reason = models.CharField(max_length=500)
    status = models.CharField(max_length=10, choices=Status.choices)
    maker = models.JSONField(default=dict)
    to_account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.PROTECT,
        related_name="movement_requests_in",
        db_constraint=False,
        null=True,
        blank=True,
        help_text="A transfer's destination",
    )
    checker = models.JSONField(null=True, blank=True)
    decision_reason = models.CharField(max_length=500, blank=True)
    transfer_uuid = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "-created_at"], name="payments_movement_status")]
        permissions = [("approve_movementrequest", "Can approve or reject a manual movement")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.asset_code} ({self.status})"
