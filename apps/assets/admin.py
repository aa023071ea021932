"""The operator console for assets and rates. Rows change only through the services: the forms
are read-only and the actions call `services.py`."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from unfold.decorators import action

from apps.assets.models import Asset, AssetEvent, ExchangeRate, RateDeviation, RateStatus
from apps.assets.services import (
    asset_activate,
    asset_deactivate,
    exchange_rate_approve,
    exchange_rate_deactivate,
    exchange_rate_record,
    exchange_rate_reject,
    exchange_rates_refresh,
)
from apps.core.admin import ReadOnlyAdmin, StoredEventAdmin, action_with_form
from apps.core.errors import DomainError
from apps.core.forms import ReasonForm


@admin.register(Asset)
class AssetAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "type", "precision", "is_active")
    list_filter = ("type", "is_active")
    search_fields = ("code", "name")
    ordering = ("code",)
    actions = ("activate_assets", "deactivate_assets")

    def has_manage_permission(self, request):
        return request.user.has_perm("assets.change_asset")

    @admin.action(description="Activate selected assets", permissions=["manage"])
    def activate_assets(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title="Activate",
            apply=lambda asset, d: asset_activate(code=asset.code, reason=d["reason"]),
            done="Activated",
        )

    @admin.action(description="Deactivate selected assets", permissions=["manage"])
    def deactivate_assets(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title="Deactivate",
            apply=lambda asset, d: asset_deactivate(code=asset.code, reason=d["reason"]),
            done="Deactivated",
        )


class RefreshForm(forms.Form):
    confirm = forms.BooleanField(label="Record the provider's current rates for every pair")


class ManualRateForm(forms.Form):
    from_code = forms.CharField(max_length=10, label="From asset")
    to_code = forms.CharField(max_length=10, label="To asset")
    rate = forms.DecimalField(max_digits=30, decimal_places=18, help_text="1 from = rate to")
    bid = forms.DecimalField(max_digits=30, decimal_places=18, required=False)
    ask = forms.DecimalField(max_digits=30, decimal_places=18, required=False)
    reverse_rate = forms.DecimalField(
        max_digits=30,
        decimal_places=18,
        required=False,
        help_text="1 to = reverse rate from; empty: the reverse is the inverse of the rate",
    )
    reverse_bid = forms.DecimalField(max_digits=30, decimal_places=18, required=False)
    reverse_ask = forms.DecimalField(max_digits=30, decimal_places=18, required=False)
    expires_at = forms.DateTimeField(required=False)


class ConfirmForm(forms.Form):
    confirm = forms.BooleanField(label="I have checked the selected rates")


@admin.register(ExchangeRate)
class ExchangeRateAdmin(ReadOnlyAdmin):
    list_display = (
        "from_asset",
        "to_asset",
        "rate",
        "bid",
        "ask",
        "source",
        "valid_at",
        "expires_at",
        "status",
        "is_active",
        "recorded_by",
        "decided_by",
    )
    list_filter = ("status", "source", "from_asset", "to_asset", "is_active")
    date_hierarchy = "valid_at"
    list_select_related = ("from_asset", "to_asset")
    actions = ("approve_rates", "reject_rates", "deactivate_rates")
    actions_list = ("add_manual_rate", "refresh_rates")

    def has_manage_permission(self, request):
        return request.user.has_perm("assets.change_exchangerate")

    def has_record_permission(self, request):
        return request.user.has_perm("assets.add_exchangerate")

    @action(description="Add a manual rate", url_path="add-manual", permissions=["record"])
    def add_manual_rate(self, request):
        form = ManualRateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                row = exchange_rate_record(source="manual", **form.cleaned_data)
            except DomainError as exc:
                form.add_error(None, f"{exc.message} {exc.details or ''}")
            else:
                if row.status == RateStatus.PENDING:
                    self.message_user(
                        request,
                        "Rate recorded as pending: it is outside the band from its reference "
                        "and is not used until another staff member approves it.",
                        messages.WARNING,
                    )
                else:
                    self.message_user(request, "Rate recorded.", messages.SUCCESS)
                return redirect("admin:assets_exchangerate_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Add a manual exchange rate",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/plain_form.html", context)

    @action(
        description="Refresh rates from the provider", url_path="refresh", permissions=["record"]
    )
    def refresh_rates(self, request):
        # A GET only asks: recording rates from a followed link would be a cross-site trap.
        form = RefreshForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                count = exchange_rates_refresh()
            except DomainError as exc:
                self.message_user(request, f"{exc.message} {exc.details}", messages.ERROR)
            else:
                self.message_user(request, f"Recorded {count} rate(s).", messages.SUCCESS)
            return redirect("admin:assets_exchangerate_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Refresh exchange rates from the provider",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/plain_form.html", context)

    @admin.action(
        description="Approve selected pending rates (not your own)", permissions=["manage"]
    )
    def approve_rates(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=ConfirmForm,
            title="Approve: the rates take effect now",
            apply=lambda rate, d: exchange_rate_approve(rate_id=rate.id),
            done="Approved",
        )

    @admin.action(
        description="Reject selected pending rates (not your own)", permissions=["manage"]
    )
    def reject_rates(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title="Reject",
            apply=lambda rate, d: exchange_rate_reject(rate_id=rate.id, reason=d["reason"]),
            done="Rejected",
        )

    @admin.action(description="Withdraw selected rates from use", permissions=["manage"])
    def deactivate_rates(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title="Withdraw from use",
            apply=lambda rate, d: exchange_rate_deactivate(rate_id=rate.id, reason=d["reason"]),
            done="Withdrawn",
        )


@admin.register(RateDeviation)
class RateDeviationAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "from_asset",
        "to_asset",
        "rate",
        "average_24h",
        "deviation_percent",
    )
    list_filter = ("from_asset", "to_asset")
    list_select_related = ("from_asset", "to_asset")
    date_hierarchy = "created_at"


@admin.register(AssetEvent)
class AssetEventAdmin(StoredEventAdmin):
    pass
