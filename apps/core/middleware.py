"""Opens the command context of each HTTP request: request id, correlation id and the caller."""

from __future__ import annotations

import re

from apps.core.context import command_context, new_request_id

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


def _incoming_id(request, header: str) -> str | None:
    value = request.headers.get(header, "")
    return value if _SAFE_ID.match(value) else None


class RequestContextMiddleware:
    """Every response carries X-Request-ID; events written during the request record it.

    The caller is read from the request when an event is written, because DRF authenticates a
    token only inside the view, after every middleware has run.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = _incoming_id(request, "X-Request-ID") or new_request_id()
        correlation_id = _incoming_id(request, "X-Correlation-ID") or request_id
        request.request_id = request_id
        with command_context(request=request, request_id=request_id, correlation_id=correlation_id):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
