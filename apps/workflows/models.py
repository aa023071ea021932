"""Workflow tables: the event table, the run and step read models, the lease, and job runs.

The run is event-sourced (why: `apps.workflows.aggregates.WorkflowRun`); these read models are
its projection. The lease is a plain table beside it: heartbeats as events would bury the log
in noise, and a lease must be writable without replaying anything.
"""

from __future__ import annotations

from django.db import models

from apps.core.models import StoredEvent


class WorkflowEvent(StoredEvent):
    """The append-only event table of the WorkflowRun aggregate."""

    class Meta(StoredEvent.Meta):
        verbose_name = "workflow event"


class WorkflowRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        COMPENSATING = "compensating"
        COMPENSATED = "compensated"
        FAILED = "failed"

    uuid = models.UUIDField(primary_key=True)
    workflow_type = models.CharField(max_length=100)
    status = models.CharField(max_length=12, choices=Status.choices)
    input = models.JSONField(default=dict)
    current_step = models.CharField(max_length=100, blank=True)
    error = models.JSONField(null=True, blank=True)
    started_by = models.JSONField(default=dict)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        db_constraint=False,  # read models are rebuilt from events in any order
    )
    version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "uuid"]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="workflows_run_status"),
            models.Index(fields=["workflow_type", "-created_at"], name="workflows_run_type"),
        ]
        permissions = [("operate_workflowrun", "Can retry and compensate workflow runs")]

    def __str__(self) -> str:
        return f"{self.workflow_type} {self.uuid} ({self.status})"


class WorkflowStep(models.Model):
    """One planned step of a run: its result, its compensation, and what went wrong."""

    class Status(models.TextChoices):
        PENDING = "pending"
        STARTED = "started"
        COMPLETED = "completed"
        FAILED = "failed"
        COMPENSATED = "compensated"
        COMPENSATION_FAILED = "compensation_failed"

    run = models.ForeignKey(
        WorkflowRun, on_delete=models.CASCADE, related_name="steps", db_constraint=False
    )
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    compensable = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    compensation_result = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    # "<custodian>:<transaction id>" of what the step created outside, so an inbound webhook
    # about it can wake the run that waits for it.
    external_id = models.CharField(max_length=200, blank=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    compensated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "name"], name="workflows_step_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class WorkflowLease(models.Model):
    """Who advances a run and until when; when it is due next. Plain state, not a read model.

    A worker claims a run by setting `owner` and `locked_until` where the lease is free or has
    expired, and renews it before and inside every step; a worker that dies stops renewing, the
    lease expires and `resume_stale_workflows` hands the run to another worker. Every write of
    a step checks that the writer still owns the lease, so a worker that stalled past its lease
    cannot record anything once another one has taken over.
    """

    run_uuid = models.UUIDField(primary_key=True)
    owner = models.CharField(max_length=200, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When the run should be advanced next (a backoff or a poll); null: nothing to do.
    due_at = models.DateTimeField(null=True, blank=True)
    # The step being worked on, for attempt counting and deadlines across workers and crashes.
    step = models.CharField(max_length=100, blank=True)
    phase = models.CharField(max_length=12, blank=True)  # run | compensate
    attempt = models.PositiveIntegerField(default=0)
    step_started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["due_at"], name="workflows_lease_due")]

    def __str__(self) -> str:
        return f"lease {self.run_uuid} {self.owner or 'free'}"


class JobRun(models.Model):
    """One run of a scheduled job (Celery beat), so the console shows what ran and what failed."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    job = models.CharField(max_length=100)
    task_id = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    summary = models.JSONField(default=dict)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["job", "-started_at"], name="workflows_jobrun_job")]

    def __str__(self) -> str:
        return f"{self.job} {self.started_at:%Y-%m-%d %H:%M} {self.status}"
