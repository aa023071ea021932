"""With Redis stopped, money still moves; work for the broker waits; both recover with Redis.

PostgreSQL pass. Each test runs its own `redis-server` (tests/reliability/conftest.py) as the
cache and the Celery broker, kills it in the middle and starts it again on the same port. The
cache falls back to a per-process one (apps.core.cache.FallbackRedisCache), so transfers through
the services and through the API, their throttles and operation limits included, do not fail;
a workflow started while the broker is down is recorded and left for resume_stale_workflows.
"""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection

from apps.accounts.selectors import balances_by_asset
from apps.accounts.services import account_open
from apps.assets.selectors import exchange_rate_get
from apps.assets.services import exchange_rate_record
from apps.core.seeding import seed_reference_data
from apps.custodians.models import MockBankTransaction
from apps.custodians.registry import connector_for
from apps.custodians.services import custodian_reconcile, custodian_withdrawal_start
from apps.payments.services import deposit_create, transfer_create
from apps.workflows.selectors import workflow_lease_get, workflow_run_get, workflow_steps
from apps.workflows.services import workflow_advance, workflow_resume_stale
from tests.api.conftest import client_for
from tests.factories import UserFactory
from tests.reliability.support import assert_ledger_whole
from tests.workflows.support import install_clock

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

OMNIBUS = "FINAEGIS-OMNIBUS"


def _messages(caplog, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


def _balance(api, account: str) -> int:
    response = api.get(f"/api/v1/accounts/{account}/balances")
    assert response.status_code == 200, response.content[:500]
    return next((b["balance"] for b in response.json() if b["asset_code"] == "USD"), 0)


def _api_transfer(api, source: str, target: str, amount: int, key: str):
    return api.post(
        "/api/v1/transfers",
        {"from_account": source, "to_account": target, "amount": amount, "asset_code": "USD"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def test_money_moves_while_redis_is_down_and_the_cache_goes_back_to_redis(on_private_redis, caplog):
    assert connection.vendor == "postgresql"
    redis_server = on_private_redis
    caplog.set_level(logging.INFO, logger="apps.core.cache")
    seed_reference_data()
    alice = UserFactory()
    api = client_for(alice)
    source = api.post("/api/v1/accounts", {"name": "Main"}, format="json").json()["uuid"]
    target = account_open(name="Savings", owner_uuid=alice.uuid).uuid
    deposit_create(account_uuid=uuid.UUID(source), amount=100_000, asset_code="USD")
    connector_for().inner.fund(OMNIBUS, "USD", 100_000)
    assert api.get(f"/api/v1/accounts/{source}").status_code == 200
    assert redis_server.client().dbsize() > 0  # the cache really is this Redis

    redis_server.stop()

    # Through the service layer: asset lookups miss Redis and fall back.
    moved = transfer_create(
        from_account=uuid.UUID(source), to_account=target, amount=1_000, asset_code="USD"
    )
    assert moved.status == "completed"
    assert cache.degraded
    # Through the API: authentication, throttles, operation limits, idempotency, the transfer.
    response = _api_transfer(api, source, str(target), 2_000, "while-down")
    assert response.status_code == 201, response.content[:500]
    replay = _api_transfer(api, source, str(target), 2_000, "while-down")
    assert (replay.status_code, replay.json()) == (201, response.json())
    assert replay["Idempotent-Replayed"] == "true"
    # A withdrawal is a workflow: it is accepted and recorded; its run waits for the broker.
    withdrawal = api.post(
        f"/api/v1/accounts/{source}/withdraw", {"amount": 500, "asset_code": "USD"}, format="json"
    )
    assert withdrawal.status_code == 202, withdrawal.content[:500]
    assert withdrawal.json()["status"] == "pending"
    assert _balance(api, source) == 100_000 - 1_000 - 2_000
    history = api.get(f"/api/v1/accounts/{source}/transactions")
    assert history.status_code == 200 and history.json()["count"] == 3
    # Readiness tells the truth: the cache is degraded and the broker unreachable.
    health = api.get("/healthz")
    assert health.status_code == 503
    checks = health.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["cache"].startswith("error") and checks["broker"].startswith("error"), checks
    down = [m for m in _messages(caplog, "apps.core.cache") if "unreachable" in m]
    assert len(down) == 1, down  # one warning for the outage, not one per call

    redis_server.start()  # empty, on the same port

    response = _api_transfer(api, source, str(target), 3_000, "after")
    assert response.status_code == 201, response.content[:500]
    assert not cache.degraded
    assert redis_server.client().dbsize() > 0  # the cache writes to Redis again
    assert any("answers again" in m for m in _messages(caplog, "apps.core.cache"))
    assert api.get("/healthz").status_code == 200
    assert _balance(api, source) == 100_000 - 1_000 - 2_000 - 3_000
    assert balances_by_asset(target) == {"USD": 6_000}
    assert_ledger_whole()


def test_a_rate_recorded_while_redis_is_down_is_not_hidden_by_the_copy_redis_kept(
    on_private_redis,
):
    redis_server = on_private_redis
    seed_reference_data()
    owner = UserFactory()
    euros = account_open(name="EUR", owner_uuid=owner.uuid).uuid
    dollars = account_open(name="USD", owner_uuid=owner.uuid).uuid
    deposit_create(account_uuid=euros, amount=10_000, asset_code="EUR")
    old = exchange_rate_get("EUR", "USD")  # cached in Redis under the current rates version
    assert old.rate != Decimal("1.085")
    redis_server.client().save()  # Redis keeps that copy through the outage

    redis_server.stop()

    # The new rate's invalidation can only reach the fallback; lookups see it at once.
    # a small move: within the band, and no cycle through the other demo rates gains
    exchange_rate_record(from_code="EUR", to_code="USD", rate=Decimal("1.085"))
    assert exchange_rate_get("EUR", "USD").rate == Decimal("1.085")

    redis_server.start()  # with the old version token and the old quote
    assert redis_server.client().dbsize() > 0

    # Back on Redis, the keys written during the outage were dropped there first, so the old
    # copy is not served again: money converts at the new rate.
    assert exchange_rate_get("EUR", "USD").rate == Decimal("1.085")
    assert not cache.degraded
    moved = transfer_create(
        from_account=euros,
        to_account=dollars,
        amount=1_000,
        asset_code="EUR",
        to_asset_code="USD",
    )
    # 10.00 EUR at the bid, 1.085 less the 25 bps half spread: 10.822875 USD, rounded down
    assert (moved.amount, moved.to_amount) == (1_000, 1_082)
    assert balances_by_asset(dollars) == {"USD": 1_082}
    assert_ledger_whole()


def test_a_workflow_started_while_the_broker_is_down_waits_and_resumes_when_it_is_back(
    on_private_redis, settings, monkeypatch, caplog
):
    redis_server = on_private_redis
    clock = install_clock(monkeypatch)
    settings.WORKFLOW_QUEUE = "reliability-workflows"
    settings.CUSTODIAN_RETRY = {"attempts": 3, "base_delay": 0.0, "max_delay": 0.0}
    seed_reference_data()
    account = account_open(name="Payroll", owner_uuid=UserFactory().uuid)
    deposit_create(account_uuid=account.uuid, amount=500_000, asset_code="USD")
    connector_for().inner.fund(OMNIBUS, "USD", 500_000)

    redis_server.stop()

    # The run is recorded; handing it to a worker fails, and says so, with the way out.
    run = custodian_withdrawal_start(
        account_uuid=account.uuid, amount=120_000, asset_code="USD", destination="EXT-RENT-1"
    )
    warnings = [m for m in _messages(caplog, "apps.workflows.services") if str(run.uuid) in m]
    assert len(warnings) == 1 and "broker is unreachable" in warnings[0], warnings
    assert "resume_stale_workflows" in warnings[0]
    # Nothing happened yet, and nothing is lost: the run is due, and nobody holds it.
    assert workflow_run_get(run.uuid).status == "running"
    assert all(step.status == "pending" for step in workflow_steps(run.uuid))
    lease = workflow_lease_get(run.uuid)
    assert lease.owner == "" and lease.due_at is not None
    assert balances_by_asset(account.uuid) == {"USD": 500_000}
    assert not MockBankTransaction.objects.exists()

    redis_server.start()

    # What beat runs every minute hands the run out again once it is overdue ...
    assert workflow_resume_stale() == []
    clock.advance(settings.WORKFLOW_STALE_AFTER_SECONDS + 1)
    assert workflow_resume_stale() == [run.uuid]
    # ... and this time the message reaches the broker's queue.
    assert redis_server.client().llen(settings.WORKFLOW_QUEUE) == 1
    # A worker taking it runs the withdrawal to the end.
    assert workflow_advance(run_uuid=run.uuid) == "completed"
    assert balances_by_asset(account.uuid) == {"USD": 380_000}
    sent = MockBankTransaction.objects.get()
    assert (sent.to_account, sent.amount, sent.status) == ("EXT-RENT-1", 120_000, "completed")
    assert_ledger_whole()
    (check,) = custodian_reconcile()
    assert check.reconciliation.clean, check.reconciliation.results
