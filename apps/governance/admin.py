"""Governance in the console: polls (create, activate, close, cancel, results, votes) and the
verification of vote signatures. Every change goes through the services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from unfold.decorators import action

from apps.core.admin import ReadOnlyAdmin, StoredEventAdmin, action_with_form
from apps.core.errors import DomainError
from apps.core.forms import ReasonForm
from apps.governance.aggregates import POLL_TYPES, STRATEGIES, WEIGHTED_CHOICE
from apps.governance.models import GovernanceEvent, Poll, Vote, VotingPower
from apps.governance.selectors import poll_results_get, vote_list, vote_verify
from apps.governance.services import (
    execution_workflows,
    poll_activate,
    poll_cancel,
    poll_close,
    poll_create,
)

VOTES_SHOWN = 100
WEIGHT_FIELDS = ("min_weight", "max_weight", "default_weight")


class ActivateForm(forms.Form):
    confirm = forms.BooleanField(
        label="I confirm opening the poll for votes",
        help_text="Only a draft inside its window is activated.",
    )


class CloseForm(forms.Form):
    confirm = forms.BooleanField(
        label="I confirm closing the poll now",
        help_text="The results are frozen; the execution workflow runs if it is due.",
    )


class PollForm(forms.Form):
    title = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    type = forms.ChoiceField(choices=[(t, t.replace("_", " ")) for t in POLL_TYPES])
    options = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="One option per line: id | label. Weighted polls may add "
        "| min | max | default (percent).",
    )
    max_choices = forms.IntegerField(
        min_value=1, required=False, help_text="Multiple choice: at most this many options."
    )
    start_date = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    end_date = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    voting_power_strategy = forms.ChoiceField(choices=[(s, s) for s in STRATEGIES])
    required_participation = forms.DecimalField(
        min_value=0, max_value=100, decimal_places=2, required=False, help_text="Percent."
    )
    execution_workflow = forms.ChoiceField(required=False)
    metadata = forms.JSONField(required=False, help_text='e.g. {"basket_code": "GCU"}')

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["execution_workflow"].choices = [("", "none")] + [
            (name, f"{name}: {workflow.description}")
            for name, workflow in sorted(execution_workflows().items())
        ]

    def clean_options(self) -> list[dict[str, str]]:
        weighted = self.data.get("type") == WEIGHTED_CHOICE
        options = []
        for number, line in enumerate(self.cleaned_data["options"].splitlines(), start=1):
            if not line.strip():
                continue
            parts = [part.strip() for part in line.split("|")]
            if len(parts) not in ((2, 5) if weighted else (2,)):
                shape = "id | label | min | max | default" if weighted else "id | label"
                raise forms.ValidationError(f"Line {number}: write {shape}")
            option = {"id": parts[0], "label": parts[1]}
            if len(parts) == 5:
                option |= dict(zip(WEIGHT_FIELDS, parts[2:], strict=True))
            options.append(option)
        return options


@admin.register(Poll)
class PollAdmin(ReadOnlyAdmin):
    list_display = (
        "title",
        "type",
        "status",
        "voting_power_strategy",
        "start_date",
        "end_date",
        "votes_count",
        "total_power",
        "eligible_power",
    )
    list_filter = ("status", "type", "voting_power_strategy")
    search_fields = ("uuid", "title", "key")
    date_hierarchy = "start_date"
    actions = ("activate", "close", "cancel", "verify_signatures")
    actions_list = ("new_poll",)
    change_form_template = "admin/governance/poll/change_form.html"

    def has_manage_permission(self, request):
        return request.user.has_perm("governance.manage_poll")

    def has_verify_permission(self, request):
        return request.user.has_perm("governance.verify_vote")

    @action(description="New poll", url_path="new", permissions=["manage"])
    def new_poll(self, request):
        form = PollForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
            try:
                poll = poll_create(**data)
            except DomainError as exc:
                form.add_error(None, f"{exc.message} {exc.details or ''}")
            else:
                self.message_user(request, f"Poll created as a draft: {poll}", messages.SUCCESS)
                return redirect("admin:governance_poll_change", poll.uuid)
        context = {
            **self.admin_site.each_context(request),
            "title": "New poll",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/plain_form.html", context)

    @admin.action(description="Activate selected polls", permissions=["manage"])
    def activate(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=ActivateForm,
            title="Activate",
            apply=lambda poll, _: poll_activate(poll_uuid=poll.uuid),
            done="Activated",
        )

    @admin.action(description="Close selected polls now", permissions=["manage"])
    def close(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=CloseForm,
            title="Close",
            apply=lambda poll, _: poll_close(poll_uuid=poll.uuid),
            done="Closed",
        )

    @admin.action(description="Cancel selected polls", permissions=["manage"])
    def cancel(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title="Cancel",
            apply=lambda poll, data: poll_cancel(poll_uuid=poll.uuid, reason=data["reason"]),
            done="Cancelled",
        )

    @admin.action(description="Verify the vote signatures", permissions=["verify"])
    def verify_signatures(self, request, queryset):
        for poll in queryset:
            _report_verification(self, request, f"{poll.title}:", vote_list(poll_uuid=poll.uuid))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        poll = get_object_or_404(Poll, pk=object_id)
        votes = list(vote_list(poll_uuid=poll.uuid)[:VOTES_SHOWN])
        verify = request.user.has_perm("governance.verify_vote")
        try:
            results = poll_results_get(poll)
        except DomainError as exc:
            results, results_error = None, f"{exc.message} ({exc.code})"
        else:
            results_error = None
        extra = {
            "poll": poll,
            "results": results,
            "results_error": results_error,
            "option_rows": [
                {**option, "total": (results or {}).get("totals", {}).get(option["id"], "0")}
                for option in poll.options
            ],
            "votes": [
                {"vote": vote, "verification": vote_verify(vote) if verify else None}
                for vote in votes
            ],
            "more_votes": poll.votes_count > VOTES_SHOWN,
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})


def _report_verification(modeladmin, request, label: str, votes) -> None:
    checked, broken = 0, []
    for vote in votes:
        checked += 1
        verification = vote_verify(vote)
        if not verification.valid:
            broken.append(f"{vote.uuid}: {'; '.join(verification.problems)}")
    if broken:
        shown = " | ".join(broken[:10])
        message = f"{label} {len(broken)} of {checked} vote(s) fail: {shown}"
        modeladmin.message_user(request, message, messages.ERROR)
    else:
        modeladmin.message_user(request, f"{label} {checked} vote(s) verify.", messages.SUCCESS)


@admin.register(Vote)
class VoteAdmin(ReadOnlyAdmin):
    list_display = ("uuid", "poll", "user_uuid", "voting_power", "strategy", "voted_at")
    list_filter = ("strategy",)
    search_fields = ("uuid", "poll__uuid", "poll__title", "user_uuid")
    list_select_related = ("poll",)
    date_hierarchy = "voted_at"
    actions = ("verify_signatures",)

    def has_verify_permission(self, request):
        return request.user.has_perm("governance.verify_vote")

    @admin.action(description="Verify the signatures of the selected votes", permissions=["verify"])
    def verify_signatures(self, request, queryset):
        _report_verification(self, request, "Selected:", queryset)


@admin.register(VotingPower)
class VotingPowerAdmin(ReadOnlyAdmin):
    """Each user's power in each poll, fixed when the poll was activated."""

    list_display = ("poll", "user_uuid", "voting_power")
    search_fields = ("poll__uuid", "poll__title", "user_uuid")
    list_select_related = ("poll",)


@admin.register(GovernanceEvent)
class GovernanceEventAdmin(StoredEventAdmin):
    pass
