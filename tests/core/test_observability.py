"""Structured logs and Prometheus metrics: the formatter, /metrics and the money counters."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils.functional import SimpleLazyObject
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY

from apps.accounts.services import account_freeze, account_open
from apps.core.context import command_context
from apps.core.errors import AccountFrozen, DomainError
from apps.core.observability import JsonFormatter
from apps.core.seeding import seed_reference_data
from apps.payments.services import (
    TransferRequest,
    deposit_create,
    transfer_bulk_create,
    transfer_create,
    transfer_reverse,
)
from tests.factories import UserFactory

BASE_DIR = Path(__file__).resolve().parents[2]


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _moved(kind: str, asset: str) -> tuple[float, float]:
    labels = {"kind": kind, "asset": asset}
    return (
        _sample("finaegis_money_movements_total", **labels),
        _sample("finaegis_money_moved_minor_units_total", **labels),
    )


@pytest.fixture
def json_lines():
    """Records of the `django.request` and `obs.test` loggers, formatted as they are emitted."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger("django.request"), logging.getLogger("obs.test")]
    for logger in loggers:
        logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for logger in loggers:
        logger.removeHandler(handler)


# --- structured logs -------------------------------------------------------------------------


def _format(name: str, lvl: int, msg: str, *args, exc_info=None, **extra) -> dict:
    record = logging.getLogger(name).makeRecord(
        name, lvl, __file__, 1, msg, args, exc_info, extra=extra or None
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    return json.loads(line)


def test_json_formatter_writes_the_base_fields_and_serialisable_extras():
    entry_uuid = uuid.uuid4()
    out = _format(
        "obs.test",
        logging.WARNING,
        "moved %s\nsecond line",
        42,
        amount=1250,
        entry=entry_uuid,
        request=object(),
    )
    assert out["level"] == "WARNING"
    assert out["logger"] == "obs.test"
    assert out["message"] == "moved 42\nsecond line"
    assert out["timestamp"].endswith("Z") and "T" in out["timestamp"]
    assert out["amount"] == 1250
    assert out["entry"] == str(entry_uuid)
    assert "request" not in out  # not JSON-serialisable: left out, the line still parses
    assert "request_id" not in out and "actor" not in out  # no context is open


def test_json_formatter_carries_the_context_and_the_exception():
    try:
        raise ValueError("bad amount")
    except ValueError:
        exc_info = sys.exc_info()
    actor = {"type": "task", "id": "payments.settle"}
    with command_context(actor=actor, request_id="req-1", correlation_id="corr-1"):
        out = _format("obs.test", logging.ERROR, "failed", exc_info=exc_info, level="spoofed")
    assert out["request_id"] == "req-1"
    assert out["correlation_id"] == "corr-1"
    assert out["actor"] == actor
    assert out["level"] == "ERROR"  # an extra field never overrides a base field
    assert "Traceback" in out["exc_info"] and "ValueError: bad amount" in out["exc_info"]


@pytest.mark.django_db
def test_a_log_line_written_during_a_request_carries_its_request_id(client, json_lines):
    response = client.get(
        "/no-such-page", HTTP_X_REQUEST_ID="obs-req-7", HTTP_X_CORRELATION_ID="obs-corr-7"
    )
    assert response.status_code == 404
    (line,) = [entry for entry in json_lines() if entry["logger"] == "django.request"]
    assert line["level"] == "WARNING"
    assert line["message"] == "Not Found: /no-such-page"
    assert line["request_id"] == "obs-req-7" == response["X-Request-ID"]
    assert line["correlation_id"] == "obs-corr-7"
    assert line["status_code"] == 404
    assert "request" not in line


def test_the_actor_is_logged_once_the_caller_is_known(rf):
    lookups = []  # Django's lazy user reads the session (a query) when first touched
    request = rf.get("/")
    request.user = SimpleLazyObject(lambda: lookups.append("session") or AnonymousUser())
    with command_context(request=request, request_id="req-2"):
        unresolved = _format("obs.test", logging.INFO, "before authentication")
        assert lookups == []  # logging did not resolve the caller
        assert not request.user.is_authenticated  # what DRF does when it authenticates
        resolved = _format("obs.test", logging.INFO, "after authentication")
    assert "actor" not in unresolved
    assert resolved["actor"] == {"type": "anonymous", "id": "anonymous"}
    assert resolved["request_id"] == unresolved["request_id"] == "req-2"


@pytest.mark.django_db
def test_an_authenticated_caller_is_logged_by_uuid(rf):
    user = UserFactory()
    request = rf.get("/")
    request.user = user
    with command_context(request=request, request_id="req-3"):
        out = _format("obs.test", logging.INFO, "hello")
    assert out["actor"] == {"type": "user", "id": str(user.uuid)}


@pytest.mark.parametrize(("log_format", "formatter"), [(None, "json"), ("plain", "plain")])
def test_log_format_chooses_the_console_formatter(log_format, formatter):
    env = {k: v for k, v in os.environ.items() if k != "LOG_FORMAT"}
    env["DEBUG"] = "1"
    if log_format:
        env["LOG_FORMAT"] = log_format
    code = "import finaegis.settings as s; print(s.LOGGING['handlers']['console']['formatter'])"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == formatter


# --- /metrics --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_counts_requests_by_url_pattern(client):
    labels = {"method": "GET", "route": "healthz", "status": "200"}
    before = _sample("finaegis_http_requests_total", **labels)
    timed_before = _sample(
        "finaegis_http_request_duration_seconds_count", method="GET", route="healthz"
    )
    assert client.get("/healthz").status_code == 200
    client.get("/no-such-page/zq-unlabelled-path")

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"] == CONTENT_TYPE_LATEST
    text = response.content.decode()
    assert 'finaegis_http_requests_total{method="GET",route="healthz",status="200"}' in text
    assert 'route="unmatched",status="404"' in text
    assert "zq-unlabelled-path" not in text  # the raw path never becomes a label
    assert _sample("finaegis_http_requests_total", **labels) == before + 1
    assert (
        _sample("finaegis_http_request_duration_seconds_count", method="GET", route="healthz")
        == timed_before + 1
    )


@pytest.mark.django_db
def test_an_unknown_method_is_one_label_value(client):
    labels = {"method": "other", "route": "healthz", "status": "200"}
    before = _sample("finaegis_http_requests_total", **labels)
    assert client.generic("BREW", "/healthz").status_code == 200
    assert _sample("finaegis_http_requests_total", **labels) == before + 1
    assert 'method="BREW"' not in client.get("/metrics").content.decode()


@pytest.mark.django_db
def test_metrics_from_elsewhere_need_the_bearer_token(client, settings):
    settings.METRICS_TOKEN = ""
    remote = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", **remote).status_code == 403
    # An empty token configured never matches an empty bearer.
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ", **remote).status_code == 403

    settings.METRICS_TOKEN = "s3cret-metrics-token"
    assert client.get("/metrics", **remote).status_code == 403
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope", **remote)
    assert wrong.status_code == 403
    basic = client.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-metrics-token", **remote)
    assert basic.status_code == 403
    right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token", **remote)
    assert right.status_code == 200
    assert b"finaegis_http_requests_total" in right.content


@pytest.mark.django_db
def test_loopback_is_trusted_unless_a_proxy_forwarded_the_request(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.5").status_code == 200
    proxied = client.get("/metrics", HTTP_X_FORWARDED_FOR="198.51.100.4")
    assert proxied.status_code == 403
    assert client.post("/metrics").status_code == 405


@pytest.mark.django_db
def test_multiprocess_mode_merges_every_process(client, tmp_path, monkeypatch):
    """With PROMETHEUS_MULTIPROC_DIR each process writes its samples there; /metrics merges."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    worker = (
        "from prometheus_client import Counter\n"
        "Counter('finaegis_probe', 'probe', ['worker']).labels(worker='w').inc(3)\n"
    )
    for _ in range(2):  # two "workers", two files
        subprocess.run([sys.executable, "-c", worker], env=env, check=True)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    response = client.get("/metrics")
    assert response.status_code == 200
    assert 'finaegis_probe_total{worker="w"} 6.0' in response.content.decode()


# --- money counters --------------------------------------------------------------------------


@pytest.fixture
def account(db):
    seed_reference_data()
    return account_open(name="Observed", owner_uuid=None)


def test_a_committed_deposit_is_counted(account, django_capture_on_commit_callbacks):
    count, amount = _moved("deposit", "USD")
    with django_capture_on_commit_callbacks(execute=True):
        deposit_create(account_uuid=account.uuid, amount=12_345, asset_code="USD")
    assert _moved("deposit", "USD") == (count + 1, amount + 12_345)


def test_nothing_is_counted_before_commit(account, django_capture_on_commit_callbacks):
    before = _moved("deposit", "USD")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        deposit_create(account_uuid=account.uuid, amount=500, asset_code="USD")
    assert callbacks  # the reactors wait for the commit ...
    assert _moved("deposit", "USD") == before  # ... which a test transaction never reaches


def test_a_refused_deposit_counts_nothing(account, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        account_freeze(account_uuid=account.uuid, reason="investigation")
    before = _moved("deposit", "USD")
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(AccountFrozen),
    ):
        deposit_create(account_uuid=account.uuid, amount=700, asset_code="USD")
    assert callbacks == []
    assert _moved("deposit", "USD") == before


def test_a_rolled_back_transfer_counts_nothing(account, django_capture_on_commit_callbacks):
    """In an all-or-nothing batch, the first transfer was stored, then rolled back."""
    other = account_open(name="Other", owner_uuid=None)
    with django_capture_on_commit_callbacks(execute=True):
        deposit_create(account_uuid=account.uuid, amount=1_000, asset_code="EUR")
    before = _moved("transfer", "EUR")
    batch = [
        TransferRequest(account.uuid, other.uuid, 600, "EUR"),
        TransferRequest(account.uuid, other.uuid, 600, "EUR"),  # insufficient funds
    ]
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(DomainError):
        transfer_bulk_create(transfers=batch, atomic=True)
    assert _moved("transfer", "EUR") == before


def test_transfers_and_reversals_are_counted(account, django_capture_on_commit_callbacks):
    other = account_open(name="Other", owner_uuid=None)
    transfers, reversals = _moved("transfer", "GBP"), _moved("reversal", "GBP")
    with django_capture_on_commit_callbacks(execute=True):
        deposit_create(account_uuid=account.uuid, amount=5_000, asset_code="GBP")
        sent = transfer_create(
            from_account=account.uuid, to_account=other.uuid, amount=1_999, asset_code="GBP"
        )
    assert _moved("transfer", "GBP") == (transfers[0] + 1, transfers[1] + 1_999)
    with django_capture_on_commit_callbacks(execute=True):
        transfer_reverse(transfer_uuid=sent.uuid, reason="wrong account")
    assert _moved("reversal", "GBP") == (reversals[0] + 1, reversals[1] + 1_999)
