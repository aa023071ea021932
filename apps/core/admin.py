"""Shared pieces of the operator console: read-only tables and event-table admins."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin, messages

from apps.core.errors import DomainError
from apps.core.models import AggregateStream, IdempotencyRecord, Snapshot


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nobody, superusers included, adds, edits or deletes these rows here: they change only
    through services (read models) or never (events)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StoredEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "event_type", "aggregate_uuid", "aggregate_version", "created_at")
    list_filter = ("event_type",)
    search_fields = ("aggregate_uuid",)
    ordering = ("-id",)
    readonly_fields = (
        "id",
        "aggregate_uuid",
        "aggregate_version",
        "event_type",
        "event_version",
        "event_data",
        "meta_data",
        "hash",
        "created_at",
    )
    show_full_result_count = False  # counting millions of events on every page view is slow


def run_for_each(
    modeladmin: admin.ModelAdmin,
    request,
    objects: Iterable[Any],
    command: Callable[[Any], Any],
    done: str,
) -> None:
    """Run a service per selected object; refusals are shown, the rest still run."""
    succeeded = 0
    for obj in objects:
        try:
            command(obj)
        except DomainError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message} ({exc.code})", messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, f"{done}: {succeeded}", messages.SUCCESS)


@admin.register(AggregateStream)
class AggregateStreamAdmin(ReadOnlyAdmin):
    list_display = ("uuid", "aggregate_type", "version", "updated_at")
    list_filter = ("aggregate_type",)
    search_fields = ("uuid",)
    show_full_result_count = False


@admin.register(Snapshot)
class SnapshotAdmin(ReadOnlyAdmin):
    list_display = ("aggregate_uuid", "aggregate_type", "aggregate_version", "created_at")
    list_filter = ("aggregate_type",)
    search_fields = ("aggregate_uuid",)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    list_display = ("scope", "key", "status_code", "created_at", "expires_at")
    search_fields = ("scope", "key")
