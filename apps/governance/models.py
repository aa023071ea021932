"""The governance event table and its read models (written only by `projectors.py`)."""

from __future__ import annotations

from django.db import models

from apps.core.models import StoredEvent


class GovernanceEvent(StoredEvent):
    """The append-only event table of the Poll and Vote aggregates."""

    class Meta(StoredEvent.Meta):
        verbose_name = "governance event"
        # The inherited index name would pass Django's 30-character limit.
        indexes = [models.Index(fields=["event_type"], name="governance_event_type")]


class Poll(models.Model):
    class Type(models.TextChoices):
        SINGLE_CHOICE = "single_choice"
        MULTIPLE_CHOICE = "multiple_choice"
        WEIGHTED_CHOICE = "weighted_choice"
        YES_NO = "yes_no"
        RANKED_CHOICE = "ranked_choice"

    class Status(models.TextChoices):
        DRAFT = "draft"
        ACTIVE = "active"
        CLOSED = "closed"
        EXECUTED = "executed"
        CANCELLED = "cancelled"
        FAILED = "failed"

    class Strategy(models.TextChoices):
        ONE_USER_ONE_VOTE = "one_user_one_vote", "One user, one vote"
        ASSET_WEIGHTED = "asset_weighted", "USD held: one vote per 100 USD"
        GCU_WEIGHTED = "gcu_weighted", "GCU held (minor units)"
        QUADRATIC = "quadratic", "Square root of the asset-weighted power"

    uuid = models.UUIDField(primary_key=True)
    key = models.CharField(max_length=100, null=True, blank=True, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    type = models.CharField(max_length=20, choices=Type.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    options = models.JSONField(default=list)
    max_choices = models.PositiveSmallIntegerField(null=True, blank=True)
    start_date = models.DateTimeField()
    end_date = models.DateTimeField()
    voting_power_strategy = models.CharField(max_length=20, choices=Strategy.choices)
    required_participation = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True
    )
    execution_workflow = models.CharField(max_length=60, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_by = models.JSONField(default=dict)
    # The running tally (option -> exact decimal string), kept by the VoteCast projection.
    totals = models.JSONField(default=dict)
    total_power = models.BigIntegerField(default=0)
    votes_count = models.PositiveIntegerField(default=0)
    results = models.JSONField(null=True, blank=True)  # frozen when the poll closes
    activated_at = models.DateTimeField(null=True, blank=True)
    # The voting-power snapshot (VotingPower rows): when it was taken and its total power.
    power_fixed_at = models.DateTimeField(null=True, blank=True)
    eligible_power = models.BigIntegerField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=500, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)
    execution_outcome = models.JSONField(null=True, blank=True)
    execution_error = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-start_date", "uuid"]
        indexes = [
            models.Index(fields=["status", "end_date"], name="governance_poll_status_end"),
            models.Index(fields=["type"], name="governance_poll_type"),
        ]
        permissions = [
            ("manage_poll", "Can create, activate, close and cancel polls"),
            ("verify_vote", "Can verify the signatures of votes"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.status})"


class Vote(models.Model):
    uuid = models.UUIDField(primary_key=True)
    poll = models.ForeignKey(
        Poll, on_delete=models.CASCADE, related_name="votes", db_constraint=False
    )
    user_uuid = models.UUIDField()
    selected_options = models.JSONField(default=list)
    allocations = models.JSONField(default=dict, blank=True)
    voting_power = models.BigIntegerField()
    strategy = models.CharField(max_length=20)
    signature = models.CharField(max_length=64)
    voted_at = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "uuid"]
        constraints = [
            models.UniqueConstraint(fields=["poll", "user_uuid"], name="governance_vote_once")
        ]
        indexes = [models.Index(fields=["user_uuid"], name="governance_vote_user")]

    def __str__(self) -> str:
        return f"vote {self.uuid} in {self.poll_id}"


class VotingPower(models.Model):
    """A user's voting power in a poll, fixed when the poll was activated (the poll's
    VotingPowerSnapshotted events); users without power have no row."""

    poll = models.ForeignKey(
        Poll, on_delete=models.CASCADE, related_name="voting_powers", db_constraint=False
    )
    user_uuid = models.UUIDField()
    voting_power = models.BigIntegerField()

    class Meta:
        ordering = ["poll", "user_uuid"]
        constraints = [
            models.UniqueConstraint(fields=["poll", "user_uuid"], name="governance_power_once")
        ]

    def __str__(self) -> str:
        return f"{self.user_uuid}: {self.voting_power} in {self.poll_id}"
