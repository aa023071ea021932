"""Accounts in the operator console: read-only views; changes go through services
(the full console with staff actions and maker-checker is built on these)."""

from __future__ import annotations

from django.contrib import admin

from apps.accounts.models import Account, AccountBalance, AccountEvent, Turnover
from apps.core.admin import ReadOnlyAdmin, StoredEventAdmin


class BalanceInline(admin.TabularInline):
    model = AccountBalance
    fields = ("asset_code", "balance", "version")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("name", "uuid", "owner", "kind", "frozen", "closed", "flagged", "created_at")
    list_filter = ("kind", "frozen", "closed", "flagged")
    search_fields = ("uuid", "name", "owner__email", "system_code")
    list_select_related = ("owner",)
    inlines = (BalanceInline,)


@admin.register(Turnover)
class TurnoverAdmin(ReadOnlyAdmin):
    list_display = ("account", "asset_code", "day", "credit", "debit", "count")
    list_filter = ("asset_code", "day")
    search_fields = ("account__uuid",)
    list_select_related = ("account",)


@admin.register(AccountEvent)
class AccountEventAdmin(StoredEventAdmin):
    pass
