"""Workflow runs in the operator console: the run, its step log and lease, read-only; retry and
compensate go through the services after a confirmation page."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.html import format_html

from apps.core.admin import ReadOnlyAdmin, StoredEventAdmin, action_with_form
from apps.core.forms import ReasonForm
from apps.workflows.models import JobRun, WorkflowEvent, WorkflowRun, WorkflowStep
from apps.workflows.selectors import workflow_lease_get
from apps.workflows.services import workflow_compensate, workflow_retry


class RetryForm(forms.Form):
    confirm = forms.BooleanField(
        label="Take the selected runs up again now",
        help_text="A failed run resumes its compensation; a waiting run stops waiting and its "
        "current step gets fresh attempts.",
    )


class StepInline(admin.TabularInline):
    model = WorkflowStep
    fields = (
        "position",
        "name",
        "status",
        "attempts",
        "result",
        "compensation_result",
        "error",
        "completed_at",
        "compensated_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("position",)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WorkflowRun)
class WorkflowRunAdmin(ReadOnlyAdmin):
    list_display = (
        "uuid",
        "workflow_type",
        "status_shown",
        "current_step",
        "created_at",
        "updated_at",
        "finished_at",
    )
    list_filter = ("status", "workflow_type")
    search_fields = ("uuid", "workflow_type", "parent__uuid")
    date_hierarchy = "created_at"
    inlines = (StepInline,)
    readonly_fields = (
        "uuid",
        "workflow_type",
        "status",
        "current_step",
        "input",
        "error",
        "started_by",
        "parent",
        "lease",
        "version",
        "created_at",
        "updated_at",
        "finished_at",
    )
    actions = ("retry", "compensate")

    @admin.display(description="Status", ordering="status")
    def status_shown(self, run: WorkflowRun) -> str:
        colour = {
            WorkflowRun.Status.COMPLETED: "green",
            WorkflowRun.Status.COMPENSATED: "orange",
            WorkflowRun.Status.FAILED: "red",
        }.get(run.status, "inherit")
        return format_html('<span style="color:{}">{}</span>', colour, run.get_status_display())

    @admin.display(description="Lease")
    def lease(self, run: WorkflowRun) -> str:
        lease = workflow_lease_get(run.uuid)
        if lease is None:
            return "-"
        parts = []
        if lease.owner:
            parts.append(f"held by {lease.owner} until {lease.locked_until:%Y-%m-%d %H:%M:%S}")
        if lease.due_at:
            parts.append(f"due {lease.due_at:%Y-%m-%d %H:%M:%S}")
        if lease.step:
            parts.append(f"{lease.phase} {lease.step}, attempt {lease.attempt}")
        return "; ".join(parts) or "idle"

    def has_operate_permission(self, request):
        return request.user.has_perm("workflows.operate_workflowrun")

    @admin.action(description="Retry the selected runs now", permissions=["operate"])
    def retry(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=RetryForm,
            title="Retry",
            apply=lambda run, data: workflow_retry(run_uuid=run.uuid),
            done="Taken up again",
        )

    @admin.action(description="Compensate the selected runs", permissions=["operate"])
    def compensate(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title="Compensate",
            apply=lambda run, data: workflow_compensate(run_uuid=run.uuid, reason=data["reason"]),
            done="Compensation started",
        )


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = ("job", "status", "started_at", "finished_at", "task_id")
    list_filter = ("status", "job")
    search_fields = ("job", "task_id")
    date_hierarchy = "started_at"


@admin.register(WorkflowEvent)
class WorkflowEventAdmin(StoredEventAdmin):
    pass
