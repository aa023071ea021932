"""Token scopes: a token may do only what its scopes allow, whatever its user may do."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from apps.users.models import ApiToken


class TokenHasScope(BasePermission):
    """The view names the scope each method needs in `required_scopes`: {"GET": "read", ...};
    `None` for a method any token may call (logout). A method not named needs `read` to read
    and `transfer` to write.

    Requests authenticated by a browser session (the console) are not limited by scopes.
    """

    message = "The token's scopes do not allow this."

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        required = getattr(view, "required_scopes", {})
        if request.method in required:
            needed = required[request.method]
        else:
            needed = "read" if request.method in ("GET", "HEAD", "OPTIONS") else "transfer"
        return needed is None or needed in token.scopes
