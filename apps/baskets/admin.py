"""Baskets and bank allocation in the console: the value chart, the composition history,
rebalancing and the value record (through the services), partner banks and users' splits."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404

from apps.baskets.models import (
    BankAllocationEntry,
    BasketAsset,
    BasketCompositionChange,
    BasketEvent,
    BasketOperation,
    BasketValue,
    PartnerBank,
)
from apps.baskets.selectors import (
    basket_components,
    basket_composition_history,
    basket_unit_value,
    basket_value_history,
)
from apps.baskets.services import (
    basket_activate,
    basket_deactivate,
    basket_rebalance,
    basket_value_record,
)
from apps.core.admin import ReadOnlyAdmin, StoredEventAdmin, action_with_form
from apps.core.errors import DomainError
from apps.core.forms import ReasonForm

CHART_POINTS = 24 * 7  # a week of hourly values
HISTORY_SHOWN = 50


class RecordValueForm(forms.Form):
    confirm = forms.BooleanField(label="Record the value of one unit at the current rates now")


class RebalanceForm(forms.Form):
    confirm = forms.BooleanField(
        label="I confirm rebalancing now",
        help_text="Weights are clamped into their bounds and brought back to 100 within them.",
    )


def _value_chart(code: str) -> str:
    """The recorded values, oldest first (Chart.js line data)."""
    points = list(basket_value_history(code)[:CHART_POINTS])[::-1]
    return json.dumps(
        {
            "labels": [p.calculated_at.strftime("%d %b %H:%M") for p in points],
            "datasets": [{"label": f"USD per {code}", "data": [str(p.value) for p in points]}],
        }
    )


@admin.register(BasketAsset)
class BasketAssetAdmin(ReadOnlyAdmin):
    list_display = (
        "code",
        "name",
        "type",
        "rebalance_frequency",
        "is_active",
        "last_rebalanced_at",
        "value_now",
    )
    list_filter = ("type", "rebalance_frequency", "is_active")
    search_fields = ("code", "name")
    actions = ("rebalance", "record_value", "activate", "deactivate")
    change_form_template = "admin/baskets/basketasset/change_form.html"

    def has_rebalance_permission(self, request):
        return request.user.has_perm("baskets.rebalance_basket")

    @admin.display(description="Value now (USD)")
    def value_now(self, basket: BasketAsset) -> str:
        try:
            return str(basket_unit_value(basket.code).value.normalize())
        except DomainError as exc:
            return f"— ({exc.code})"

    @admin.action(description="Rebalance selected baskets", permissions=["rebalance"])
    def rebalance(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=RebalanceForm,
            title="Rebalance",
            apply=lambda basket, _: basket_rebalance(code=basket.code),
            done="Rebalanced",
        )

    @admin.action(description="Record the value now", permissions=["rebalance"])
    def record_value(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=RecordValueForm,
            title="Record the value",
            apply=lambda basket, _: basket_value_record(code=basket.code),
            done="Value recorded",
        )

    @admin.action(description="Activate selected baskets", permissions=["rebalance"])
    def activate(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title="Activate",
            apply=lambda b, data: basket_activate(code=b.code, reason=data["reason"]),
            done="Activated",
        )

    @admin.action(description="Deactivate selected baskets", permissions=["rebalance"])
    def deactivate(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title="Deactivate",
            apply=lambda b, data: basket_deactivate(code=b.code, reason=data["reason"]),
            done="Deactivated",
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        basket = get_object_or_404(BasketAsset, pk=object_id)
        try:
            valuation, value_error = basket_unit_value(basket.code), None
        except DomainError as exc:
            valuation, value_error = None, f"{exc.message} ({exc.code} {exc.details})"
        extra = {
            "basket": basket,
            "components": basket_components(basket.code),
            "valuation": valuation,
            "value_error": value_error,
            "value_chart": _value_chart(basket.code),
            "history": basket_composition_history(basket.code)[:HISTORY_SHOWN],
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})


@admin.register(BasketValue)
class BasketValueAdmin(ReadOnlyAdmin):
    list_display = ("basket", "value", "currency", "calculated_at")
    list_filter = ("basket",)
    date_hierarchy = "calculated_at"
    readonly_fields = ("basket", "value", "currency", "components", "calculated_at")


@admin.register(BasketCompositionChange)
class BasketCompositionChangeAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "basket", "kind", "weights", "poll_uuid", "effective_on")
    list_filter = ("basket", "kind")
    date_hierarchy = "created_at"


@admin.register(BasketOperation)
class BasketOperationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "basket_code", "amount", "account", "uuid")
    list_filter = ("kind", "basket_code")
    search_fields = ("uuid", "account__uuid")
    list_select_related = ("account",)
    date_hierarchy = "created_at"


@admin.register(PartnerBank)
class PartnerBankAdmin(ReadOnlyAdmin):
    list_display = (
        "code",
        "name",
        "country",
        "insurance_limit",
        "insurance_currency",
        "is_active",
    )
    list_filter = ("is_active", "country")


@admin.register(BankAllocationEntry)
class BankAllocationEntryAdmin(ReadOnlyAdmin):
    list_display = ("user_uuid", "bank_code", "percentage", "is_primary", "updated_at")
    list_filter = ("bank_code", "is_primary")
    search_fields = ("user_uuid",)

    def changelist_view(self, request, extra_context=None):
        if not BankAllocationEntry.objects.exists():
            self.message_user(
                request,
                "No user has chosen a split yet; everyone uses the default 40/30/30.",
                messages.INFO,
            )
        return super().changelist_view(request, extra_context)


@admin.register(BasketEvent)
class BasketEventAdmin(StoredEventAdmin):
    pass
