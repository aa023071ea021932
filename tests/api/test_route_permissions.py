"""Who may call what: every route and method under /api/v1/, checked against an explicit table.

The routes come from the URL conf (walked with django.urls.get_resolver()), the methods from the
view classes. A route or method that is in the URL conf but not in EXPECTED fails this module:
a new endpoint must state, here, how it answers a caller without a token, a customer addressing
another customer's objects, and a customer addressing his own.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.custodians.services import custodian_deposit_start, custodian_withdrawal_start
from apps.payments.services import deposit_create
from apps.users.services import token_create
from tests.api.conftest import assert_error, client_for, shared_data
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

API_PREFIX = "api/v1/"
# Methods every view answers generically (HEAD mirrors GET, OPTIONS describes the view).
GENERIC_METHODS = {"head", "options"}
# Path parameters that address an object owned by one customer.
OWNED_KWARGS = {"account_uuid", "transfer_uuid", "token_id", "movement_uuid"}


@dataclass(frozen=True)
class Expect:
    anon: int  # no token, or a bad one (public routes: with an empty body)
    cross: int | None  # alice's token on bob's objects; None: the route addresses none of his
    own: int  # alice's token on her own objects (403: staff only)
    own_code: str | None = None  # the error code when `own` is an error
    empty_account: bool = False  # `own` addresses an account without money (closing it)
    anon_code: str | None = None  # the error code of `anon`, if not the usual one


PUBLIC = 400  # public routes answer a bad body with VALIDATION_ERROR
STAFF_ONLY = 403


def staff_only(cross: int | None = None) -> Expect:
    return Expect(anon=401, cross=cross, own=STAFF_ONLY, own_code="PERMISSION_DENIED")


EXPECTED: dict[tuple[str, str], Expect] = {
    ("api-root", "GET"): Expect(anon=401, cross=None, own=200),
    # --- auth
    ("auth-register", "POST"): Expect(anon=PUBLIC, cross=None, own=201),
    ("auth-login", "POST"): Expect(anon=PUBLIC, cross=None, own=200),
    ("auth-logout", "POST"): Expect(anon=401, cross=None, own=204),
    ("auth-me", "GET"): Expect(anon=401, cross=None, own=200),
    ("auth-tokens", "GET"): Expect(anon=401, cross=None, own=200),
    ("auth-tokens", "POST"): Expect(anon=401, cross=None, own=201),
    ("auth-token", "DELETE"): Expect(anon=401, cross=404, own=204),
    # --- accounts
    ("accounts", "GET"): Expect(anon=401, cross=None, own=200),
    ("accounts", "POST"): Expect(anon=401, cross=None, own=201),
    ("account", "GET"): Expect(anon=401, cross=404, own=200),
    ("account", "DELETE"): Expect(anon=401, cross=404, own=204, empty_account=True),
    ("account-deposit", "POST"): Expect(anon=401, cross=404, own=202),
    ("account-withdraw", "POST"): Expect(anon=401, cross=404, own=202),
    ("account-deposits", "GET"): Expect(anon=401, cross=404, own=200),
    ("account-withdrawals", "GET"): Expect(anon=401, cross=404, own=200),
    ("deposit", "GET"): Expect(anon=401, cross=404, own=200),
    ("withdrawal", "GET"): Expect(anon=401, cross=404, own=200),
    ("account-adjustments", "POST"): staff_only(cross=404),
    ("account-freeze", "POST"): staff_only(cross=404),
    ("account-unfreeze", "POST"): staff_only(cross=404),
    ("account-balances", "GET"): Expect(anon=401, cross=404, own=200),
    ("account-transactions", "GET"): Expect(anon=401, cross=404, own=200),
    ("account-turnover", "GET"): Expect(anon=401, cross=404, own=200),
    ("account-transfers", "GET"): Expect(anon=401, cross=404, own=200),
    # --- transfers; the source account is in the body: bob's is as unknown as a random uuid
    ("transfers", "GET"): Expect(anon=401, cross=None, own=200),
    ("transfers", "POST"): Expect(anon=401, cross=404, own=201),
    ("transfers-bulk", "POST"): Expect(anon=401, cross=404, own=201),
    ("transfer", "GET"): Expect(anon=401, cross=404, own=200),
    ("transfer-reverse", "POST"): staff_only(cross=404),
    ("exchange-convert", "POST"): Expect(anon=401, cross=404, own=201),
    # --- assets and rates (reference data: nobody's own)
    ("assets", "GET"): Expect(anon=401, cross=None, own=200),
    ("asset", "GET"): Expect(anon=401, cross=None, own=200),
    ("exchange-rates", "GET"): Expect(anon=401, cross=None, own=200),
    ("exchange-rate", "GET"): Expect(anon=401, cross=None, own=200),
    ("exchange-rate-convert", "GET"): Expect(anon=401, cross=None, own=200),
    # --- governance (polls belong to the bank; `own` is an active poll)
    ("polls", "GET"): Expect(anon=401, cross=None, own=200),
    ("polls", "POST"): staff_only(),
    ("polls-active", "GET"): Expect(anon=401, cross=None, own=200),
    ("poll", "GET"): Expect(anon=401, cross=None, own=200),
    ("poll-activate", "POST"): staff_only(),
    ("poll-vote", "POST"): Expect(anon=401, cross=None, own=201),
    ("poll-results", "GET"): Expect(anon=401, cross=None, own=200),
    ("poll-voting-power", "GET"): Expect(anon=401, cross=None, own=200),
    # --- baskets and bank allocation
    ("baskets", "GET"): Expect(anon=401, cross=None, own=200),
    ("basket", "GET"): Expect(anon=401, cross=None, own=200),
    ("basket-value", "GET"): Expect(anon=401, cross=None, own=200),
    ("basket-history", "GET"): Expect(anon=401, cross=None, own=200),
    ("basket-rebalance", "POST"): staff_only(),
    ("account-basket-compose", "POST"): Expect(anon=401, cross=404, own=201),
    ("account-basket-decompose", "POST"): Expect(anon=401, cross=404, own=201),
    ("bank-allocations", "GET"): Expect(anon=401, cross=None, own=200),
    ("bank-allocations", "PUT"): Expect(anon=401, cross=None, own=200),
    ("bank-allocations-preview", "GET"): Expect(anon=401, cross=None, own=200),
    # --- custodians; the webhook is authenticated by its HMAC signature, never by a token
    ("custodians", "GET"): staff_only(),
    ("custodian-webhook", "POST"): Expect(
        anon=401,
        anon_code="INVALID_SIGNATURE",
        cross=None,
        own=401,
        own_code="INVALID_SIGNATURE",
    ),
}


@dataclass(frozen=True)
class Route:
    name: str
    route: str  # the full pattern, e.g. "api/v1/accounts/<uuid:account_uuid>"
    methods: tuple[str, ...]
    kwargs: tuple[str, ...]


def _walk(resolver: URLResolver, prefix: str = ""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def v1_routes() -> list[Route]:
    """Every URL pattern under /api/v1/ with the HTTP methods its view implements."""
    routes = []
    for full, pattern in _walk(get_resolver()):
        if not full.startswith(API_PREFIX):
            continue
        view_class = getattr(pattern.callback, "view_class", None)
        assert view_class is not None, f"{full}: a function view; use an APIView"
        assert pattern.name, f"{full}: every v1 route needs a name"
        methods = tuple(
            sorted(
                method.upper()
                for method in view_class.http_method_names
                if method not in GENERIC_METHODS and hasattr(view_class, method)
            )
        )
        converters = pattern.pattern.converters  # {kwarg: converter}
        routes.append(Route(pattern.name, full, methods, tuple(sorted(converters))))
    return routes


ROUTES = v1_routes()
CASES = [(route, method) for route in ROUTES for method in route.methods]
CROSS_CASES = [
    (route, method)
    for route, method in CASES
    if (route.name, method) in EXPECTED and EXPECTED[route.name, method].cross is not None
]


def _case_id(case) -> str:
    route, method = case
    return f"{route.name}-{method}"


def _expect(route: Route, method: str) -> Expect:
    expect = EXPECTED.get((route.name, method))
    if expect is None:
        pytest.fail(
            f"{method} /{route.route} ({route.name!r}) is in the URL conf but not in EXPECTED: "
            "a new route must state who may call it"
        )
    return expect


# --- the objects the requests address: made once for the module ------------------------------


@dataclass(frozen=True)
class Customer:
    user: Any
    client: APIClient
    account: str  # holds USD, EUR and every GCU component, and some GCU
    empty_account: str
    transfer: str  # a transfer out of `account`
    spare_token: str  # the id of a token other than the one `client` uses
    deposit: str  # a deposit to `account`, pending at the custodian
    withdrawal: str  # a withdrawal from `account`, pending


@dataclass(frozen=True)
class World:
    alice: Customer
    bob: Customer
    poll: str  # an active poll anyone may vote in


FUNDS = {code: 10_000_000 for code in ("USD", "EUR", "GBP", "CHF", "JPY", "XAU")}


def _open(client: APIClient, name: str, funded: dict[str, int] | None = None) -> str:
    response = client.post("/api/v1/accounts", {"name": name}, format="json")
    assert response.status_code == 201, response.json()
    account = response.json()["uuid"]
    for asset_code, amount in (funded or {}).items():
        deposit_create(account_uuid=uuid.UUID(account), amount=amount, asset_code=asset_code)
    return account


def _customer(user, counterparty_account: str | None) -> Customer:
    client = client_for(user)
    account = _open(client, "Main", funded=FUNDS)
    empty = _open(client, "Empty")
    target = counterparty_account or _open(client, "Savings")
    response = client.post(
        "/api/v1/transfers",
        {"from_account": account, "to_account": target, "amount": 1, "asset_code": "USD"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    compose = client.post(
        f"/api/v1/accounts/{account}/baskets/compose",
        {"basket_code": "GCU", "amount": 50_000},
        format="json",
    )
    assert compose.status_code == 201, compose.json()
    spare = token_create(user=user, name="spare").token
    movement = {"account_uuid": uuid.UUID(account), "amount": 100, "asset_code": "USD"}
    deposit = custodian_deposit_start(**movement)
    withdrawal = custodian_withdrawal_start(**movement)
    return Customer(
        user,
        client,
        account,
        empty,
        response.json()["uuid"],
        str(spare.uuid),
        str(deposit.uuid),
        str(withdrawal.uuid),
    )


def _active_poll() -> str:
    from apps.governance.services import poll_activate, poll_create

    now = timezone.now()
    poll = poll_create(
        title="Open late on Fridays?",
        type="yes_no",
        options=[{"id": "yes", "label": "Yes"}, {"id": "no", "label": "No"}],
        start_date=now - dt.timedelta(minutes=1),
        end_date=now + dt.timedelta(days=7),
        voting_power_strategy="one_user_one_vote",
    )
    return str(poll_activate(poll_uuid=poll.uuid).uuid)


@pytest.fixture(scope="module")
def world(reference_data, django_db_blocker) -> World:
    """Alice and Bob, each with a funded account, an empty one, a transfer and a spare token.

    Bob's transfer goes to his own savings account, so nothing of his is visible to alice;
    alice's goes to bob's empty account. Each test runs in a savepoint inside this data."""
    with shared_data(django_db_blocker):
        with django_db_blocker.unblock():
            alice = UserFactory(email="alice@example.com", name="Alice")
            bob = UserFactory(email="bob@example.com", name="Bob")
            bob_side = _customer(bob, counterparty_account=None)
            alice_side = _customer(alice, counterparty_account=bob_side.empty_account)
            world = World(alice_side, bob_side, _active_poll())
        yield world


ROUTE_KWARGS = {"custodian-webhook": {"code": "mock_bank"}}


def _kwargs(route: Route, target: Customer, world: World, expect: Expect) -> dict[str, Any]:
    values = {
        "account_uuid": target.empty_account if expect.empty_account else target.account,
        "transfer_uuid": target.transfer,
        "token_id": target.spare_token,
        "movement_uuid": target.withdrawal if route.name == "withdrawal" else target.deposit,
        "poll_uuid": world.poll,
        "code": "USD",
        "from_code": "USD",
        "to_code": "EUR",
        "basket_code": "GCU",
        **ROUTE_KWARGS.get(route.name, {}),
    }
    unknown = set(route.kwargs) - set(values)
    assert not unknown, f"{route.name}: no test value for path parameter(s) {sorted(unknown)}"
    return {name: values[name] for name in route.kwargs}


def _body(name: str, method: str, target: Customer, counterparty: str) -> dict[str, Any] | None:
    """A valid request body addressing `target`'s objects (so only permissions can refuse it)."""
    transfer = {
        "from_account": target.account,
        "to_account": counterparty,
        "amount": 100,
        "asset_code": "USD",
    }
    now = timezone.now()
    bodies = {
        ("auth-register", "POST"): {
            "email": "newcomer@example.com",
            "password": "a-long-passphrase-42",
            "name": "Newcomer",
        },
        ("auth-login", "POST"): {"email": target.user.email, "password": "correct-horse-battery"},
        ("auth-tokens", "POST"): {"name": "ci", "scopes": ["read"]},
        ("accounts", "POST"): {"name": "Holidays"},
        ("account-deposit", "POST"): {"amount": 100, "asset_code": "USD"},
        ("account-withdraw", "POST"): {"amount": 100, "asset_code": "USD"},
        ("account-adjustments", "POST"): {"amount": 100, "asset_code": "USD", "reason": "fix"},
        ("account-freeze", "POST"): {"reason": "suspicious activity"},
        ("account-unfreeze", "POST"): {"reason": "cleared"},
        ("transfers", "POST"): transfer,
        ("transfers-bulk", "POST"): {"transfers": [transfer], "atomic": True},
        ("transfer-reverse", "POST"): {"reason": "sent by mistake"},
        ("exchange-convert", "POST"): {
            "account_uuid": target.account,
            "from_asset": "USD",
            "to_asset": "EUR",
            "amount": 100,
        },
        ("polls", "POST"): {
            "title": "A customer's poll",
            "description": "",
            "type": "yes_no",
            "options": [{"id": "yes", "label": "Yes"}, {"id": "no", "label": "No"}],
            "start_date": now.isoformat(),
            "end_date": (now + dt.timedelta(days=3)).isoformat(),
            "voting_power_strategy": "one_user_one_vote",
        },
        ("poll-activate", "POST"): {},
        ("poll-vote", "POST"): {"selected_options": ["yes"]},
        ("basket-rebalance", "POST"): {},
        ("account-basket-compose", "POST"): {"basket_code": "GCU", "amount": 10_000},
        ("account-basket-decompose", "POST"): {"basket_code": "GCU", "amount": 10_000},
        ("bank-allocations", "PUT"): {
            "allocations": [
                {"bank_code": "PAYSERA", "percentage": "60", "is_primary": True},
                {"bank_code": "WISE", "percentage": "40", "is_primary": False},
            ]
        },
    }
    return bodies.get((name, method))


QUERIES = {
    ("exchange-rate-convert", "GET"): "?amount=100",
    ("bank-allocations-preview", "GET"): "?amount=100000",
}


def _headers(name: str, method: str) -> dict[str, str]:
    if (name, method) == ("custodian-webhook", "POST"):  # fresh, but signed with a wrong key
        return {
            "HTTP_X_CUSTODIAN_TIMESTAMP": str(int(time.time())),
            "HTTP_X_CUSTODIAN_SIGNATURE": "sha256=" + "0" * 64,
        }
    return {}


def _call(client: APIClient, route: Route, method: str, url: str, body) -> Any:
    url += QUERIES.get((route.name, method), "")
    headers = _headers(route.name, method)
    if body is None:
        return client.generic(method, url, **headers)
    return getattr(client, method.lower())(url, body, format="json", **headers)


def _state_of(customer: Customer) -> dict[str, Any]:
    """What another user's request must never change: accounts, balances, transfers, tokens."""
    accounts = customer.client.get("/api/v1/accounts?page_size=100").json()["results"]
    transfers = customer.client.get("/api/v1/transfers?page_size=100").json()["results"]
    tokens = customer.client.get("/api/v1/auth/tokens").json()
    return {
        "accounts": sorted(
            (a["uuid"], a["frozen"], a["closed"], str(a["balances"])) for a in accounts
        ),
        "transfers": sorted((t["uuid"], t["status"]) for t in transfers),
        "tokens": sorted(t["id"] for t in tokens),
    }


NOBODY = "00000000-0000-4000-8000-00000000000{}"


# --- the tests -------------------------------------------------------------------------------


def test_the_walk_finds_the_v1_routes():
    names = {route.name for route in ROUTES}
    assert {"auth-login", "accounts", "account-deposit", "transfer-reverse"} <= names
    methods = {(route.name, m) for route in ROUTES for m in route.methods}
    assert ("account", "DELETE") in methods and ("account", "GET") in methods
    assert ("account", "POST") not in methods


def test_every_route_and_method_of_the_url_conf_is_in_the_table():
    found = {(route.name, method) for route, method in CASES}
    missing = sorted(found - set(EXPECTED))
    stale = sorted(set(EXPECTED) - found)
    assert not missing, f"routes without permission expectations: {missing}"
    assert not stale, f"expectations for routes the URL conf no longer has: {stale}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_without_a_valid_token(case, world):
    """No token and a bad token: 401 everywhere but registration and login."""
    route, method = case
    expect = _expect(route, method)
    if OWNED_KWARGS & set(route.kwargs):
        assert expect.cross == 404, f"{route.name} {method} addresses an owned object"
    url = reverse(route.name, kwargs=_kwargs(route, world.bob, world, expect))
    body = {} if method in ("POST", "PUT", "PATCH") else None
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer fa_not-a-real-token")
    for client in (APIClient(), bad):
        response = _call(client, route, method, url, body)
        assert response.status_code == expect.anon, (url, response.content[:300])
        if expect.anon_code:
            assert_error(response, expect.anon, expect.anon_code)
        elif expect.anon == 401:
            assert_error(response, 401, "NOT_AUTHENTICATED")
            assert response["WWW-Authenticate"].startswith("Bearer")
        else:  # public: the Authorization header is ignored, the empty body refused
            error = assert_error(response, 400, "VALIDATION_ERROR")
            assert {"email", "password"} <= set(error["details"])


@pytest.mark.parametrize("case", CROSS_CASES, ids=_case_id)
def test_a_customer_on_another_customers_objects(case, world):
    """404, exactly as for a uuid nobody has (existence is not revealed), and nothing changes."""
    route, method = case
    expect = _expect(route, method)
    before = _state_of(world.bob)
    nobody = Customer(
        user=world.bob.user,
        client=world.bob.client,
        account=NOBODY.format(1),
        empty_account=NOBODY.format(2),
        transfer=NOBODY.format(3),
        spare_token=NOBODY.format(4),
        deposit=NOBODY.format(5),
        withdrawal=NOBODY.format(6),
    )
    answers = []
    for target in (world.bob, nobody):
        url = reverse(route.name, kwargs=_kwargs(route, target, world, expect))
        body = _body(route.name, method, target, counterparty=world.alice.account)
        response = _call(world.alice.client, route, method, url, body)
        assert response.status_code == expect.cross, (url, response.content[:300])
        error = assert_error(response, expect.cross, "NOT_FOUND")
        answers.append((error["error"], error["message"]))
    assert answers[0] == answers[1], "bob's object answers differently from a missing one"
    assert _state_of(world.bob) == before, "another customer's request changed bob's objects"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_a_customer_on_his_own_objects(case, world):
    """The positive control (the route works for its owner) and the staff-only refusals."""
    route, method = case
    expect = _expect(route, method)
    url = reverse(route.name, kwargs=_kwargs(route, world.alice, world, expect))
    body = _body(route.name, method, world.alice, counterparty=world.bob.account)
    response = _call(world.alice.client, route, method, url, body)
    assert response.status_code == expect.own, (url, response.content[:500])
    if expect.own_code:
        assert_error(response, expect.own, expect.own_code)


def test_staff_may_do_the_staff_only_actions(world, staff_api):
    account = f"/api/v1/accounts/{world.alice.account}"
    response = staff_api.post(f"{account}/freeze", {"reason": "check"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["frozen"] is True
    response = staff_api.post(f"{account}/unfreeze", {"reason": "ok"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["frozen"] is False
    response = staff_api.post(
        f"/api/v1/transfers/{world.alice.transfer}/reverse", {"reason": "error"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "reversed"
    response = staff_api.post(
        f"{account}/adjustments",
        {"amount": 100, "asset_code": "USD", "reason": "fix"},
        format="json",
    )
    assert response.status_code == 201, response.json()


def test_lists_show_a_customer_only_his_own_objects(world):
    alice, bob = world.alice, world.bob
    accounts = alice.client.get("/api/v1/accounts?page_size=100").json()["results"]
    assert {a["uuid"] for a in accounts} == {alice.account, alice.empty_account}
    transfers = alice.client.get("/api/v1/transfers?page_size=100").json()["results"]
    uuids = {t["uuid"] for t in transfers}
    assert alice.transfer in uuids and bob.transfer not in uuids
    tokens = alice.client.get("/api/v1/auth/tokens").json()
    assert bob.spare_token not in {t["id"] for t in tokens}
    # ?user= is no way around it for a customer
    others = alice.client.get(f"/api/v1/accounts?user={bob.user.uuid}").json()
    assert others["results"] == []


def test_a_token_of_a_deactivated_user_is_refused(world):
    type(world.alice.user).objects.filter(pk=world.alice.user.pk).update(is_active=False)
    assert_error(world.alice.client.get("/api/v1/auth/me"), 401, "NOT_AUTHENTICATED")
