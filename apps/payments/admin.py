"""Transfers in the operator console, read-only; reversal goes through the service."""

from __future__ import annotations

from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin, StoredEventAdmin
from apps.payments.models import PaymentEvent, Transfer


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


@admin.register(PaymentEvent)
class PaymentEventAdmin(StoredEventAdmin):
    pass
