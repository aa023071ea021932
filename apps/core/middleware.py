"""Opens the command context of each HTTP request: request id, correlation id and the caller."""

from __future__ import annotations

import re

from django.conf import settings
from django.http import JsonResponse

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


# C0 controls and DEL: no path or query of the API has them, and PostgreSQL text cannot hold NUL.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
# Longer than any code or id of the API (a UUID is 36); the database compares no such thing.
MAX_PATH_SEGMENT = 100


def _api_error(status: int, code: str, message: str) -> JsonResponse:
    # Imported here: the logging setup imports this module before the apps (and DRF) are ready.
    from apps.core.api import error_body

    return JsonResponse(error_body(code, message), status=status)


def _hostile_url(request) -> str | None:
    """Why the path or the query of this request cannot name anything, or None."""
    if _CONTROL_CHARACTER.search(request.path):
        return "The path contains a control character."
    if any(len(segment) > MAX_PATH_SEGMENT for segment in request.path.split("/")):
        return f"A path segment is longer than {MAX_PATH_SEGMENT} characters."
    for key, values in request.GET.lists():
        if any(_CONTROL_CHARACTER.search(text) for text in (key, *values)):
            return "The query contains a control character."
    return None


def _body_too_large(request) -> JsonResponse | None:
    """413 when the declared body is over API_MAX_BODY_BYTES (400 when the length is no number).

    DRF reads a JSON body straight from the stream, past DATA_UPLOAD_MAX_MEMORY_SIZE; the
    declared length is what Django's stream reads up to, so it is the size to check."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isascii() or not declared.isdigit():
        return _api_error(400, "VALIDATION_ERROR", "Content-Length is not a number.")
    limit = settings.API_MAX_BODY_BYTES
    if int(declared) > limit:
        return _api_error(413, "PAYLOAD_TOO_LARGE", f"The body is over {limit} bytes.")
    return None


class HostileInputMiddleware:
    """Answers, before any view, the requests to /api/ that no view could answer well: a control
    character or an overlong segment in the URL (400), a body over the API's limit (413)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            reason = _hostile_url(request)
            if reason:
                return _api_error(400, "VALIDATION_ERROR", reason)
            refused = _body_too_large(request)
            if refused:
                return refused
        return self.get_response(request)
