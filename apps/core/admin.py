"""Shared pieces of the operator console: the theme's base class, read-only tables, event
tables, and actions that ask for input before they call a service."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from unfold.admin import ModelAdmin

from apps.core.errors import DomainError
from apps.core.models import AggregateStream, IdempotencyRecord, Snapshot


class ConsoleAdmin(ModelAdmin):
    """Every console page uses the theme through this class."""


class ReadOnlyAdmin(ConsoleAdmin):
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


def action_with_form(
    modeladmin: admin.ModelAdmin,
    request,
    queryset,
    *,
    form_class: type[forms.Form],
    title: str,
    apply: Callable[[Any, dict], Any],
    done: str,
    single: bool = False,
):
    """An admin action that first asks for input (a reason, an amount) on a confirmation page,
    then calls `apply(obj, cleaned_data)` for each selected object through `run_for_each`."""
    if single and queryset.count() != 1:
        modeladmin.message_user(request, "Select exactly one row for this action.", messages.ERROR)
        return None
    if "apply" in request.POST:
        form = form_class(request.POST)
        if form.is_valid():
            run_for_each(
                modeladmin, request, queryset, lambda obj: apply(obj, form.cleaned_data), done
            )
            return None
    else:
        form = form_class()
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "objects": queryset,
        "action": request.POST.get("action"),
        "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/action_form.html", context)


def require_permission(request, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


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
