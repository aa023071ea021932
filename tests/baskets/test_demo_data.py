"""Reference and demo data: idempotent, and the demo leaves a ledger that reconciles."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.accounts.models import AccountBalance
from apps.accounts.reconciliation import ledger_reconcile
from apps.core.verification import broken_links
from apps.governance.models import Poll, Vote
from apps.governance.selectors import vote_verify

pytestmark = pytest.mark.django_db


def test_setup_demo_gives_an_open_poll_and_gcu_holdings(capsys):
    call_command("setup_demo")
    call_command("setup_demo")  # a second run changes nothing
    customer_gcu = AccountBalance.objects.get(
        account__owner__email="customer@example.com", account__name="GCU Wallet", asset_code="GCU"
    )
    assert customer_gcu.balance == 100_00
    open_polls = Poll.objects.filter(status="active")
    assert open_polls.count() == 2
    assert set(open_polls.values_list("type", flat=True)) == {"yes_no", "weighted_choice"}
    assert Vote.objects.count() == 2 and all(vote_verify(v).valid for v in Vote.objects.all())
    report = ledger_reconcile()
    assert report.clean, report.as_dict()
    assert broken_links() == []
