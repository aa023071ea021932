"""Custodians in the console: circuit breakers with reset, discrepancies with resolve."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from apps.custodians.models import CircuitBreakerState, CustodianDiscrepancy
from apps.custodians.registry import breaker_for
from apps.custodians.services import custodian_reconcile
from tests.custodians.conftest import OMNIBUS
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


def staff_in(client, role: str):
    staff = StaffFactory()
    staff.groups.add(Group.objects.get(name=role))
    client.force_login(staff)
    return client


def test_the_breaker_page_shows_each_custodian_and_an_operator_resets_one(client, bank):
    breaker = breaker_for("mock_bank")
    for _ in range(5):
        breaker.record_failure(RuntimeError("connection refused"))
    staff_in(client, "operator")
    url = reverse("admin:custodians_circuitbreakerstate_changelist")
    page = client.get(url)
    assert page.status_code == 200
    assert b"mock_bank" in page.content and b"5 of 5 (window 10)" in page.content
    client.post(
        url,
        {"action": "reset", "_selected_action": ["mock_bank"], "apply": "1", "confirm": "on"},
    )
    assert CircuitBreakerState.objects.get(custodian="mock_bank").state == "closed"


def test_compliance_resolves_a_discrepancy_with_a_note(client, funded_account, mock_bank):
    mock_bank.fund(OMNIBUS, "USD", -25)
    custodian_reconcile()
    discrepancy = CustodianDiscrepancy.objects.get()
    staff_in(client, "compliance")
    url = reverse("admin:custodians_custodiandiscrepancy_changelist")
    assert client.get(url).status_code == 200
    detail = reverse(
        "admin:custodians_custodianreconciliation_change", args=[discrepancy.reconciliation_id]
    )
    assert client.get(detail).status_code == 200
    client.post(
        url,
        {
            "action": "resolve",
            "_selected_action": [str(discrepancy.uuid)],
            "apply": "1",
            "note": "wire fee charged by the bank",
        },
    )
    discrepancy.refresh_from_db()
    assert (discrepancy.status, discrepancy.note) == ("resolved", "wire fee charged by the bank")
    assert discrepancy.resolved_by["type"] == "staff"


def test_operators_may_not_resolve_discrepancies(client, funded_account, mock_bank):
    mock_bank.fund(OMNIBUS, "USD", 1)
    custodian_reconcile()
    discrepancy = CustodianDiscrepancy.objects.get()
    staff_in(client, "operator")
    client.post(
        reverse("admin:custodians_custodiandiscrepancy_changelist"),
        {
            "action": "resolve",
            "_selected_action": [str(discrepancy.uuid)],
            "apply": "1",
            "note": "x",
        },
    )
    discrepancy.refresh_from_db()
    assert discrepancy.status == "open"
