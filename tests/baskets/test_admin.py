"""The console's basket screens: the value chart, the composition history and the actions."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from apps.baskets.models import BasketEvent, BasketValue
from apps.baskets.services import bank_allocation_set, basket_value_record

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:baskets_basketasset_changelist"


@pytest.fixture
def console(client, staff):
    client.force_login(staff)
    return client


def test_the_basket_page_shows_composition_value_chart_and_history(console):
    basket_value_record(code="GCU")
    page = console.get(reverse("admin:baskets_basketasset_change", args=["GCU"]))
    assert page.status_code == 200
    assert page.context["valuation"].value == BasketValue.objects.get().value
    assert '"USD per GCU"' in page.context["value_chart"]
    # newest first: the definition fixed the quantities of its first dollar
    assert [h.kind for h in page.context["history"]] == ["quantities", "defined"]
    assert b"Composition history" in page.content
    listing = console.get(reverse(CHANGELIST))
    assert listing.status_code == 200
    assert re.search(rb'class="field-value_now[^"]*"[^>]*>\s*1\s*<', listing.content)


@pytest.mark.parametrize(
    "model",
    [
        "basketvalue",
        "basketcompositionchange",
        "basketoperation",
        "partnerbank",
        "bankallocationentry",
        "basketevent",
    ],
)
def test_the_other_screens_render_read_only(console, user, model):
    basket_value_record(code="GCU")
    bank_allocation_set(
        user_uuid=user.uuid,
        allocations=[{"bank_code": "PAYSERA", "percentage": "100", "is_primary": True}],
    )
    assert console.get(reverse(f"admin:baskets_{model}_changelist")).status_code == 200
    assert console.get(reverse(f"admin:baskets_{model}_add")).status_code == 403


def test_rebalance_and_record_actions_go_through_the_services(console):
    selected = {"_selected_action": ["GCU"]}
    asked = console.post(reverse(CHANGELIST), {"action": "rebalance", **selected})
    assert b"I confirm rebalancing now" in asked.content
    confirmed = {"action": "rebalance", "apply": "1", "confirm": "on", **selected}
    console.post(reverse(CHANGELIST), confirmed)
    event = BasketEvent.objects.get(event_type="baskets.BasketRebalanced")
    assert event.meta_data["actor"]["type"] == "staff"
    console.post(reverse(CHANGELIST), {"action": "record_value", **selected})
    assert BasketValue.objects.count() == 0  # the confirmation step first
    record = {"action": "record_value", "apply": "1", "confirm": "on", **selected}
    console.post(reverse(CHANGELIST), record)
    assert BasketValue.objects.count() == 1
    deactivate = {"action": "deactivate", "apply": "1", "reason": "halt", **selected}
    console.post(reverse(CHANGELIST), deactivate)
    assert BasketEvent.objects.filter(event_type="baskets.BasketDeactivated").exists()
    activate = {"action": "activate", "apply": "1", "reason": "", **selected}
    assert b"This field is required." in console.post(reverse(CHANGELIST), activate).content
    console.post(reverse(CHANGELIST), {**activate, "reason": "resumed"})
    reactivated = BasketEvent.objects.get(event_type="baskets.BasketActivated")
    assert reactivated.event_data["reason"] == "resumed"
