"""Bearer-token authentication for the API."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from apps.core import sql
from apps.users.models import ApiToken, User

# Recording every use would turn each read into a write; once a minute tells staff enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0] != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization must be 'Bearer <token>'.")
        # Two plain lookups: the ORM compiling one query with its join costs more than both.
        tokens = sql.models_in(ApiToken, "key_hash", [hash_secret(header[1])])
        for token in tokens:
            (token.user,) = sql.models_in(User, User._meta.pk.name, [token.user_id])
        now = timezone.now()
        if not tokens or not tokens[0].is_usable(now):
            raise exceptions.AuthenticationFailed("The token is invalid, expired or revoked.")
        (token,) = tokens
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request):
        # Makes DRF answer 401 (with WWW-Authenticate), not 403, when credentials are missing.
        return f'{self.keyword} realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Describes the bearer token in the OpenAPI schema."""

    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Token from /auth/login"}
