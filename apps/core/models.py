"""The event-store tables: the abstract StoredEvent, the stream heads and snapshots."""

from __future__ import annotations

import functools

from django.apps import apps
from django.db import models
from django.db.models.functions import Now


class StoredEvent(models.Model):
    """One event of one aggregate. Each domain app owns a concrete table of this shape.

    Rows are append-only: database triggers reject UPDATE and DELETE (see `AppendOnly` in
    `apps.core.migration_operations`, which every concrete table's migration must run).
    """

    id = models.BigAutoField(primary_key=True)  # the global position in this table
    aggregate_uuid = models.UUIDField()
    aggregate_version = models.PositiveIntegerField()
    event_type = models.CharField(max_length=100)
    event_version = models.PositiveSmallIntegerField(default=1)
    event_data = models.JSONField()
    meta_data = models.JSONField(default=dict)
    hash = models.CharField(max_length=128)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        abstract = True
        ordering = ["id"]
        constraints = [
            # The last guard against a lost update: two writers can never both store version N.
            models.UniqueConstraint(
                fields=["aggregate_uuid", "aggregate_version"],
                name="%(app_label)s_%(class)s_unique_version",
            ),
        ]
        indexes = [models.Index(fields=["event_type"], name="%(app_label)s_%(class)s_type")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.aggregate_uuid} v{self.aggregate_version}"


class AggregateStream(models.Model):
    """The head of one aggregate's stream: its version and the hash of its last event.

    A write locks these rows (in uuid order) before loading, which serialises writers of the same
    aggregate without deadlocks, and carries the chain's last hash so appending needs no lookup.
    """

    uuid = models.UUIDField(primary_key=True)
    aggregate_type = models.CharField(max_length=100)
    version = models.PositiveIntegerField(default=0)
    last_hash = models.CharField(max_length=128, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["aggregate_type"], name="core_stream_type")]

    def __str__(self) -> str:
        return f"{self.aggregate_type} {self.uuid} v{self.version}"


class Snapshot(models.Model):
    """An aggregate's state at a version, so loading replays only the events after it."""

    aggregate_uuid = models.UUIDField()
    aggregate_type = models.CharField(max_length=100)
    aggregate_version = models.PositiveIntegerField()
    state = models.JSONField()
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["aggregate_uuid", "aggregate_version"], name="core_snapshot_unique_version"
            ),
        ]

    def __str__(self) -> str:
        return f"snapshot {self.aggregate_type} {self.aggregate_uuid} v{self.aggregate_version}"


def event_models() -> list[type[StoredEvent]]:
    """Every concrete event table of the installed apps."""
    return [m for m in apps.get_models() if issubclass(m, StoredEvent)]


@functools.cache  # the installed apps do not change while the process runs
def event_model_for(app_label: str) -> type[StoredEvent]:
    for model in event_models():
        if model._meta.app_label == app_label:
            return model
    raise LookupError(f"app {app_label!r} has no StoredEvent table")


class IdempotencyRecord(models.Model):
    """The first response to a money-moving request, kept so a retry with the same key gets it.

    `scope` is the caller (user uuid), so two users' keys never collide; `fingerprint` is the hash
    of the request, so the same key with another request is refused instead of replayed.
    """

    scope = models.CharField(max_length=100)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="core_idempotency_scope_key"),
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key} -> {self.status_code}"
