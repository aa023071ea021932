"""Accounts in the operator console: balances, turnover, the verified event history, CSV export
and the staff actions (freeze, unfreeze, deposit, withdraw, close), each through a service with a
reason, recorded with the staff member as the events' actor."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from apps.accounts.models import (
    Account,
    AccountBalance,
    AccountEvent,
    ReconciliationRun,
    Turnover,
)
from apps.accounts.selectors import account_balances, account_history, account_turnover
from apps.accounts.services import account_close, account_freeze, account_unfreeze
from apps.assets.selectors import asset_list, asset_precisions
from apps.core.admin import ReadOnlyAdmin, StoredEventAdmin, action_with_form
from apps.core.forms import OptionalReasonForm, ReasonForm, to_minor_units
from apps.core.money import format_minor_units
from apps.core.verification import verified_event_page
from apps.payments.services import manual_movement_submit

EVENTS_PER_PAGE = 25


class MovementForm(forms.Form):
    asset_code = forms.ChoiceField(label="Asset")
    amount = forms.DecimalField(min_value=Decimal("0"), max_digits=30, decimal_places=18)
    reference = forms.CharField(max_length=255, required=False)
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["asset_code"].choices = [
            (a.code, f"{a.code} — {a.name}") for a in asset_list(is_active=True).order_by("code")
        ]

    def clean(self):
        data = super().clean()
        if "amount" in data and "asset_code" in data:
            data["minor_units"] = to_minor_units(
                data["amount"], asset_precisions()[data["asset_code"]]
            )
            if data["minor_units"] <= 0:
                self.add_error("amount", "The amount must be greater than zero.")
        return data


class ExportForm(forms.Form):
    created_after = forms.DateField(required=False, label="From (inclusive)")
    created_before = forms.DateField(required=False, label="Until (exclusive)")


class HeldAssetFilter(admin.SimpleListFilter):
    title = "asset held"
    parameter_name = "holds"

    def lookups(self, request, model_admin):
        return [(code, code) for code in sorted(asset_precisions())]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(balances__asset_code=self.value(), balances__balance__gt=0)
        return queryset


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


def _move(kind: str):
    def apply(account: Account, data: dict):
        return manual_movement_submit(
            kind=kind,
            account_uuid=account.uuid,
            asset_code=data["asset_code"],
            amount=data["minor_units"],
            reason=data["reason"],
            reference=data.get("reference", ""),
        )

    return apply


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "uuid",
        "owner",
        "kind",
        "balances_shown",
        "frozen",
        "closed",
        "flagged",
    )
    list_filter = ("kind", "frozen", "closed", "flagged", HeldAssetFilter)
    search_fields = ("uuid", "name", "owner__email", "system_code")
    list_select_related = ("owner",)
    inlines = (BalanceInline,)
    change_form_template = "admin/accounts/account/change_form.html"
    actions = ("freeze", "unfreeze", "deposit", "withdraw", "close")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("balances")

    @admin.display(description="Balances")
    def balances_shown(self, account: Account) -> str:
        precisions = asset_precisions()
        shown = [
            f"{format_minor_units(b.balance, precisions.get(b.asset_code, 0))} {b.asset_code}"
            for b in account.balances.all()
            if b.balance
        ]
        return ", ".join(shown) or "—"

    # --- permissions of the actions -----------------------------------------------------------

    def has_freeze_permission(self, request):
        return request.user.has_perm("accounts.freeze_account")

    def has_transact_permission(self, request):
        return request.user.has_perm("accounts.transact_account")

    def has_close_permission(self, request):
        return request.user.has_perm("accounts.close_account")

    # --- actions ------------------------------------------------------------------------------

    @admin.action(description="Freeze selected accounts", permissions=["freeze"])
    def freeze(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title="Freeze",
            apply=lambda a, d: account_freeze(account_uuid=a.uuid, reason=d["reason"]),
            done="Frozen",
        )

    @admin.action(description="Unfreeze selected accounts", permissions=["freeze"])
    def unfreeze(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=ReasonForm,
            title="Unfreeze",
            apply=lambda a, d: account_unfreeze(account_uuid=a.uuid, reason=d["reason"]),
            done="Unfrozen",
        )

    @admin.action(description="Deposit into the selected account", permissions=["transact"])
    def deposit(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=MovementForm,
            title="Deposit",
            apply=self._reporting(request, _move("deposit")),
            done="Deposit handled",
            single=True,
        )

    @admin.action(description="Withdraw from the selected account", permissions=["transact"])
    def withdraw(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=MovementForm,
            title="Withdraw",
            apply=self._reporting(request, _move("withdrawal")),
            done="Withdrawal handled",
            single=True,
        )

    @admin.action(description="Close selected accounts", permissions=["close"])
    def close(self, request, queryset):
        return action_with_form(
            self,
            request,
            queryset,
            form_class=OptionalReasonForm,
            title="Close",
            apply=lambda a, d: account_close(account_uuid=a.uuid, reason=d["reason"]),
            done="Closed",
        )

    def _reporting(self, request, apply):
        """Say whether a manual movement was booked or waits for a second staff member."""

        def run(account, data):
            outcome = apply(account, data)
            if outcome.request is not None:
                url = reverse("admin:payments_movementrequest_change", args=[outcome.request.uuid])
                self.message_user(
                    request,
                    format_html(
                        'Above the approval threshold: <a href="{}">request</a> waits for '
                        "another staff member.",
                        url,
                    ),
                    messages.WARNING,
                )
            return outcome

        return run

    # --- the detail page and the CSV export ---------------------------------------------------

    def get_urls(self):
        export = path(
            "<uuid:account_uuid>/export/",
            self.admin_site.admin_view(self.export_csv),
            name="accounts_account_export",
        )
        return [export, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        account = get_object_or_404(Account, pk=object_id)
        page = max(1, int(request.GET.get("events_page", "1") or 1))
        events, has_next = verified_event_page(
            AccountEvent, account.uuid, page=page, per_page=EVENTS_PER_PAGE
        )
        extra = {
            "balances": account_balances(account.uuid),
            "turnover": account_turnover(account.uuid, period="daily")[:30],
            "events": events,
            "events_page": page,
            "events_has_next": has_next,
            "export_form": ExportForm(),
            "export_url": reverse("admin:accounts_account_export", args=[account.uuid]),
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def export_csv(self, request, account_uuid):
        if not request.user.has_perm("accounts.view_account"):
            raise PermissionDenied
        account = get_object_or_404(Account, pk=account_uuid)
        form = ExportForm(request.GET)
        if not form.is_valid():
            return HttpResponseBadRequest(f"Invalid date range: {form.errors.as_text()}")
        after, before = form.cleaned_data["created_after"], form.cleaned_data["created_before"]
        rows = _history_rows_for_export(account.uuid, after, before)
        response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="account-{account.uuid}.csv"'
        return response


def _midnight(day: dt.date | None) -> dt.datetime | None:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) if day else None


def _history_rows_for_export(account_uuid, after: dt.date | None, before: dt.date | None):
    """The whole range, newest first, a keyset page at a time so memory stays flat."""
    cursor = None
    while True:
        page = account_history(
            account_uuid,
            created_after=_midnight(after),
            created_before=_midnight(before),
            before_version=cursor,
            limit=1000,
        )
        yield from page
        if len(page) < 1000:
            return
        cursor = page[-1].version


class _Echo:
    def write(self, value):
        return value


def _csv_lines(rows):
    precisions = asset_precisions()
    writer = csv.writer(_Echo())
    yield writer.writerow(
        ["created_at", "entry", "type", "asset", "amount", "amount_minor_units", "balance_after",
         "reference", "counterparty", "exchange_rate", "hash"]
    )  # fmt: skip
    for row in rows:
        precision = precisions.get(row.asset_code, 0)
        yield writer.writerow(
            [
                row.created_at.isoformat(),
                row.uuid,
                row.type,
                row.asset_code,
                format_minor_units(row.amount, precision),
                row.amount,
                format_minor_units(row.balance_after, precision),
                row.reference,
                row.counterparty_account or "",
                row.rate if row.rate is not None else "",
                row.hash,
            ]
        )


@admin.register(Turnover)
class TurnoverAdmin(ReadOnlyAdmin):
    list_display = ("account", "asset_code", "day", "credit", "debit", "count")
    list_filter = ("asset_code", "day")
    search_fields = ("account__uuid",)
    list_select_related = ("account",)


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "clean", "accounts_checked", "events_checked")
    list_filter = ("clean",)
    readonly_fields = (
        "started_at",
        "finished_at",
        "clean",
        "accounts_checked",
        "events_checked",
        "totals_by_asset",
        "discrepancies",
        "actor",
    )


@admin.register(AccountEvent)
class AccountEventAdmin(StoredEventAdmin):
    pass
