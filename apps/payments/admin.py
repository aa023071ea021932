"""Transfers and manual-movement requests in the console; reversal and decisions go through
the services, with a confirmation step."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin, StoredEventAdmin, action_with_form
from apps.core.forms import ReasonForm
from apps.payments.models import MovementRequest, PaymentEvent, Transfer
from apps.payments.services import (
    movement_request_approve,
    movement_request_reject,
    transfer_reverse,
)


class ReverseForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}))
    force = forms.BooleanField(
        required=False,
        help_text="Reverse even if the receiver no longer holds the money: the receiver may go "
        "below zero and is flagged for follow-up.",
    )
    confirm = forms.BooleanField(
        label="I confirm this compensating entry", help_text="A reversal cannot be undone."
    )


class ApproveForm(forms.Form):
    confirm = forms.BooleanField(label="I checked this request and approve it")


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = (
        "uuid",
        "kind",
        "status",
        "from_account",
        "to_account",
        "amount",
        "from_asset",
        "to_amount",
        "to_asset",
        "created_at",
    )
    list_filter = ("kind", "status", "from_asset", "to_asset")
    search_fields = ("uuid", "reference", "from_account__uuid", "to_account__uuid")
    list_select_related = ("from_account", "to_account")
    date_hierarchy = "created_at"
    actions = ("reverse",)

    def has_reverse_permission(self, request):
        return request.user.has_perm("payments.reverse_transfer")

    @admin.action(description="Reverse the selected transfer", permissions=["reverse"])
    def reverse(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=ReverseForm,
            title="Reverse transfer",
            apply=lambda t, d: transfer_reverse(
                transfer_uuid=t.uuid, reason=d["reason"], force=d["force"]
            ),
            done="Reversed",
            single=True,
        )


@admin.register(MovementRequest)
class MovementRequestAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "account", "amount", "asset_code", "status", "maker_id")
    list_filter = ("status", "kind", "asset_code")
    search_fields = ("uuid", "account__uuid", "reference")
    list_select_related = ("account",)
    actions = ("approve", "reject")

    @admin.display(description="Maker")
    def maker_id(self, movement: MovementRequest) -> str:
        return movement.maker.get("id", "")

    def has_decide_permission(self, request):
        return request.user.has_perm("payments.approve_movementrequest")

    @admin.action(description="Approve and book the selected requests", permissions=["decide"])
    def approve(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=ApproveForm,
            title="Approve",
            apply=lambda m, d: movement_request_approve(request_uuid=m.uuid),
            done="Approved and booked",
        )

    @admin.action(description="Reject the selected requests", permissions=["decide"])
    def reject(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title="Reject",
            apply=lambda m, d: movement_request_reject(request_uuid=m.uuid, reason=d["reason"]),
            done="Rejected",
        )


@admin.register(PaymentEvent)
class PaymentEventAdmin(StoredEventAdmin):
    pass
