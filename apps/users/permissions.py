"""Token scopes: a token may do only what its scopes allow, whatever its user may do."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from apps.users.models import ApiToken


class TokenHasScope(BasePermission):
    """The view names the scope each method needs in `required_scopes`: {"GET": "read", ...}.

    Requests authenticated by a browser session (the console) are not limited by scopes.
    """

    message = "The token's scopes do not allow this."

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        needed = getattr(view, "required_scopes", {}).get(request.method)
        if needed is None:
            needed = "read" if request.method in ("GET", "HEAD", "OPTIONS") else "transfer"
        return needed in token.scopes
