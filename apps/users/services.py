"""Write side of users: registration, tokens, demo users."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.errors import DomainError, InvalidInput, NotFound
from apps.users.authentication import hash_secret
from apps.users.models import ApiToken, User

ALL_SCOPES = [scope.value for scope in ApiToken.Scope]


class InvalidCredentials(DomainError):
    code = "NOT_AUTHENTICATED"
    default_message = "The email or password is wrong."
    http_status = 401


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown to the caller once; only its hash is stored

    @property
    def expires_at(self) -> datetime:
        return self.token.expires_at


class TokenScopeExceeded(DomainError):
    code = "PERMISSION_DENIED"
    default_message = "A token can only create tokens with at most its own scopes."
    http_status = 403


def token_create(
    *,
    user: User,
    name: str,
    scopes: list[str] | None = None,
    ttl_days: int | None = None,
    created_by: ApiToken | None = None,
) -> IssuedToken:
    """A new token for `user`. `created_by` is the token the request came with, if any (None for
    a password login, registration or the console): the new token then gets at most its scopes
    (by default exactly them) and expires no later than it (a longer life is capped), so a
    narrow or short-lived token can never mint a broader or longer-lived one."""
    if created_by is not None:
        created_by = _token_creating(created_by, user)
    allowed = ALL_SCOPES if created_by is None else created_by.scopes
    scopes = allowed if scopes is None else scopes
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown or not scopes:
        raise InvalidInput(details={"scopes": [f"choose from {', '.join(ALL_SCOPES)}"]})
    beyond = sorted(set(scopes) - set(allowed))
    if beyond:
        raise TokenScopeExceeded(details={"scopes": beyond})
    expires_at = timezone.now() + timedelta(days=_ttl_days(ttl_days))
    if created_by is not None:
        expires_at = min(expires_at, created_by.expires_at)
    secret = f"fa_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user,
        name=name,
        key_hash=hash_secret(secret),
        prefix=secret[:10],
        scopes=sorted(set(scopes)),
        expires_at=expires_at,
    )
    return IssuedToken(token, secret)


def _ttl_days(requested: int | None) -> int:
    days = requested or settings.API_TOKEN_TTL_DAYS
    if not 1 <= days <= settings.API_TOKEN_MAX_TTL_DAYS:
        raise InvalidInput(
            details={"expires_in_days": [f"between 1 and {settings.API_TOKEN_MAX_TTL_DAYS}"]}
        )
    return days


def _token_creating(token: ApiToken, user: User) -> ApiToken:
    """The creating token as stored now: one revoked or expired since the request was
    authenticated, one of another user, or one without the `tokens` scope creates nothing."""
    current = ApiToken.objects.select_related("user").filter(pk=token.pk, user=user).first()
    if current is None or not current.is_usable(timezone.now()):
        raise InvalidCredentials("The token is invalid, expired or revoked.")
    if ApiToken.Scope.TOKENS not in current.scopes:
        raise TokenScopeExceeded("The token's scopes do not allow creating tokens.")
    return current


def token_revoke(*, user: User, token_uuid) -> None:
    revoked = ApiToken.objects.filter(user=user, uuid=token_uuid, revoked_at=None).update(
        revoked_at=timezone.now()
    )
    if not revoked:
        raise NotFound("No such token.", details={"id": str(token_uuid)})


class LoginLockedOut(DomainError):
    code = "THROTTLED"
    default_message = "Too many failed logins; try again later."
    http_status = 429


def user_login(*, email: str, password: str, request) -> IssuedToken:
    """`request` lets the lockout (django-axes) count failures per email and address."""
    user = authenticate(request, username=email.lower(), password=password)
    if getattr(request, "axes_locked_out", False):
        raise LoginLockedOut()
    if user is None:
        raise InvalidCredentials()
    return token_create(user=user, name="login")


@transaction.atomic
def user_register(*, email: str, password: str, name: str) -> tuple[User, IssuedToken]:
    """A new customer, a login token and a default account "<name>'s Account"."""
    from apps.accounts.services import account_open

    email = User.objects.normalize_email(email).lower()
    if User.objects.filter(email=email).exists():
        raise InvalidInput(details={"email": ["is already registered"]})
    try:
        validate_password(password, User(email=email, name=name))
    except ValidationError as exc:
        raise InvalidInput(details={"password": exc.messages}) from None
    user = User.objects.create_user(email, password, name=name)
    account_open(name=f"{name}'s Account", owner_uuid=user.uuid)
    return user, token_create(user=user, name="registration")


@transaction.atomic
def demo_user_ensure(*, email: str, name: str, password: str, staff: bool) -> User:
    """Create the demo user, or reset its password and role so a second `make run` works too."""
    user = User.objects.filter(email=email).first()
    if user is None:
        if staff:
            return User.objects.create_superuser(email, password, name=name)
        return User.objects.create_user(email, password, name=name)
    user.name = name
    user.is_staff = user.is_superuser = staff
    user.is_active = True
    user.set_password(password)
    user.save()
    return user
