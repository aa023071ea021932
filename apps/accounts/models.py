"""Account read models, projected from the accounts event table."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import StoredEvent


class AccountEvent(StoredEvent):
    """The append-only event table of the Account aggregate."""

    class Meta(StoredEvent.Meta):
        verbose_name = "account event"


class Account(models.Model):
    class Kind(models.TextChoices):
        CUSTOMER = "customer"
        SYSTEM = "system"

    uuid = models.UUIDField(primary_key=True)
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        to_field="uuid",
        db_column="owner_uuid",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="accounts",
        db_constraint=False,  # the read model is rebuilt from events; users may be restored later
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CUSTOMER)
    system_code = models.CharField(max_length=60, null=True, blank=True, unique=True)
    frozen = models.BooleanField(default=False)
    frozen_reason = models.CharField(max_length=500, blank=True)
    closed = models.BooleanField(default=False)
    # A staff-forced reversal took a customer balance below zero: someone must follow it up.
    flagged = models.BooleanField(default=False)
    # The account's version and time at its last change of state (opened, frozen, unfrozen,
    # closed); money movements show in AccountBalance.version and the history instead, which
    # spares every transfer two writes to this row.
    version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "uuid"]
        indexes = [models.Index(fields=["owner", "created_at"], name="accounts_owner_created")]
        permissions = [
            ("transact_account", "Can move money into and out of the account"),
            ("freeze_account", "Can freeze and unfreeze the account"),
            ("close_account", "Can close the account"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.uuid})"


class AccountBalance(models.Model):
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="balances", db_constraint=False
    )
    asset_code = models.CharField(max_length=10)
    balance = models.BigIntegerField(default=0)
    version = models.PositiveIntegerField(default=0)  # the account's version at the last change

    class Meta:
        ordering = ["asset_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "asset_code"], name="accounts_balance_unique"
            )
        ]
        indexes = [models.Index(fields=["asset_code"], name="accounts_balance_asset")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.asset_code} {self.balance}"


class Turnover(models.Model):
    """Credits and debits of one account in one asset on one day (UTC)."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="turnovers", db_constraint=False
    )
    asset_code = models.CharField(max_length=10)
    day = models.DateField()
    # Wider than a balance: a day's sum of postings may pass 2^63 even though each posting and
    # each balance is bounded far below it (ASSET_AMOUNT_LIMITS). Exact NUMERIC on PostgreSQL.
    credit = models.DecimalField(max_digits=38, decimal_places=0, default=0)
    debit = models.DecimalField(max_digits=38, decimal_places=0, default=0)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-day", "asset_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "asset_code", "day"], name="accounts_turnover_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.asset_code} {self.day}"


class ReconciliationRun(models.Model):
    """The outcome of one `reconcile` (by an operator or the nightly job), for the console."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    clean = models.BooleanField()
    accounts_checked = models.PositiveIntegerField()
    events_checked = models.PositiveBigIntegerField()
    totals_by_asset = models.JSONField(default=dict)
    discrepancies = models.JSONField(default=list)
    actor = models.JSONField(default=dict)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        outcome = "clean" if self.clean else "DISCREPANCIES"
        return f"reconciliation {self.started_at:%Y-%m-%d %H:%M} {outcome}"
