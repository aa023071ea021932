"""Per-user limits counted in US dollars across assets and operation kinds (apps.payments.limits).

The attack they close: with a $100/hour cap on USD transfers, a conversion of USD to EUR and
then a EUR transfer moved any amount, since the cap was per asset and conversions were not
counted. Now every kind has a USD-equivalent budget, one more budget ("total") spans them all,
and a refused operation moves nothing and counts nothing.
"""

from __future__ import annotations

import threading
import uuid
from decimal import ROUND_CEILING

import pytest
from rest_framework.exceptions import Throttled

from apps.assets.selectors import value_at_mid
from apps.assets.services import asset_define
from apps.payments.limits import operation_limit_take
from apps.payments.services import deposit_create
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db

HUGE = 10**15  # a limit nothing in these tests reaches


@pytest.fixture
def funded(api):
    """An account of the caller (alice by default) holding the given amounts, funded with the
    deposit service (the API deposit is a custodian's workflow)."""

    def make(client=None, **amounts: int) -> str:
        client = client or api
        account = client.post("/api/v1/accounts", {"name": "Main"}, format="json").json()
        for asset_code, amount in amounts.items():
            deposit_create(
                account_uuid=uuid.UUID(account["uuid"]), amount=amount, asset_code=asset_code
            )
        return account["uuid"]

    return make


@pytest.fixture
def bobs(bob_api) -> str:
    return bob_api.post("/api/v1/accounts", {"name": "Bob's"}, format="json").json()["uuid"]


def _limits(settings, **by_kind: dict) -> None:
    """Exactly these limits; counts are left unlimited unless a test sets them."""
    settings.OPERATION_LIMITS = by_kind


def _usd(amount: int, asset_code: str) -> int:
    """What the limits count for one amount: US cents at the mid, rounded up."""
    return value_at_mid(amount, asset_code, "USD", rounding=ROUND_CEILING)


def _balances(client, account: str) -> dict[str, int]:
    rows = client.get(f"/api/v1/accounts/{account}/balances").json()
    return {row["asset_code"]: row["balance"] for row in rows}


def _transfer(client, source: str, target: str, amount: int, asset_code: str, **headers):
    body = {
        "from_account": source,
        "to_account": target,
        "amount": amount,
        "asset_code": asset_code,
    }
    return client.post("/api/v1/transfers", body, format="json", **headers)


def _convert(client, account: str, amount: int, from_asset: str, to_asset: str, **headers):
    body = {
        "account_uuid": account,
        "from_asset": from_asset,
        "to_asset": to_asset,
        "amount": amount,
    }
    return client.post("/api/v1/exchange/convert", body, format="json", **headers)


def _bulk(client, items: list[dict], atomic: bool = True):
    return client.post(
        "/api/v1/transfers/bulk", {"transfers": items, "atomic": atomic}, format="json"
    )


def _basket(client, account: str, kind: str, amount: int):
    return client.post(
        f"/api/v1/accounts/{account}/baskets/{kind}",
        {"basket_code": "GCU", "amount": amount},
        format="json",
    )


def _refused(response) -> dict:
    return assert_error(response, 429, "THROTTLED")


# --- the attack ------------------------------------------------------------------------------


def test_converting_to_euros_then_transferring_them_is_refused_past_100_dollars(
    api, bob_api, funded, bobs, settings
):
    """The old $100/hour USD cap let 9,000 cents be converted and any EUR transferred; the total
    budget counts both, so the EUR transfer stops once the USD-equivalent passes $100."""
    _limits(
        settings,
        transfer={"amount_per_hour": {"USD": 10_000}},
        total={"usd_amount_per_hour": 10_000},
    )
    mine = funded(USD=1_000_000)
    assert _convert(api, mine, 9_000, "USD", "EUR").status_code == 201
    euros = _balances(api, mine)["EUR"]
    before = (_balances(api, mine), _balances(bob_api, bobs))

    error = _refused(_transfer(api, mine, bobs, 2_000, "EUR"))  # about $21.60 more
    assert "operations of all kinds" in error["message"] and "US cents" in error["message"]
    assert 0 < error["details"]["retry_after_seconds"] <= 3600
    assert (_balances(api, mine), _balances(bob_api, bobs)) == before  # nothing moved

    # what is left of the $100 may still go: the refusal counted nothing
    left = 10_000 - 9_000
    small = 500  # EUR cents, about $5.40
    assert _usd(small, "EUR") <= left
    assert _transfer(api, mine, bobs, small, "EUR").status_code == 201
    assert _balances(bob_api, bobs) == {"EUR": small}
    assert _balances(api, mine)["EUR"] == euros - small


def test_a_transfer_budget_in_dollars_caps_every_asset(api, bob_api, funded, bobs, settings):
    """A per-kind USD budget without the total: EUR worth more than $100 can't be transferred
    although the USD cap alone (per asset) never sees it."""
    _limits(
        settings,
        transfer={"amount_per_hour": {"USD": 10_000}, "usd_amount_per_hour": 10_000},
    )
    mine = funded(EUR=100_000)
    worth_more = 9_500  # EUR cents, about $102.60
    assert _usd(worth_more, "EUR") > 10_000
    _refused(_transfer(api, mine, bobs, worth_more, "EUR"))
    assert _balances(bob_api, bobs) == {}
    assert _transfer(api, mine, bobs, 9_000, "EUR").status_code == 201  # about $97.20


# --- per-asset caps, tiny operations, kinds ---------------------------------------------------


def test_the_per_asset_caps_still_apply_beside_the_dollar_budgets(
    api, bob_api, funded, bobs, settings
):
    _limits(
        settings,
        transfer={"amount_per_hour": {"EUR": 1_000}, "usd_amount_per_hour": HUGE},
        total={"usd_amount_per_hour": HUGE},
    )
    mine = funded(EUR=10_000, USD=10_000)
    assert _transfer(api, mine, bobs, 600, "EUR").status_code == 201
    error = _refused(_transfer(api, mine, bobs, 600, "EUR"))
    assert "EUR minor units per hour" in error["message"]
    assert _transfer(api, mine, bobs, 400, "EUR").status_code == 201
    assert _transfer(api, mine, bobs, 5_000, "USD").status_code == 201  # another asset
    assert _balances(bob_api, bobs) == {"EUR": 1_000, "USD": 5_000}


def test_a_thousand_tiny_operations_still_spend_the_dollar_budget(
    api, bob_api, funded, bobs, settings
):
    """One satoshi is worth a tenth of a cent: rounded to the nearest cent it would count
    nothing, and a thousand of them nothing either. Each counts at least a cent."""
    assert value_at_mid(1, "BTC", "USD") == 0  # what rounding to the nearest cent would count
    _limits(settings, transfer={"usd_amount_per_hour": 1_000})
    mine = funded(BTC=10_000)
    item = {"from_account": mine, "to_account": bobs, "amount": 1, "asset_code": "BTC"}
    for _ in range(10):
        response = _bulk(api, [item] * 100)
        assert response.status_code == 201, response.json()
    _refused(_transfer(api, mine, bobs, 1, "BTC"))  # the 1,001st
    assert _balances(bob_api, bobs) == {"BTC": 1_000}


def test_the_total_spans_operation_kinds(api, bob_api, funded, bobs, settings):
    """Each kind under its own budget, but together over the total: the last one is refused."""
    mine = funded(**{code: 10_000_000 for code in ("USD", "EUR", "GBP", "CHF", "JPY", "XAU")})
    per_kind = {"usd_amount_per_hour": 10_000}
    _limits(settings, transfer=per_kind, conversion=per_kind, total={"usd_amount_per_hour": HUGE})
    composed = _basket(api, mine, "compose", 2_000)
    assert composed.status_code == 201, composed.json()
    worth = sum(_usd(part["amount"], part["asset_code"]) for part in composed.json()["components"])
    settings.OPERATION_LIMITS["total"] = {"usd_amount_per_hour": worth + 15_000}

    assert _convert(api, mine, 6_000, "USD", "EUR").status_code == 201
    assert _transfer(api, mine, bobs, 6_000, "USD").status_code == 201
    before = _balances(api, mine)
    error = _refused(_convert(api, mine, 3_001, "USD", "GBP"))  # 9,001 of 10,000 conversions
    assert "operations of all kinds" in error["message"]
    assert _balances(api, mine) == before
    assert _transfer(api, mine, bobs, 3_000, "USD").status_code == 201  # the total exactly
    _refused(_transfer(api, mine, bobs, 1, "USD"))


def test_withdrawals_count_in_the_total_and_deposits_do_not(bank, settings):
    """The deposit and withdrawal views call operation_limit_take; money coming in does not
    spend the budget of money going out, money going out does."""
    _limits(
        settings,
        deposit={"usd_amount_per_hour": 50_000},
        withdrawal={"usd_amount_per_hour": HUGE},
        transfer={"usd_amount_per_hour": HUGE},
        total={"usd_amount_per_hour": 10_000},
    )
    user = str(uuid.uuid4())
    operation_limit_take(op="deposit", user_key=user, asset_code="USD", amount=40_000)
    operation_limit_take(op="withdrawal", user_key=user, asset_code="EUR", amount=5_000)
    with pytest.raises(Throttled, match="operations of all kinds"):
        operation_limit_take(op="transfer", user_key=user, asset_code="USD", amount=5_000)
    with pytest.raises(Throttled, match="deposit"):
        operation_limit_take(op="deposit", user_key=user, asset_code="USD", amount=20_000)
    left = 10_000 - _usd(5_000, "EUR")
    operation_limit_take(op="transfer", user_key=user, asset_code="USD", amount=left)


# --- bulk ----------------------------------------------------------------------------------


def test_a_bulk_counts_every_item_and_a_refused_batch_counts_nothing(
    api, bob_api, funded, bobs, settings
):
    _limits(
        settings,
        transfer={"per_hour": 5, "amount_per_hour": {"CHF": 1_000, "USD": 1_000}},
        total={"usd_amount_per_hour": HUGE},
    )
    mine = funded(CHF=10_000, USD=10_000)

    def item(amount, asset_code="USD"):
        return {
            "from_account": mine,
            "to_account": bobs,
            "amount": amount,
            "asset_code": asset_code,
        }

    # CHF fits, USD does not: the whole batch is refused and the CHF is not counted either
    # (the old code counted one asset after the other and kept the first)
    _refused(_bulk(api, [item(600, "CHF"), item(700), item(700)]))
    assert _balances(bob_api, bobs) == {}
    assert _bulk(api, [item(600, "CHF"), item(400, "CHF")]).status_code == 201
    # every item is an operation: 2 done, 4 more would pass 5 per hour
    _refused(_bulk(api, [item(1), item(1), item(1), item(1)]))
    assert _bulk(api, [item(1), item(1), item(1)]).status_code == 201
    assert _balances(bob_api, bobs) == {"CHF": 1_000, "USD": 3}


def test_a_non_atomic_bulk_counts_the_items_that_moved(api, bob_api, funded, bobs, settings):
    _limits(settings, transfer={"usd_amount_per_hour": 1_000})
    mine = funded(USD=700)

    def item(amount):
        return {"from_account": mine, "to_account": bobs, "amount": amount, "asset_code": "USD"}

    response = _bulk(api, [item(600), item(600), item(100)], atomic=False)
    assert response.status_code == 201, response.json()
    assert [r["status"] for r in response.json()["results"]] == ["completed", "failed", "completed"]
    deposit_create(account_uuid=uuid.UUID(mine), amount=10_000, asset_code="USD")
    _refused(_bulk(api, [item(200), item(200), item(1)], atomic=False))  # 701 + 401 > 1,000
    assert _bulk(api, [item(200), item(100)], atomic=False).status_code == 201  # 1,000
    assert _balances(bob_api, bobs) == {"USD": 1_000}


# --- conversions and baskets ------------------------------------------------------------------


def test_conversions_are_counted(api, funded, settings):
    _limits(settings, conversion={"per_hour": 3, "usd_amount_per_hour": 10_000})
    mine = funded(USD=100_000, EUR=100_000)
    assert _convert(api, mine, 6_000, "USD", "EUR").status_code == 201
    before = _balances(api, mine)
    error = _refused(_convert(api, mine, 6_000, "USD", "EUR", HTTP_IDEMPOTENCY_KEY="c-2"))
    assert "conversion" in error["message"]
    assert _balances(api, mine) == before
    # EUR to USD counts what leaves (EUR) in dollars
    euros = 3_000
    assert 6_000 + _usd(euros, "EUR") <= 10_000
    assert _convert(api, mine, euros, "EUR", "USD").status_code == 201
    # the refused key was not used up: with room again it converts once, then replays
    settings.OPERATION_LIMITS["conversion"]["usd_amount_per_hour"] = HUGE
    assert _convert(api, mine, 6_000, "USD", "EUR", HTTP_IDEMPOTENCY_KEY="c-2").status_code == 201
    replay = _convert(api, mine, 6_000, "USD", "EUR", HTTP_IDEMPOTENCY_KEY="c-2")
    assert replay["Idempotent-Replayed"] == "true"
    _refused(_convert(api, mine, 100, "USD", "EUR"))  # the 4th conversion this hour


def test_basket_compose_and_decompose_are_counted(api, funded, settings):
    """A basket operation is worth its components in dollars, both ways."""
    mine = funded(**{code: 10_000_000 for code in ("USD", "EUR", "GBP", "CHF", "JPY", "XAU")})
    _limits(settings, basket={"usd_amount_per_hour": HUGE})
    first = _basket(api, mine, "compose", 10_000)
    assert first.status_code == 201, first.json()
    worth = sum(_usd(part["amount"], part["asset_code"]) for part in first.json()["components"])

    settings.OPERATION_LIMITS = {"basket": {"usd_amount_per_hour": worth * 3 + worth // 2}}
    assert _basket(api, mine, "compose", 10_000).status_code == 201
    assert _basket(api, mine, "decompose", 10_000).status_code == 201
    before = _balances(api, mine)
    error = _refused(_basket(api, mine, "decompose", 10_000))  # a fourth of the same worth
    assert "basket" in error["message"]
    assert _balances(api, mine) == before
    assert _basket(api, mine, "decompose", 4_000).status_code == 201  # under half of one


# --- an asset without a rate to USD -----------------------------------------------------------


def test_an_asset_without_a_dollar_rate_is_refused_while_a_dollar_budget_applies(
    api, bob_api, funded, bobs, settings
):
    asset_define(code="NORATE", name="No rate", type="fiat", precision=2)
    mine = funded(NORATE=5_000)
    _limits(settings, transfer={"per_hour": 10}, total={"usd_amount_per_hour": HUGE})
    error = assert_error(_transfer(api, mine, bobs, 100, "NORATE"), 422, "EXCHANGE_RATE_NOT_FOUND")
    assert error["details"] == {"from": "NORATE", "to": "USD"}
    assert _balances(bob_api, bobs) == {}
    # without a dollar budget it is only counted in number
    _limits(settings, transfer={"per_hour": 10})
    assert _transfer(api, mine, bobs, 100, "NORATE").status_code == 201
    assert _balances(bob_api, bobs) == {"NORATE": 100}


def test_the_default_configuration_has_dollar_budgets_for_every_outgoing_kind():
    from django.conf import settings

    limits = settings.OPERATION_LIMITS
    for kind in ("withdrawal", "transfer", "conversion", "basket", "total"):
        assert limits[kind]["usd_amount_per_hour"] > 0, kind
        assert limits[kind]["usd_amount_per_day"] >= limits[kind]["usd_amount_per_hour"], kind


def test_the_total_admits_exactly_its_limit_from_many_threads_of_several_kinds(settings):
    """The kinds share the total's counters, added atomically with their own: 40 transfers and
    conversions at once against a total of 10 per hour let exactly 10 through."""
    _limits(
        settings,
        transfer={"per_hour": 1_000},
        conversion={"per_hour": 1_000},
        total={"per_hour": 10},
    )
    admitted, refused = [], []
    barrier = threading.Barrier(8)

    def attempts(op: str) -> None:
        barrier.wait()
        for _ in range(5):
            try:
                operation_limit_take(op=op, user_key="racer", asset_code="USD", amount=1)
                admitted.append(op)
            except Throttled:
                refused.append(op)

    kinds = ["transfer", "conversion"] * 4
    threads = [threading.Thread(target=attempts, args=(op,)) for op in kinds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(admitted), len(refused)) == (10, 30)
    # the refusals were all taken back: the counter stands at 10, so one more fits in 11
    settings.OPERATION_LIMITS["total"]["per_hour"] = 11
    operation_limit_take(op="conversion", user_key="racer", asset_code="USD", amount=1)
    with pytest.raises(Throttled):
        operation_limit_take(op="transfer", user_key="racer", asset_code="USD", amount=1)
