"""Custodian tables: the event table and its read models (balances the custodians reported,
reconciliations, discrepancies, inbound webhooks), the shared circuit-breaker state, and the
mock bank's own books."""

from __future__ import annotations

from django.db import models

from apps.core.models import StoredEvent


class CustodianEvent(StoredEvent):
    """The append-only event table of the Custodian and CustodianWebhook aggregates."""

    class Meta(StoredEvent.Meta):
        verbose_name = "custodian event"


class CustodianBalance(models.Model):
    """What a custodian last said our settlement (omnibus) account there holds, per asset."""

    custodian = models.CharField(max_length=60)
    asset_code = models.CharField(max_length=10)
    amount = models.BigIntegerField()
    synced_at = models.DateTimeField()

    class Meta:
        ordering = ["custodian", "asset_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["custodian", "asset_code"], name="custodians_balance_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.custodian} {self.asset_code} {self.amount}"


class CustodianReconciliation(models.Model):
    """One comparison of a custodian's balances with its settlement account in the ledger."""

    uuid = models.UUIDField(primary_key=True)
    custodian = models.CharField(max_length=60)
    checked_at = models.DateTimeField()
    clean = models.BooleanField()
    # [{asset_code, ledger_balance, expected, custodian_balance, difference}, ...]
    results = models.JSONField(default=list)

    class Meta:
        ordering = ["-checked_at"]
        indexes = [
            models.Index(fields=["custodian", "-checked_at"], name="custodians_recon_latest")
        ]

    def __str__(self) -> str:
        outcome = "clean" if self.clean else "DISCREPANCIES"
        return f"{self.custodian} {self.checked_at:%Y-%m-%d %H:%M} {outcome}"


class CustodianDiscrepancy(models.Model):
    """The custodian holds a different amount than the ledger says it should.

    The settlement account is the ledger's mirror of our omnibus account at the custodian: a
    deposit debits it, so it stands at minus what the custodian should hold. `expected` is that
    amount, `difference` what the custodian holds beyond it (negative: money missing there).
    """

    class Status(models.TextChoices):
        OPEN = "open"
        CLEARED = "cleared"  # a later reconciliation found the balances equal again
        SUPERSEDED = "superseded"  # a later reconciliation found other figures
        RESOLVED = "resolved"  # staff explained it

    uuid = models.UUIDField(primary_key=True)
    custodian = models.CharField(max_length=60)
    asset_code = models.CharField(max_length=10)
    ledger_balance = models.BigIntegerField()
    expected = models.BigIntegerField()
    custodian_balance = models.BigIntegerField()
    difference = models.BigIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    reconciliation = models.ForeignKey(
        CustodianReconciliation,
        on_delete=models.PROTECT,
        related_name="discrepancies",
        db_constraint=False,
    )
    detected_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    resolved_by = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at", "asset_code"]
        verbose_name_plural = "custodian discrepancies"
        indexes = [models.Index(fields=["status", "custodian"], name="custodians_discr_status")]
        permissions = [("resolve_custodiandiscrepancy", "Can resolve custodian discrepancies")]

    def __str__(self) -> str:
        return f"{self.custodian} {self.asset_code} {self.difference:+d} ({self.status})"


class CustodianWebhookEvent(models.Model):
    """An inbound custodian notification, processed once (its event id is its identity)."""

    uuid = models.UUIDField(primary_key=True)  # derived from custodian and event id
    custodian = models.CharField(max_length=60)
    event_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    effect = models.JSONField(default=dict)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["custodian", "event_id"], name="custodians_webhook_unique_event"
            )
        ]

    def __str__(self) -> str:
        return f"{self.custodian} {self.event_type} {self.event_id}"


class CircuitBreakerState(models.Model):
    """The circuit breaker of one custodian, shared by every process (plain state).

    Each call's outcome updates this row under a row lock, so all gunicorn and Celery processes
    count the same failures and stop calling a failing custodian together.
    """

    class State(models.TextChoices):
        CLOSED = "closed"
        OPEN = "open"
        HALF_OPEN = "half_open"

    custodian = models.CharField(max_length=60, primary_key=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.CLOSED)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # The latest calls' outcomes, oldest first: "1" success, "0" failure.
    recent_outcomes = models.CharField(max_length=100, blank=True)
    half_open_successes = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    last_failure = models.CharField(max_length=500, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["custodian"]
        permissions = [("reset_circuitbreakerstate", "Can reset a custodian's circuit breaker")]

    def __str__(self) -> str:
        return f"{self.custodian}: {self.state}"


class MockBankAccount(models.Model):
    """An account held at a mock bank: the simulated external bank's own books, never part of
    our ledger. The omnibus account mirrors our settlement account there."""

    custodian = models.CharField(max_length=60)
    account_id = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, default="active")
    balances = models.JSONField(default=dict)  # asset code -> minor units
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["custodian", "account_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["custodian", "account_id"], name="custodians_mockaccount_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.custodian} {self.account_id}"


class MockBankTransaction(models.Model):
    """A transfer at a mock bank. `settle_at` null while pending means it never settles."""

    transaction_id = models.CharField(max_length=40, primary_key=True)
    custodian = models.CharField(max_length=60)
    reference = models.CharField(max_length=200)
    from_account = models.CharField(max_length=64)
    to_account = models.CharField(max_length=64)
    asset_code = models.CharField(max_length=10)
    amount = models.BigIntegerField()
    status = models.CharField(max_length=10)
    settle_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["custodian", "reference"], name="custodians_mocktx_unique_reference"
            )
        ]
        indexes = [models.Index(fields=["custodian", "status"], name="custodians_mocktx_status")]

    def __str__(self) -> str:
        return f"{self.transaction_id} {self.amount} {self.asset_code} {self.status}"


class MockBankCall(models.Model):
    """How often a mock bank was called for one thing (an operation and its subject: a transfer
    reference, a transaction id, an account): the attempt number its fault draw is seeded with.

    Counted in the database, so a call retried by another process is that call's next attempt
    there too, and every process draws the same outcome for the same attempt.
    """

    custodian = models.CharField(max_length=60)
    operation = models.CharField(max_length=40)
    subject = models.CharField(max_length=255)
    calls = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["custodian", "operation", "subject"], name="custodians_mockcall_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.custodian} {self.operation} {self.subject}: {self.calls}"


class ExternalAccount(models.Model):
    """A customer's own account at a custodian, registered with us (plain reference data).

    A deposit pulls money from the account owner's registered account only: pulling from an
    account id the customer merely names would take someone else's money. A withdrawal goes to
    the registered account unless the customer names another destination.
    """

    custodian = models.CharField(max_length=60)
    account_id = models.CharField(max_length=64)
    owner_uuid = models.UUIDField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["custodian", "account_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["custodian", "account_id"], name="custodians_external_unique"
            )
        ]
        indexes = [
            models.Index(fields=["owner_uuid", "custodian"], name="custodians_external_owner")
        ]

    def __str__(self) -> str:
        return f"{self.custodian} {self.account_id}"


class CustodianMovement(models.Model):
    """A customer deposit or withdrawal through a custodian, as the customer sees it: the read
    model of the custodian deposit / withdrawal workflow run of the same uuid, projected from
    the run's events (rebuilt with the workflows app's read models)."""

    class Kind(models.TextChoices):
        DEPOSIT = "deposit"
        WITHDRAWAL = "withdrawal"

    class Status(models.TextChoices):
        PENDING = "pending"  # running, compensating, or waiting for an operator
        COMPLETED = "completed"  # the custodian confirmed; the ledger is booked
        FAILED = "failed"  # never moved at the custodian; nothing is booked
        RETURNED = "returned"  # moved at the custodian, then sent or credited back

    uuid = models.UUIDField(primary_key=True)  # the workflow run's
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    account_uuid = models.UUIDField()
    asset_code = models.CharField(max_length=10)
    amount = models.BigIntegerField()
    custodian = models.CharField(max_length=60)
    counterparty = models.CharField(max_length=64)  # the source or the destination
    reference = models.CharField(max_length=255, blank=True)
    # Whether the custodian accepted the transfer (its step completed): a compensation then
    # returns money that really moved there.
    sent = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "uuid"]
        indexes = [
            models.Index(
                fields=["account_uuid", "kind", "-created_at"], name="custodians_movement_acct"
            ),
            models.Index(fields=["status", "kind"], name="custodians_movement_status"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.asset_code} ({self.status})"
