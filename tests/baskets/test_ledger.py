"""Compose and decompose through the ledger: balanced entries between the account and the
basket's reserve, component amounts rounded half-even, refusals, and the reconciliation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command
from prometheus_client import REGISTRY

from apps.accounts.models import AccountBalance, AccountEvent
from apps.accounts.reconciliation import ledger_reconcile
from apps.accounts.selectors import balances_by_asset, system_account
from apps.accounts.services import account_freeze, system_account_uuid
from apps.assets.services import asset_deactivate
from apps.baskets.aggregates import component_amounts, reserve_account_code
from apps.baskets.models import BasketOperation
from apps.baskets.services import basket_compose, basket_deactivate, basket_decompose
from apps.core.errors import (
    AccountFrozen,
    AssetInactive,
    BasketInactive,
    IdempotencyKeyReused,
    InsufficientFunds,
    InvalidInput,
    NotFound,
)
from apps.core.replay import rebuild_projections

pytestmark = pytest.mark.django_db

# 50.00 GCU at 1 USD a unit, each weight a share of its value, rounded up: 20.00 USD, 13.89 EUR
# (15 USD / 1.08), 5.91 GBP, 4.47 CHF, 224 yen (1.50 USD / 0.0067) and 1 milli-ounce of gold.
GCU_5000 = {"USD": 2000, "EUR": 1389, "GBP": 591, "CHF": 447, "JPY": 224, "XAU": 1}
# Taking them apart pays each rounded down; the reserve keeps the residue.
GCU_5000_BACK = {"USD": 2000, "EUR": 1388, "GBP": 590, "CHF": 446, "JPY": 223}


def _reserve() -> dict[str, int]:
    return balances_by_asset(system_account(reserve_account_code("GCU")).uuid)


def test_the_components_of_5000_gcu_units(components_for):
    assert components_for(5000) == GCU_5000


def test_component_amounts_round_in_the_banks_favour():
    quantities = {"AAA": Decimal("0.005"), "BBB": Decimal("0.0005")}
    weights = {"AAA": Decimal("50"), "BBB": Decimal("50")}
    # 500 units: 2.5 of AAA and 0.25 of BBB: paid in rounded up, paid out rounded down
    legs = component_amounts(amount=500, quantities=quantities, weights=weights, kind="compose")
    assert [(leg[0], leg[1]) for leg in legs] == [("AAA", 3), ("BBB", 1)]
    legs = component_amounts(amount=500, quantities=quantities, weights=weights, kind="decompose")
    assert [(leg[0], leg[1]) for leg in legs] == [("AAA", 2)]  # BBB rounds to nothing


def test_compose_moves_the_components_to_the_reserve_and_issues_units(gcu_account):
    account = gcu_account(5000)
    with pytest.raises(NotFound):  # the reserve is opened by the first compose
        system_account(reserve_account_code("GCU"))
    operation = basket_compose(account_uuid=account.uuid, basket_code="GCU", amount=5000)
    assert operation.kind == "compose" and operation.amount == 5000
    assert {c["asset_code"]: c["amount"] for c in operation.components} == GCU_5000
    assert {a: b for a, b in balances_by_asset(account.uuid).items() if b} == {"GCU": 5000}
    reserve = _reserve()
    assert reserve["GCU"] == -5000 and reserve["USD"] == 2000 and reserve["XAU"] == 1
    assert ledger_reconcile().clean


def test_decomposing_5000_gcu_units_at_40_percent_usd_yields_2000_usd_units(gcu_account):
    account = gcu_account(5000)
    basket_compose(account_uuid=account.uuid, basket_code="GCU", amount=5000)
    operation = basket_decompose(account_uuid=account.uuid, basket_code="GCU", amount=5000)
    usd = next(c for c in operation.components if c["asset_code"] == "USD")
    assert usd == {
        "asset_code": "USD",
        "amount": 2000,
        "weight": "40.00",
        "quantity": "0.400000000000000000000000",
    }
    balances = balances_by_asset(account.uuid)
    assert balances["USD"] == 2000 and balances["GCU"] == 0
    assert {code: balances[code] for code in GCU_5000_BACK} == GCU_5000_BACK
    residue = {code: amount - GCU_5000_BACK.get(code, 0) for code, amount in GCU_5000.items()}
    assert {code: b for code, b in _reserve().items() if b} == {
        code: amount for code, amount in residue.items() if amount
    }
    assert ledger_reconcile().clean


def test_each_operation_is_one_balanced_entry(gcu_account):
    account = gcu_account(5000)
    operation = basket_compose(account_uuid=account.uuid, basket_code="GCU", amount=5000)
    postings = AccountEvent.objects.filter(event_data__entry_uuid=str(operation.uuid))
    assert postings.count() == 2 * 7  # six components and the basket units, both sides
    per_asset: dict[str, int] = {}
    for row in postings:
        sign = 1 if row.event_type == "accounts.MoneyAdded" else -1
        asset = row.event_data["asset_code"]
        per_asset[asset] = per_asset.get(asset, 0) + sign * row.event_data["amount"]
    assert set(per_asset) == {*GCU_5000, "GCU"} and not any(per_asset.values())


def test_insufficient_components_are_refused(gcu_account, components_for):
    account = gcu_account(5000)
    with pytest.raises(InsufficientFunds) as refused:  # 20.40 USD needed, 20.00 held
        basket_compose(account_uuid=account.uuid, basket_code="GCU", amount=5100)
    assert refused.value.details["asset_code"] == "USD"
    assert (refused.value.details["current_balance"], refused.value.details["requested"]) == (
        2000,
        2040,
    )
    assert BasketOperation.objects.count() == 0
    assert balances_by_asset(account.uuid).get("GCU", 0) == 0


def test_insufficient_basket_units_are_refused(gcu_account):
    account = gcu_account(5000)
    basket_compose(account_uuid=account.uuid, basket_code="GCU", amount=5000)
    with pytest.raises(InsufficientFunds) as refused:
        basket_decompose(account_uuid=account.uuid, basket_code="GCU", amount=5001)
    assert refused.value.details["asset_code"] == "GCU"
    assert refused.value.details["current_balance"] == 5000


def test_an_amount_too_small_to_return_any_component_is_refused(gcu_account):
    account = gcu_account(5000)
    basket_compose(account_uuid=account.uuid, basket_code="GCU", amount=5000)
    with pytest.raises(InvalidInput) as refused:  # 0.01 GCU holds 0.004 USD, 0.04 yen, ...
        basket_decompose(account_uuid=account.uuid, basket_code="GCU", amount=1)
    assert "round to zero" in refused.value.details["amount"][0]
    assert balances_by_asset(account.uuid)["GCU"] == 5000


@pytest.mark.parametrize("amount", [0, -5, "100", 1.5, True])
def test_amounts_are_positive_integers(gcu_account, amount):
    account = gcu_account(5000)
    with pytest.raises(InvalidInput):
        basket_compose(account_uuid=account.uuid, basket_code="GCU", amount=amount)


def test_refusals_of_accounts_baskets_and_assets(gcu_account, bank):
    account = gcu_account(5000)
    with pytest.raises(NotFound):
        basket_compose(account_uuid=account.uuid, basket_code="NOPE", amount=5000)
    with pytest.raises(InvalidInput):  # the reserve itself holds no baskets for anyone
        basket_compose(
            account_uuid=system_account_uuid(reserve_account_code("GCU")),
            basket_code="GCU",
            amount=5000,
        )
    account_freeze(account_uuid=account.uuid, reason="check")
    with pytest.raises(AccountFrozen):
        basket_compose(account_uuid=account.uuid, basket_code="GCU", amount=5000)
    asset_deactivate(code="JPY")
    with pytest.raises(AssetInactive):
        basket_compose(account_uuid=account.uuid, basket_code="GCU", amount=5000)
    basket_deactivate(code="GCU", reason="suspended")
    with pytest.raises(BasketInactive):
        basket_decompose(account_uuid=account.uuid, basket_code="GCU", amount=5000)
    assert ledger_reconcile().clean


def test_an_idempotency_key_composes_once(gcu_account, components_for, top_up):
    account = gcu_account(5000)
    top_up(account, components_for(5000))
    first = basket_compose(
        account_uuid=account.uuid, basket_code="GCU", amount=5000, idempotency_key="c-1"
    )
    again = basket_compose(
        account_uuid=account.uuid, basket_code="GCU", amount=5000, idempotency_key="c-1"
    )
    assert again.uuid == first.uuid
    assert balances_by_asset(account.uuid)["GCU"] == 5000
    with pytest.raises(IdempotencyKeyReused) as reused:
        basket_compose(
            account_uuid=account.uuid, basket_code="GCU", amount=4000, idempotency_key="c-1"
        )
    assert reused.value.code == "IDEMPOTENCY_KEY_REUSED"


def test_read_models_equal_a_replay(gcu_account):
    account = gcu_account(10_000)
    basket_compose(account_uuid=account.uuid, basket_code="GCU", amount=10_000)
    basket_decompose(account_uuid=account.uuid, basket_code="GCU", amount=5000)
    live = list(BasketOperation.objects.order_by("uuid").values())
    balances = sorted(AccountBalance.objects.values_list("account_id", "asset_code", "balance"))
    rebuild_projections("baskets")
    rebuild_projections("accounts")
    assert list(BasketOperation.objects.order_by("uuid").values()) == live
    assert sorted(AccountBalance.objects.values_list("account_id", "asset_code", "balance")) == (
        balances
    )
    report = ledger_reconcile()
    assert report.clean, report.as_dict()
    call_command("verify_events")


def _moved(kind: str) -> tuple[float, float]:
    labels = {"kind": kind, "asset": "GCU"}
    return (
        REGISTRY.get_sample_value("finaegis_money_movements_total", labels) or 0.0,
        REGISTRY.get_sample_value("finaegis_money_moved_minor_units_total", labels) or 0.0,
    )


def test_operations_are_counted_in_the_metrics_after_commit(
    gcu_account, django_capture_on_commit_callbacks
):
    account = gcu_account(5000)
    before = _moved("basket_compose"), _moved("basket_decompose")
    with django_capture_on_commit_callbacks(execute=True):
        basket_compose(account_uuid=account.uuid, basket_code="GCU", amount=5000)
        basket_decompose(account_uuid=account.uuid, basket_code="GCU", amount=2000)
    with pytest.raises(InsufficientFunds), django_capture_on_commit_callbacks(execute=True):
        basket_decompose(account_uuid=account.uuid, basket_code="GCU", amount=9000)
    after = _moved("basket_compose"), _moved("basket_decompose")
    assert after[0] == (before[0][0] + 1, before[0][1] + 5000)
    assert after[1] == (before[1][0] + 1, before[1][1] + 2000)  # the refusal counted nothing
