"""The console: read-only rows, actions that go through the services."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.admin.sites import site
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from apps.assets.models import Asset, AssetEvent, ExchangeRate, RateDeviation
from apps.assets.selectors import convert
from apps.assets.services import exchange_rate_record
from apps.users.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, assets):
    user = User.objects.create_superuser("root@example.com", "pw-123-long-enough", name="Root")
    client.force_login(user)
    return client


@pytest.mark.parametrize("model", [Asset, ExchangeRate, RateDeviation, AssetEvent])
def test_changelists_render_and_nothing_can_be_added_changed_or_deleted(admin_client, model):
    hour_ago = timezone.now() - dt.timedelta(hours=1)
    exchange_rate_record(from_code="EUR", to_code="USD", rate=Decimal("1.08"), valid_at=hour_ago)
    exchange_rate_record(from_code="EUR", to_code="USD", rate=Decimal("1.50"))  # a deviation
    prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    assert admin_client.get(reverse(f"{prefix}_changelist")).status_code == 200
    assert admin_client.get(reverse(f"{prefix}_add")).status_code == 403
    obj = model.objects.first()
    detail = admin_client.get(reverse(f"{prefix}_change", args=[obj.pk]))
    assert detail.status_code == 200
    assert b'type="submit" value="Save"' not in detail.content
    assert admin_client.get(reverse(f"{prefix}_delete", args=[obj.pk])).status_code == 403
    model_admin = site._registry[model]
    request = detail.wsgi_request
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, obj)
    assert not model_admin.has_delete_permission(request, obj)


def test_event_list_filters_by_event_type(admin_client):
    url = reverse("admin:assets_assetevent_changelist")
    response = admin_client.get(url, {"event_type": "assets.AssetDefined"})
    assert response.status_code == 200
    assert response.context["cl"].result_count == AssetEvent.objects.count()


def test_the_deactivate_and_activate_actions_call_the_services(admin_client):
    url = reverse("admin:assets_asset_changelist")
    response = admin_client.post(
        url, {"action": "deactivate_assets", "_selected_action": ["EUR", "GBP"]}
    )
    assert "reason" in response.context["form"].fields  # the action asks first
    assert not Asset.objects.filter(is_active=False).exists()
    response = admin_client.post(
        url,
        {
            "action": "deactivate_assets",
            "_selected_action": ["EUR", "GBP"],
            "apply": "1",
            "reason": "delisted",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert set(Asset.objects.filter(is_active=False).values_list("code", flat=True)) == {
        "EUR",
        "GBP",
    }
    deactivated = AssetEvent.objects.filter(event_type="assets.AssetDeactivated")
    assert deactivated.count() == 2
    assert all(e.meta_data["actor"]["type"] == "staff" for e in deactivated)
    assert all(e.event_data["reason"] == "delisted" for e in deactivated)

    # Already inactive: an error message, nothing recorded.
    response = admin_client.post(
        url,
        {"action": "deactivate_assets", "_selected_action": ["EUR"], "apply": "1", "reason": "x"},
        follow=True,
    )
    assert "ASSET_ALREADY_INACTIVE" in response.content.decode()
    assert deactivated.count() == 2

    admin_client.post(
        url,
        {"action": "activate_assets", "_selected_action": ["EUR"], "apply": "1", "reason": "back"},
    )
    assert Asset.objects.get(code="EUR").is_active


def test_the_withdraw_rate_action(admin_client):
    rate = exchange_rate_record(from_code="EUR", to_code="USD", rate=Decimal("1.08"))
    admin_client.post(
        reverse("admin:assets_exchangerate_changelist"),
        {
            "action": "deactivate_rates",
            "_selected_action": [str(rate.id)],
            "apply": "1",
            "reason": "wrong quote",
        },
    )
    assert not ExchangeRate.objects.get(id=rate.id).is_active


def test_staff_who_may_only_view_get_no_actions(client, assets):
    user = User.objects.create_user("op@example.com", "pw-123-long-enough", name="Op")
    user.is_staff = True
    user.save()
    client.force_login(user)
    url = reverse("admin:assets_asset_changelist")
    assert client.get(url).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_asset"))
    response = client.get(url)
    assert response.status_code == 200
    assert "deactivate_assets" not in response.content.decode()
    client.post(url, {"action": "deactivate_assets", "_selected_action": ["EUR"]})
    assert Asset.objects.get(code="EUR").is_active
    user.user_permissions.add(Permission.objects.get(codename="change_asset"))
    user = User.objects.get(pk=user.pk)  # a fresh permission cache
    client.force_login(user)
    assert "deactivate_assets" in client.get(url).content.decode()


def test_a_fat_fingered_console_rate_waits_for_a_second_staff_member(
    client, assets, django_capture_on_commit_callbacks
):
    """USD/GBP 7.5 saved from the console went live at once; now it waits, its maker cannot
    approve it, and another staff member can."""
    alice = User.objects.create_superuser("alice@example.com", "pw-123-long-enough", name="A")
    bob = User.objects.create_superuser("bob@example.com", "pw-123-long-enough", name="B")
    an_hour_ago = timezone.now() - dt.timedelta(hours=1)
    exchange_rate_record(
        from_code="USD", to_code="GBP", rate=Decimal("0.787"), valid_at=an_hour_ago
    )
    changelist = reverse("admin:assets_exchangerate_changelist")

    client.force_login(alice)
    response = client.post(
        reverse("admin:assets_exchangerate_add_manual_rate"),
        {"from_code": "USD", "to_code": "GBP", "rate": "7.5"},
        follow=True,
    )
    assert "pending" in response.content.decode()
    pending = ExchangeRate.objects.get(rate=Decimal("7.5"))
    assert pending.status == "pending"
    assert pending.recorded_by == f"staff:{alice.uuid}"
    assert convert(10000, "USD", "GBP").converted_amount < 7870  # still 0.787

    approve = {
        "action": "approve_rates",
        "_selected_action": [str(pending.id)],
        "apply": "1",
        "confirm": "on",
    }
    response = client.post(changelist, approve, follow=True)
    assert "MAKER_CANNOT_DECIDE" in response.content.decode()
    assert ExchangeRate.objects.get(id=pending.id).status == "pending"

    client.force_login(bob)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(changelist, approve, follow=True)
    assert "Approved: 1" in response.content.decode()
    assert ExchangeRate.objects.get(id=pending.id).decided_by == f"staff:{bob.uuid}"
    assert convert(10000, "USD", "GBP").rate == Decimal("7.5") * Decimal("0.9975")


def test_the_console_refuses_two_directions_that_gain(admin_client):
    response = admin_client.post(
        reverse("admin:assets_exchangerate_add_manual_rate"),
        {"from_code": "USD", "to_code": "EUR", "rate": "0.95", "reverse_rate": "1.08"},
    )
    assert response.status_code == 200  # the form again, with the error
    assert "would let a customer convert round a cycle" in response.content.decode()
    assert not ExchangeRate.objects.exists()
