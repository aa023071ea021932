"""A token creates only tokens no broader and no longer-lived than itself; creating and revoking
tokens is a scope of its own; a token never outlives its user's access."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.users.models import ApiToken
from apps.users.services import ALL_SCOPES, TokenScopeExceeded, token_create
from tests.api.conftest import assert_error


def _client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def _issued(user, scopes, days=None):
    issued = token_create(user=user, name="parent", scopes=scopes, ttl_days=days)
    return issued.token, _client(issued.secret)


def _mint(client, **body):
    return client.post("/api/v1/auth/tokens", {"name": "minted", **body}, format="json")


def test_a_read_only_token_cannot_mint_an_all_powerful_long_lived_token(alice):
    _, read_only = _issued(alice, ["read"])
    before = ApiToken.objects.count()
    response = _mint(read_only, scopes=ALL_SCOPES, expires_in_days=365)
    assert_error(response, 403, "PERMISSION_DENIED")
    assert ApiToken.objects.count() == before


def test_a_token_with_the_tokens_scope_cannot_mint_scopes_it_lacks(alice):
    _, client = _issued(alice, ["transfer", "tokens"])
    before = ApiToken.objects.count()
    error = assert_error(_mint(client, scopes=["accounts"]), 403, "PERMISSION_DENIED")
    assert error["details"] == {"scopes": ["accounts"]}
    error = assert_error(_mint(client, scopes=ALL_SCOPES), 403, "PERMISSION_DENIED")
    assert set(error["details"]["scopes"]) == set(ALL_SCOPES) - {"transfer", "tokens"}
    assert ApiToken.objects.count() == before


def test_the_service_enforces_the_rule_whatever_the_caller(alice):
    parent, _ = _issued(alice, ["read", "tokens"])
    with pytest.raises(TokenScopeExceeded):
        token_create(user=alice, name="x", scopes=["transfer"], created_by=parent)
    read_only, _ = _issued(alice, ["read"])
    with pytest.raises(TokenScopeExceeded):
        token_create(user=alice, name="x", scopes=["read"], created_by=read_only)


def test_a_token_mints_a_subset_of_its_scopes_and_by_default_exactly_its_own(alice):
    _, client = _issued(alice, ["read", "transfer", "tokens"])
    narrower = _mint(client, scopes=["read"])
    assert narrower.status_code == 201, narrower.json()
    assert narrower.json()["scopes"] == ["read"]
    assert _client(narrower.json()["token"]).get("/api/v1/accounts").status_code == 200
    same = _mint(client)
    assert same.status_code == 201, same.json()
    assert same.json()["scopes"] == ["read", "tokens", "transfer"]


def test_a_minted_token_expires_no_later_than_the_token_that_made_it(alice):
    parent, client = _issued(alice, ["read", "tokens"], days=7)
    capped = _mint(client, expires_in_days=365)
    assert capped.status_code == 201, capped.json()
    assert ApiToken.objects.get(uuid=capped.json()["id"]).expires_at == parent.expires_at
    shorter = _mint(client, expires_in_days=1)
    expires = ApiToken.objects.get(uuid=shorter.json()["id"]).expires_at
    assert expires < parent.expires_at
    assert abs(expires - (timezone.now() + timedelta(days=1))) < timedelta(minutes=1)


def test_a_token_revoked_meanwhile_creates_nothing(alice):
    parent, _ = _issued(alice, ["read", "tokens"])
    ApiToken.objects.filter(pk=parent.pk).update(revoked_at=timezone.now())
    before = ApiToken.objects.count()
    with pytest.raises(Exception, match="revoked"):
        token_create(user=alice, name="x", created_by=parent)
    assert ApiToken.objects.count() == before


def test_login_tokens_have_every_scope_including_tokens(alice):
    login = APIClient().post(
        "/api/v1/auth/login",
        {"email": alice.email, "password": "correct-horse-battery"},
        format="json",
    )
    client = _client(login.json()["token"])
    created = _mint(client, scopes=ALL_SCOPES)
    assert created.status_code == 201, created.json()
    assert "tokens" in created.json()["scopes"]


def test_revoking_a_token_needs_the_tokens_scope(alice):
    victim, _ = _issued(alice, ["read"])
    _, read_only = _issued(alice, ["read", "transfer"])
    response = read_only.delete(f"/api/v1/auth/tokens/{victim.uuid}")
    assert_error(response, 403, "PERMISSION_DENIED")
    victim.refresh_from_db()
    assert victim.revoked_at is None
    _, manager = _issued(alice, ["tokens"])
    assert manager.delete(f"/api/v1/auth/tokens/{victim.uuid}").status_code == 204
    victim.refresh_from_db()
    assert victim.revoked_at is not None


def test_listing_tokens_needs_only_read(alice):
    _, read_only = _issued(alice, ["read"])
    assert read_only.get("/api/v1/auth/tokens").status_code == 200


def test_any_token_may_log_itself_out(alice):
    token, transfer_only = _issued(alice, ["transfer"])
    assert transfer_only.post("/api/v1/auth/logout").status_code == 204
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert_error(transfer_only.get("/api/v1/auth/me"), 401, "NOT_AUTHENTICATED")


def test_a_deactivated_users_tokens_are_refused(alice):
    _, client = _issued(alice, None)
    assert client.get("/api/v1/auth/me").status_code == 200
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    assert_error(client.get("/api/v1/auth/me"), 401, "NOT_AUTHENTICATED")
    assert_error(_mint(client), 401, "NOT_AUTHENTICATED")


def test_a_user_who_loses_staff_status_loses_staff_powers_on_his_tokens(staff_api, alice, api):
    account = api.post("/api/v1/accounts", {"name": "Main"}, format="json").json()["uuid"]
    adjust = {"amount": 100, "asset_code": "USD", "reason": "correction"}
    url = f"/api/v1/accounts/{account}/adjustments"
    assert staff_api.post(url, adjust, format="json").status_code in (201, 202)
    staff = ApiToken.objects.filter(user__is_staff=True).latest("created_at").user
    staff.is_staff = False  # the groups stay: only the staff flag is un-ticked
    staff.save(update_fields=["is_staff"])
    assert staff.groups.exists()
    response = staff_api.post(url, {**adjust, "reason": "again"}, format="json")
    assert response.status_code in (403, 404), response.json()
    assert response.json()["error"] in ("PERMISSION_DENIED", "NOT_FOUND")


def test_a_password_change_revokes_every_token_of_the_user(alice, bob):
    _, client = _issued(alice, None)
    _, bobs = _issued(bob, None)
    alice.set_password("another-long-passphrase-7")
    alice.save()
    assert_error(client.get("/api/v1/auth/me"), 401, "NOT_AUTHENTICATED")
    assert bobs.get("/api/v1/auth/me").status_code == 200
    login = APIClient().post(
        "/api/v1/auth/login",
        {"email": alice.email, "password": "another-long-passphrase-7"},
        format="json",
    )
    assert _client(login.json()["token"]).get("/api/v1/auth/me").status_code == 200
