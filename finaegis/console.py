"""The operator console's home: the dashboard figures and the staff login form.

It lives in the project package because it looks across every domain app.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django_otp import devices_for_user, match_token

from apps.accounts.models import Account, AccountBalance, AccountEvent, ReconciliationRun
from apps.assets.selectors import asset_precisions
from apps.core.money import format_minor_units
from apps.payments.models import MovementRequest, PaymentEvent, Transfer
from apps.users.models import User

CHART_DAYS = 30


def _holdings() -> list[dict]:
    """Customer money per asset (the bank's liabilities)."""
    precisions = asset_precisions()
    rows = (
        AccountBalance.objects.filter(account__kind=Account.Kind.CUSTOMER)
        .values("asset_code")
        .annotate(total=Sum("balance"))
        .order_by("asset_code")
    )
    return [
        {
            "asset_code": r["asset_code"],
            "total": format_minor_units(r["total"], precisions.get(r["asset_code"], 0)),
        }
        for r in rows
        if r["total"]
    ]


def _today_volume(since: dt.datetime) -> list[dict]:
    precisions = asset_precisions()
    rows = (
        Transfer.objects.filter(created_at__gte=since)
        .values("from_asset")
        .annotate(count=Count("uuid"), volume=Sum("amount"))
        .order_by("from_asset")
    )
    return [
        {
            "asset_code": r["from_asset"],
            "count": r["count"],
            "volume": format_minor_units(r["volume"], precisions.get(r["from_asset"], 0)),
        }
        for r in rows
    ]


def _volume_chart(today: dt.date) -> str:
    """Daily volume per asset over 30 days, in each asset's own units (Chart.js line data)."""
    start = today - dt.timedelta(days=CHART_DAYS - 1)
    days = [start + dt.timedelta(days=n) for n in range(CHART_DAYS)]
    rows = (
        Transfer.objects.filter(created_at__date__gte=start)
        .annotate(day=TruncDate("created_at"))
        .values("day", "from_asset")
        .annotate(volume=Sum("amount"))
    )
    precisions = asset_precisions()
    series: dict[str, dict[dt.date, Decimal]] = {}
    for r in rows:
        precision = precisions.get(r["from_asset"], 0)
        series.setdefault(r["from_asset"], {})[r["day"]] = Decimal(r["volume"]).scaleb(-precision)
    datasets = [
        {"label": code, "data": [str(points.get(day, 0)) for day in days]}
        for code, points in sorted(series.items())
    ]
    return json.dumps({"labels": [d.strftime("%d %b") for d in days], "datasets": datasets})


def _latest_events(limit: int = 10) -> list[dict]:
    latest = []
    for model in (AccountEvent, PaymentEvent):
        for row in model.objects.order_by("-id")[:limit]:
            latest.append(
                {
                    "type": row.event_type,
                    "aggregate": row.aggregate_uuid,
                    "version": row.aggregate_version,
                    "actor": row.meta_data.get("actor", {}),
                    "at": row.created_at,
                }
            )
    return sorted(latest, key=lambda e: e["at"], reverse=True)[:limit]


def _ledger_figures(now: dt.datetime) -> dict:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    accounts = Account.objects.filter(kind=Account.Kind.CUSTOMER).aggregate(
        total=Count("uuid"), frozen=Count("uuid", filter=Q(frozen=True))
    )
    return {
        "kpis": [
            {"title": "Customers", "value": User.objects.filter(is_staff=False).count()},
            {"title": "Customer accounts", "value": accounts["total"]},
            {"title": "Frozen accounts", "value": accounts["frozen"]},
            {
                "title": "Money movements today",
                "value": Transfer.objects.filter(created_at__gte=midnight).count(),
            },
            {
                "title": "Requests awaiting approval",
                "value": MovementRequest.objects.filter(status="pending").count(),
            },
        ],
        "holdings": _holdings(),
        "today_volume": _today_volume(midnight),
        "volume_chart": _volume_chart(now.date()),
        "latest_events": _latest_events(),
        "last_reconciliation": ReconciliationRun.objects.first(),
        "pending_requests": MovementRequest.objects.filter(status="pending")[:5],
    }


# Seeing the ledger's figures takes the permissions of the pages they summarise.
LEDGER_VIEW_PERMISSIONS = (
    "accounts.view_account",
    "payments.view_transfer",
    "accounts.view_accountevent",
)


def dashboard_callback(request, context: dict) -> dict:
    if all(request.user.has_perm(p) for p in LEDGER_VIEW_PERMISSIONS):
        context.update(_ledger_figures(timezone.now()))
        context["shows_ledger"] = True
    return context


class StaffLoginForm(AdminAuthenticationForm):
    """Email and password, plus the TOTP code for staff who enrolled a device (or for every
    staff member when STAFF_TOTP_REQUIRED is on)."""

    otp_token = forms.CharField(
        label="Authenticator code",
        required=False,
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text="Only if you set up an authenticator app.",
    )

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        devices = list(devices_for_user(user, confirmed=True))
        if not devices:
            if settings.STAFF_TOTP_REQUIRED:
                raise forms.ValidationError(
                    "Staff must set up an authenticator app; ask an administrator.",
                    code="otp_required",
                )
            return
        device = match_token(user, self.cleaned_data.get("otp_token") or "")
        if device is None:
            raise forms.ValidationError("The authenticator code is wrong.", code="otp_invalid")
        user.otp_device = device  # django-otp marks the session verified at login
