"""Custodians in the operator console: circuit breakers (with reset), the balances they
reported, reconciliations and discrepancies (with resolve), inbound webhooks, customers'
deposits and withdrawals and their registered accounts, the mock bank's books. All read-only;
the actions go through the services."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin, StoredEventAdmin, action_with_form
from apps.custodians.models import (
    CircuitBreakerState,
    CustodianBalance,
    CustodianDiscrepancy,
    CustodianEvent,
    CustodianMovement,
    CustodianReconciliation,
    CustodianWebhookEvent,
    ExternalAccount,
    MockBankAccount,
    MockBankTransaction,
)
from apps.custodians.services import circuit_breaker_reset, custodian_discrepancy_resolve


class ResetForm(forms.Form):
    confirm = forms.BooleanField(
        label="The custodian is back: close the circuit now",
        help_text="Its failure counts are forgotten; calls go through at once.",
    )


class ResolveForm(forms.Form):
    note = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What explains the difference (a bank fee, a wire in transit, ...).",
    )


@admin.register(CircuitBreakerState)
class CircuitBreakerStateAdmin(ReadOnlyAdmin):
    list_display = (
        "custodian",
        "state",
        "consecutive_failures",
        "failure_rate",
        "opened_at",
        "last_failure_at",
        "last_failure",
        "updated_at",
    )
    list_filter = ("state",)
    actions = ("reset",)

    @admin.display(description="Failures in the last calls")
    def failure_rate(self, state: CircuitBreakerState) -> str:
        outcomes = state.recent_outcomes
        window = settings.CUSTODIAN_CIRCUIT_BREAKER["window"]
        return f"{outcomes.count('0')} of {len(outcomes)} (window {window})"

    def has_reset_permission(self, request):
        return request.user.has_perm("custodians.reset_circuitbreakerstate")

    @admin.action(description="Reset the selected circuit breakers", permissions=["reset"])
    def reset(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=ResetForm,
            title="Reset circuit breaker",
            apply=lambda state, data: circuit_breaker_reset(code=state.custodian),
            done="Reset",
        )


@admin.register(CustodianBalance)
class CustodianBalanceAdmin(ReadOnlyAdmin):
    list_display = ("custodian", "asset_code", "amount", "synced_at")
    list_filter = ("custodian", "asset_code")


class DiscrepancyInline(admin.TabularInline):
    model = CustodianDiscrepancy
    fields = (
        "asset_code",
        "ledger_balance",
        "expected",
        "custodian_balance",
        "difference",
        "status",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CustodianReconciliation)
class CustodianReconciliationAdmin(ReadOnlyAdmin):
    list_display = ("custodian", "checked_at", "clean")
    list_filter = ("custodian", "clean")
    date_hierarchy = "checked_at"
    readonly_fields = ("uuid", "custodian", "checked_at", "clean", "results")
    inlines = (DiscrepancyInline,)


@admin.register(CustodianDiscrepancy)
class CustodianDiscrepancyAdmin(ReadOnlyAdmin):
    list_display = (
        "custodian",
        "asset_code",
        "expected",
        "custodian_balance",
        "difference",
        "status",
        "detected_at",
        "closed_at",
    )
    list_filter = ("status", "custodian", "asset_code")
    search_fields = ("uuid", "note")
    date_hierarchy = "detected_at"
    actions = ("resolve",)

    def has_resolve_permission(self, request):
        return request.user.has_perm("custodians.resolve_custodiandiscrepancy")

    @admin.action(description="Resolve the selected discrepancies", permissions=["resolve"])
    def resolve(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=ResolveForm,
            title="Resolve",
            apply=lambda d, data: custodian_discrepancy_resolve(
                discrepancy_uuid=d.uuid, note=data["note"]
            ),
            done="Resolved",
        )


@admin.register(CustodianWebhookEvent)
class CustodianWebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("custodian", "event_type", "event_id", "received_at")
    list_filter = ("custodian", "event_type")
    search_fields = ("event_id",)
    date_hierarchy = "received_at"


@admin.register(CustodianMovement)
class CustodianMovementAdmin(ReadOnlyAdmin):
    """Deposits and withdrawals as customers see them; the run of the same uuid (Workflows)
    shows each step, and is where an operator retries or compensates."""

    list_display = (
        "uuid",
        "kind",
        "status",
        "account_uuid",
        "amount",
        "asset_code",
        "custodian",
        "counterparty",
        "reference",
        "created_at",
        "completed_at",
    )
    list_filter = ("status", "kind", "custodian", "asset_code")
    search_fields = ("uuid", "account_uuid", "reference", "counterparty")
    date_hierarchy = "created_at"


@admin.register(ExternalAccount)
class ExternalAccountAdmin(ReadOnlyAdmin):
    list_display = ("custodian", "account_id", "owner_uuid", "created_at")
    list_filter = ("custodian",)
    search_fields = ("account_id", "owner_uuid")


@admin.register(MockBankAccount)
class MockBankAccountAdmin(ReadOnlyAdmin):
    list_display = ("custodian", "account_id", "name", "status", "balances", "created_at")
    list_filter = ("custodian", "status")
    search_fields = ("account_id",)


@admin.register(MockBankTransaction)
class MockBankTransactionAdmin(ReadOnlyAdmin):
    list_display = (
        "transaction_id",
        "custodian",
        "status",
        "from_account",
        "to_account",
        "amount",
        "asset_code",
        "created_at",
        "completed_at",
    )
    list_filter = ("custodian", "status", "asset_code")
    search_fields = ("transaction_id", "reference", "from_account", "to_account")
    date_hierarchy = "created_at"


@admin.register(CustodianEvent)
class CustodianEventAdmin(StoredEventAdmin):
    pass
