"""Bank allocation: partner banks, a user's split, the primary bank, diversification and the
distribution preview with its deposit-insurance warnings."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.baskets.aggregates import distribution, is_diversified
from apps.baskets.models import BankAllocationEntry, PartnerBank
from apps.baskets.selectors import bank_allocation_get, bank_distribution_preview
from apps.baskets.services import bank_allocation_set
from apps.core.errors import InvalidBankAllocation, PrimaryBankRequired
from apps.core.replay import rebuild_projections

pytestmark = pytest.mark.django_db


def _split(*entries):
    return [
        {"bank_code": code, "percentage": share, "is_primary": primary}
        for code, share, primary in entries
    ]


def test_the_partner_banks_insure_100000_eur_each(bank):
    banks = list(PartnerBank.objects.values_list("code", "insurance_limit", "insurance_currency"))
    assert banks == [
        ("PAYSERA", 100_000_00, "EUR"),
        ("DEUTSCHE", 100_000_00, "EUR"),
        ("SANTANDER", 100_000_00, "EUR"),
        ("REVOLUT", 100_000_00, "EUR"),
        ("WISE", 100_000_00, "EUR"),
    ]


def test_the_default_split_is_40_30_30_over_three_banks(user):
    allocation = bank_allocation_get(user.uuid)
    assert allocation.is_default
    assert [(e["bank_code"], e["percentage"], e["is_primary"]) for e in allocation.entries] == [
        ("PAYSERA", Decimal("40.00"), True),
        ("DEUTSCHE", Decimal("30.00"), False),
        ("SANTANDER", Decimal("30.00"), False),
    ]
    assert allocation.diversified


def test_a_preview_of_1000_gives_400_300_300(user):
    preview = bank_distribution_preview(user.uuid, amount=1000)
    assert preview["distribution"] == [
        {"bank_code": "PAYSERA", "amount": 400},
        {"bank_code": "DEUTSCHE", "amount": 300},
        {"bank_code": "SANTANDER", "amount": 300},
    ]
    assert preview["warnings"] == []


def test_the_remainder_goes_to_the_last_bank():
    split = _split(("A", "33.33", True), ("B", "33.33", False), ("C", "33.34", False))
    assert distribution(100, split) == [("A", 33), ("B", 33), ("C", 34)]
    assert distribution(
        1001, _split(("A", "40", True), ("B", "30", False), ("C", "30", False))
    ) == [
        ("A", 400),
        ("B", 300),
        ("C", 301),
    ]
    # 0.6 each would round up three times and leave -1 for the last: rounded down instead
    four = _split(("A", "30", True), ("B", "30", False), ("C", "30", False), ("D", "10", False))
    assert distribution(2, four) == [("A", 0), ("B", 0), ("C", 0), ("D", 2)]


def test_diversified_means_two_banks_and_none_above_60():
    assert not is_diversified(_split(("A", "100", True)))
    assert not is_diversified(_split(("A", "61", True), ("B", "39", False)))
    assert is_diversified(_split(("A", "60", True), ("B", "40", False)))


def test_a_user_chooses_a_split(user):
    split = _split(("PAYSERA", "50", True), ("WISE", "25.5", False), ("REVOLUT", "24.5", False))
    allocation = bank_allocation_set(user_uuid=user.uuid, allocations=split)
    assert not allocation.is_default and allocation.diversified
    assert [(e["bank_code"], str(e["percentage"])) for e in allocation.entries] == [
        ("PAYSERA", "50.00"),
        ("WISE", "25.50"),
        ("REVOLUT", "24.50"),
    ]
    preview = bank_distribution_preview(user.uuid, amount=1000)
    assert [d["amount"] for d in preview["distribution"]] == [500, 255, 245]


@pytest.mark.parametrize(
    "split",
    [
        _split(("PAYSERA", "40", True), ("WISE", "59", False)),  # 99
        _split(("PAYSERA", "40", True), ("WISE", "61", False)),  # 101
        _split(("PAYSERA", "40", True), ("NOBANK", "60", False)),  # unknown
        _split(("PAYSERA", "40", True), ("PAYSERA", "60", False)),  # twice
        _split(("PAYSERA", "40", False), ("WISE", "60", False)),  # no primary
        _split(("PAYSERA", "40", True), ("WISE", "60", True)),  # two primaries
        _split(("PAYSERA", "100", True), ("WISE", "0", False)),  # a zero share
        _split(("PAYSERA", 40.0, True), ("WISE", "60", False)),  # floats never
        [],
    ],
)
def test_invalid_splits_are_refused(user, split):
    with pytest.raises(InvalidBankAllocation):
        bank_allocation_set(user_uuid=user.uuid, allocations=split)
    assert bank_allocation_get(user.uuid).is_default


def test_the_primary_bank_cannot_be_removed(user):
    with pytest.raises(PrimaryBankRequired):  # the default's primary is PAYSERA
        bank_allocation_set(user_uuid=user.uuid, allocations=_split(("WISE", "100", True)))
    # another bank may become primary while PAYSERA stays; then PAYSERA may go
    bank_allocation_set(
        user_uuid=user.uuid, allocations=_split(("WISE", "60", True), ("PAYSERA", "40", False))
    )
    with pytest.raises(PrimaryBankRequired):
        bank_allocation_set(user_uuid=user.uuid, allocations=_split(("PAYSERA", "100", True)))
    only_wise = bank_allocation_set(user_uuid=user.uuid, allocations=_split(("WISE", "100", True)))
    assert [e["bank_code"] for e in only_wise.entries] == ["WISE"]
    assert not only_wise.diversified


def test_a_share_above_the_insurance_limit_is_warned(user):
    preview = bank_distribution_preview(user.uuid, amount=300_000_00)  # 300,000 EUR
    assert [w["bank_code"] for w in preview["warnings"]] == ["PAYSERA"]  # 120,000 EUR
    assert preview["warnings"][0]["insured_amount"] == 120_000_00
    assert preview["warnings"][0]["insurance_limit"] == 100_000_00


def test_other_currencies_are_compared_with_the_limit_in_euros(user):
    # 260,000 USD: PAYSERA's 104,000 USD is 96,296.30 EUR at 1.08, within the limit
    assert (
        bank_distribution_preview(user.uuid, amount=260_000_00, asset_code="USD")["warnings"] == []
    )
    warned = bank_distribution_preview(user.uuid, amount=280_000_00, asset_code="USD")["warnings"]
    assert [w["bank_code"] for w in warned] == ["PAYSERA"]
    assert warned[0]["amount"] == 112_000_00 and warned[0]["insured_amount"] == 103_703_70


def test_the_split_is_event_sourced(user, make_user):
    other = make_user()
    bank_allocation_set(
        user_uuid=user.uuid, allocations=_split(("PAYSERA", "70", True), ("WISE", "30", False))
    )
    bank_allocation_set(
        user_uuid=other.uuid, allocations=_split(("PAYSERA", "50", True), ("DEUTSCHE", "50", False))
    )
    bank_allocation_set(
        user_uuid=user.uuid, allocations=_split(("PAYSERA", "60", True), ("WISE", "40", False))
    )
    live = sorted(BankAllocationEntry.objects.values_list("user_uuid", "bank_code", "percentage"))
    rebuild_projections("baskets")
    assert (
        sorted(BankAllocationEntry.objects.values_list("user_uuid", "bank_code", "percentage"))
        == live
    )
    assert len(live) == 4
