"""API plumbing shared by every app: the error body of API.md, pagination, health."""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import Http404, JsonResponse
from django.views.defaults import bad_request, page_not_found, server_error
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core import store
from apps.core.errors import ConcurrencyError, DomainError
from apps.core.idempotency import request_fingerprint, run_idempotent

logger = logging.getLogger(__name__)

_CODES_BY_EXCEPTION: list[tuple[type[Exception], str]] = [
    (exceptions.NotAuthenticated, "NOT_AUTHENTICATED"),
    (exceptions.AuthenticationFailed, "NOT_AUTHENTICATED"),
    (exceptions.PermissionDenied, "PERMISSION_DENIED"),
    (exceptions.NotFound, "NOT_FOUND"),
    (Http404, "NOT_FOUND"),
    (exceptions.ValidationError, "VALIDATION_ERROR"),
    (exceptions.ParseError, "VALIDATION_ERROR"),
    (exceptions.UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"),
    (exceptions.MethodNotAllowed, "METHOD_NOT_ALLOWED"),
    (exceptions.NotAcceptable, "NOT_ACCEPTABLE"),
    (exceptions.Throttled, "THROTTLED"),
]

_MESSAGES = {
    "VALIDATION_ERROR": "The request is invalid; see details.",
    "NOT_FOUND": "Not found.",
    "SERVER_ERROR": "The server failed to answer; the request id names it in the logs.",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": code, "message": message, "details": details or {}}


def _code_for(exc: Exception) -> str:
    for exc_cls, code in _CODES_BY_EXCEPTION:
        if isinstance(exc, exc_cls):
            return code
    return "ERROR"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error leaves the API as `{"error", "message", "details"}` (API.md)."""
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.http_status)
    if isinstance(exc, ConcurrencyError):
        # Every retry lost the race: the caller may simply try again.
        body = error_body("CONCURRENT_MODIFICATION", "The object changed meanwhile; try again.")
        return Response(body, status=status.HTTP_409_CONFLICT)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected exception: Django logs it and answers 500
    code = _code_for(exc)
    if code == "VALIDATION_ERROR":
        details = (
            response.data
            if isinstance(response.data, dict)
            else {"non_field_errors": response.data}
        )
        response.data = error_body(code, _MESSAGES[code], details)
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        response.data = error_body(code, str(detail) or _MESSAGES.get(code, code))
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        response.data["details"] = {"retry_after_seconds": int(exc.wait)}
    return response


_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")


class JsonIntegerField(serializers.IntegerField):
    """An integer that the client sent as a JSON integer, and nothing else.

    DRF's IntegerField also reads "100", " 100 ", "100.00" and full-width digits (int() takes
    any Unicode digit), floats with no fraction and booleans: each a way for a client to mean
    something else than the number booked. Every amount or quantity in a body is one of these.

    A query parameter is text: with `in_query=True` the field also takes ASCII digits, and only
    those (no sign, space or other script).
    """

    def __init__(self, *, in_query: bool = False, **kwargs):
        self.in_query = in_query
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if self.in_query and isinstance(data, str) and _ASCII_DIGITS.fullmatch(data):
            data = int(data)
        if type(data) is not int:  # bool is a subclass of int; a float or a string is refused
            self.fail("invalid")
        return super().to_internal_value(data)


class MinorUnitsField(JsonIntegerField):
    """A positive amount in the asset's minor units, as a JSON integer."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 10**18)
        kwargs.setdefault("help_text", "Integer minor units (10050 USD is 100.50)")
        super().__init__(**kwargs)


class ErrorSerializer(serializers.Serializer):
    """The body of every error response (API.md)."""

    error = serializers.CharField(help_text="Stable code, e.g. INSUFFICIENT_FUNDS")
    message = serializers.CharField()
    details = serializers.DictField(help_text="Field errors or facts about the refusal")


def idempotent_response(request, handler: Callable[[], tuple[int, Any]]) -> Response:
    """Answer a money-moving POST once per Idempotency-Key: the same key and body get the first
    status and body again; the same key with another body is 409 IDEMPOTENCY_KEY_REUSED."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        # Still one transaction (with the services' retries): a limit check after the
        # movement must be able to undo it.
        status_code, body = store.command(handler)()
        return Response(body, status=status_code)
    result = run_idempotent(
        scope=str(request.user.uuid),
        key=key,
        fingerprint=request_fingerprint(
            {"method": request.method, "path": request.path, "body": request.data}
        ),
        handler=handler,
    )
    response = Response(result.body, status=result.status_code)
    if result.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


@functools.cache
def page_of(serializer_class: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The schema of one page of a list: {count, next, previous, results: [...]}."""
    name = serializer_class.__name__.removesuffix("Serializer") + "PageSerializer"
    return type(
        name,
        (serializers.Serializer,),
        {
            "__module__": serializer_class.__module__,
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception):
    """404 for paths nothing answers: the API's error body under /api/, the usual page elsewhere."""
    if _is_api(request):
        return JsonResponse(error_body("NOT_FOUND", _MESSAGES["NOT_FOUND"]), status=404)
    return page_not_found(request, exception)


def bad_request_error(request, exception):
    """400 for what Django refuses before any view (e.g. a SuspiciousOperation)."""
    if _is_api(request):
        body = error_body("VALIDATION_ERROR", _MESSAGES["VALIDATION_ERROR"])
        return JsonResponse(body, status=400)
    return bad_request(request, exception)


def server_error_response(request):
    """500: the error body under /api/ (a client parses JSON), the usual page elsewhere."""
    if _is_api(request):
        return JsonResponse(error_body("SERVER_ERROR", _MESSAGES["SERVER_ERROR"]), status=500)
    return server_error(request)


class StandardPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_cache() -> str:
    cache.set("healthz", "ok", 5)
    if cache.get("healthz") != "ok":
        raise RuntimeError("cache did not return what was stored")
    if getattr(cache, "degraded", False):  # apps.core.cache: answered by the fallback
        raise RuntimeError("Redis is unreachable; the per-process fallback cache answers")
    return "ok"


def _check_broker() -> str:
    from finaegis.celery import app

    if app.conf.task_always_eager:
        return "eager"
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "ok"


# The cache and broker checks run here, each bounded by the probe's deadline: a Redis outage
# makes their clients wait seconds, and load balancers give up on a probe after one or two.
_HEALTH_CHECKS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="healthz")


def _outcome(name: str, answer: Callable[[], str]) -> str:
    try:
        return answer()
    except FutureTimeout:
        logger.warning("health check %s timed out", name)
        return "error: timeout"
    except Exception as exc:  # any failure of a dependency is a failed check, not a 500
        logger.warning("health check %s failed: %s", name, exc)
        return f"error: {type(exc).__name__}"


def healthz(request):
    """Liveness and readiness: 200 when database, cache and broker answer within
    HEALTHZ_TIMEOUT_SECONDS, else 503."""
    deadline = time.monotonic() + settings.HEALTHZ_TIMEOUT_SECONDS
    remote = {
        name: _HEALTH_CHECKS.submit(check)
        for name, check in (
            ("cache", _check_cache),
            ("broker", _check_broker),
        )
    }
    checks = {"database": _outcome("database", _check_database)}  # this request's connection
    for name, future in remote.items():
        left = max(0.0, deadline - time.monotonic())
        checks[name] = _outcome(name, functools.partial(future.result, timeout=left))
    healthy = all(not outcome.startswith("error") for outcome in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=status.HTTP_200_OK if healthy else status.HTTP_503_SERVICE_UNAVAILABLE,
    )
