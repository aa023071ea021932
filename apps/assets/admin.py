"""The operator console for assets and rates. Rows change only through the services: the forms
are read-only and the actions call `services.py`."""

from __future__ import annotations

from django.contrib import admin

from apps.assets.models import Asset, AssetEvent, ExchangeRate, RateDeviation
from apps.assets.services import asset_activate, asset_deactivate, exchange_rate_deactivate
from apps.core.admin import ReadOnlyAdmin, StoredEventAdmin, run_for_each


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
        run_for_each(
            self,
            request,
            queryset,
            lambda asset: asset_activate(code=asset.code, reason="admin action"),
            "Activated",
        )

    @admin.action(description="Deactivate selected assets", permissions=["manage"])
    def deactivate_assets(self, request, queryset):
        run_for_each(
            self,
            request,
            queryset,
            lambda asset: asset_deactivate(code=asset.code, reason="admin action"),
            "Deactivated",
        )


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
        "is_active",
    )
    list_filter = ("source", "from_asset", "to_asset", "is_active")
    date_hierarchy = "valid_at"
    list_select_related = ("from_asset", "to_asset")
    actions = ("deactivate_rates",)

    def has_manage_permission(self, request):
        return request.user.has_perm("assets.change_exchangerate")

    @admin.action(description="Withdraw selected rates from use", permissions=["manage"])
    def deactivate_rates(self, request, queryset):
        run_for_each(
            self,
            request,
            queryset,
            lambda rate: exchange_rate_deactivate(rate_id=rate.id, reason="admin action"),
            "Withdrawn",
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
