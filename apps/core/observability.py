"""Observability: structured JSON logs and Prometheus metrics.

- `JsonFormatter` writes each log record as one JSON object per line, carrying the request id,
  correlation id and actor of the command context it was logged in.
- `MetricsMiddleware` counts and times every HTTP request by URL pattern (never the raw path,
  so the number of series stays bounded).
- `metrics` serves the Prometheus text exposition at `/metrics`, to loopback callers and to
  callers that present `Authorization: Bearer <METRICS_TOKEN>`.

Several processes (gunicorn workers): set PROMETHEUS_MULTIPROC_DIR to an existing, empty
directory before the processes start; each one then writes its samples there and `/metrics`
merges them with `MultiProcessCollector`.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.utils.functional import LazyObject, empty
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from apps.core.context import current_context, user_actor
from apps.core.middleware import _incoming_id

# --- structured logs -------------------------------------------------------------------------

ANONYMOUS_ACTOR = {"type": "anonymous", "id": "anonymous"}

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", (), None).__dict__
) | {"message", "asctime", "taskName"}


def _request_actor(request: HttpRequest) -> dict[str, Any] | None:
    """The caller of `request`, without ever querying the database from inside a log call.

    A request's user is a lazy object until something (DRF, a view) asks for it; resolving it
    here would read the session in the middle of logging, so until then the actor is left out.
    """
    user = getattr(request, "user", None)
    if isinstance(user, LazyObject) and user._wrapped is empty:
        return None
    if user is not None and user.is_authenticated:
        return user_actor(user)
    return ANONYMOUS_ACTOR


def _log_context(record: logging.LogRecord) -> dict[str, Any]:
    """request_id, correlation_id and actor of the command context the record was logged in.

    Django logs a 4xx/5xx response (`django.request`) after every middleware has returned, so
    the context is closed by then; such records carry the request itself, which still tells.
    """
    ctx = current_context()
    request = ctx.request
    if request is None and isinstance(getattr(record, "request", None), HttpRequest):
        request = record.request
    request_id = ctx.request_id or getattr(request, "request_id", None)
    correlation_id = ctx.correlation_id
    if correlation_id is None and request is not None and request_id:
        correlation_id = _incoming_id(request, "X-Correlation-ID") or request_id
    actor = ctx.actor
    if actor is None and request is not None:
        try:
            actor = _request_actor(request)
        except Exception:  # a log line must never fail because the caller cannot be described
            actor = None
    found = {"request_id": request_id, "correlation_id": correlation_id, "actor": actor}
    return {key: value for key, value in found.items() if value}


def _serialisable(value: Any) -> bool:
    """Whether `value` has a JSON text (Django's encoder: also UUID, Decimal, datetime)."""
    try:
        json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp (ISO 8601, UTC), level, logger, message; then the
    request_id, correlation_id and actor of the current command context when one is open; then
    `exc_info` / `stack_info` as text; then every JSON-serialisable `extra=` field (fields that
    are not serialisable, such as Django's `request`, are left out; none overrides the above)."""

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, tz=UTC)
        payload: dict[str, Any] = {
            "timestamp": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update(_log_context(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exc_info"] = record.exc_text
        if record.stack_info:
            payload["stack_info"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key in _RECORD_ATTRIBUTES or key in payload or key.startswith("_"):
                continue
            if _serialisable(value):
                payload[key] = value
        return json.dumps(payload, cls=DjangoJSONEncoder)


# --- metrics ---------------------------------------------------------------------------------

http_requests_total = Counter(
    "finaegis_http_requests",
    "HTTP requests answered, by method, URL pattern and status code.",
    ["method", "route", "status"],
)
http_request_duration_seconds = Histogram(
    "finaegis_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and URL pattern.",
    ["method", "route"],
)
money_movements_total = Counter(
    "finaegis_money_movements",
    "Committed money movements (journal entries and reversals), by kind and asset.",
    ["kind", "asset"],
)
money_moved_minor_units_total = Counter(
    "finaegis_money_moved_minor_units",
    "Amount moved by committed movements, in the asset's minor units, by kind and asset.",
    ["kind", "asset"],
)

# Any other method a client sends is one label value, so it cannot add series.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
UNMATCHED_ROUTE = "unmatched"


def _route(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return UNMATCHED_ROUTE
    return match.route


class MetricsMiddleware:
    """Counts and times each request under its URL pattern, never its raw path.

    The pattern is e.g. `api/v1/accounts/<uuid:account_uuid>`; a path that matches none counts
    as `unmatched`.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        method = request.method if request.method in _KNOWN_METHODS else "other"
        route = _route(request)
        http_requests_total.labels(
            method=method, route=route, status=str(response.status_code)
        ).inc()
        http_request_duration_seconds.labels(method=method, route=route).observe(elapsed)
        return response


def _is_loopback(request: HttpRequest) -> bool:
    # A proxy on the same host forwards outside callers from a loopback address; it says so in
    # X-Forwarded-For / Forwarded, and then the address proves nothing.
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _has_token(request: HttpRequest) -> bool:
    token = getattr(settings, "METRICS_TOKEN", "")
    if not token:
        return False
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


def metrics_registry() -> CollectorRegistry:
    """The registry to expose: this process's, or every worker's when multiprocess is on."""
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not multiproc_dir:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=multiproc_dir)
    return registry


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition; loopback callers or `Authorization: Bearer <METRICS_TOKEN>`."""
    if not (_has_token(request) or _is_loopback(request)):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
