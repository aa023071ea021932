"""Real Celery workers on Redis run custodian withdrawals against the test database.

A worker is started as a subprocess (`celery -A finaegis worker`) with DATABASE_URL pointing at
pytest-django's test database and REDIS_URL at the suite's Redis, consuming a queue of its own.
The tests commit (transaction=True), so the worker sees the rows. Every wait is bounded and every
worker is killed at the end, whatever happened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.accounts.reconciliation import ledger_reconcile
from apps.accounts.selectors import balances_by_asset
from apps.accounts.services import account_open
from apps.core.seeding import seed_reference_data
from apps.custodians.models import MockBankTransaction
from apps.custodians.registry import connector_for
from apps.custodians.services import custodian_reconcile, custodian_withdrawal_start
from apps.payments.services import deposit_create
from apps.workflows.faults import CRASH_EXIT_CODE
from apps.workflows.models import WorkflowEvent
from apps.workflows.selectors import workflow_lease_get, workflow_run_get, workflow_steps
from apps.workflows.services import workflow_resume_stale
from tests.workflows.support import set_eager

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(settings.BASE_DIR)
LEASE_SECONDS = 3
STARTUP_AND_RUN_TIMEOUT = 90
OMNIBUS = "FINAEGIS-OMNIBUS"


def _database_url() -> str:
    db = connection.settings_dict  # NAME is the test database now: test_<name>
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    def __init__(self, queue: str, log: Path, **env: str):
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "finaegis",
                "worker",
                "--pool",
                "solo",  # the task runs in the worker process itself: os._exit ends the worker
                "--queues",
                queue,
                "--hostname",
                f"{queue}-{uuid.uuid4().hex[:6]}@%h",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "INFO",
            ],
            cwd=BASE_DIR,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "tests.settings",
                "DEBUG": "1",
                "DATABASE_URL": _database_url(),
                "DATABASE_POOL": "0",
                "REDIS_URL": settings.REDIS_URL,
                "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
                "CELERY_TASK_ALWAYS_EAGER": "0",
                "WORKFLOW_QUEUE": queue,
                "WORKFLOW_LEASE_SECONDS": str(LEASE_SECONDS),
                "CUSTODIAN_RETRY_BASE_SECONDS": "0.01",
                "LOG_FORMAT": "plain",
                **env,
            },
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-6000:]

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not exit within {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture
def queue(settings):
    if not settings.REDIS_URL or settings.CELERY_BROKER_URL.startswith("memory"):
        message = "a real Celery worker needs REDIS_URL (a broker both processes reach)"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    name = f"test-workflows-{uuid.uuid4().hex[:8]}"
    settings.WORKFLOW_QUEUE = name  # where this process sends its dispatches
    previous = set_eager(False)
    yield name
    set_eager(previous)


@pytest.fixture
def workers(queue, tmp_path):
    started: list[Worker] = []

    def start(**env: str) -> Worker:
        worker = Worker(queue, tmp_path / f"worker-{len(started)}.log", **env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def customer_account():
    seed_reference_data()
    account = account_open(name="Payroll", owner_uuid=None)
    deposit_create(account_uuid=account.uuid, amount=500_000, asset_code="USD")
    connector_for().inner.fund(OMNIBUS, "USD", 500_000)
    return account


def wait_for_status(run_uuid, statuses, worker: Worker, timeout=STARTUP_AND_RUN_TIMEOUT) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = workflow_run_get(run_uuid).status
        if status in statuses:
            return status
        if worker.process.poll() is not None:
            pytest.fail(f"the worker exited ({worker.process.returncode}):\n{worker.log()}")
        time.sleep(0.2)
    pytest.fail(f"run {run_uuid} still {status} after {timeout} s:\n{worker.log()}")


def assert_books_agree():
    assert ledger_reconcile().clean
    (check,) = custodian_reconcile()
    assert check.reconciliation.clean, check.reconciliation.results


def test_a_worker_process_runs_a_custodian_withdrawal_end_to_end(customer_account, workers):
    worker = workers()
    run = custodian_withdrawal_start(
        account_uuid=customer_account.uuid,
        amount=120_000,
        asset_code="USD",
        destination="EXT-LANDLORD-1",
        reference="rent",
    )
    assert wait_for_status(run.uuid, {"completed", "compensated", "failed"}, worker) == (
        "completed"
    )
    assert balances_by_asset(customer_account.uuid) == {"USD": 380_000}
    tx = MockBankTransaction.objects.get()
    assert (tx.to_account, tx.amount, tx.status) == ("EXT-LANDLORD-1", 120_000, "completed")
    # written by the worker's task, not in this process
    actors = {
        e.meta_data["actor"]["id"]
        for e in WorkflowEvent.objects.filter(aggregate_uuid=run.uuid)[1:]
    }
    assert actors == {"workflows.advance"}
    assert "workflows.advance" in worker.log()
    assert_books_agree()


def test_a_worker_that_dies_mid_run_is_resumed_by_another_and_the_run_completes(
    customer_account, workers
):
    doomed = workers(WORKFLOW_CRASH_AFTER_STEP="custodians.withdrawal:send_at_custodian")
    run = custodian_withdrawal_start(
        account_uuid=customer_account.uuid,
        amount=70_000,
        asset_code="USD",
        destination="EXT-SUPPLIER-9",
    )
    assert doomed.wait_exit(STARTUP_AND_RUN_TIMEOUT) == CRASH_EXIT_CODE, doomed.log()
    # It died after the custodian paid and before the step was recorded.
    sent = MockBankTransaction.objects.get()
    assert sent.status == "completed"
    steps = {s.name: s.status for s in workflow_steps(run.uuid)}
    assert steps["debit_ledger"] == "completed" and steps["send_at_custodian"] == "started"
    lease = workflow_lease_get(run.uuid)
    assert lease.owner  # still held by the dead worker ...
    assert workflow_resume_stale() == []  # ... and not handed out while it may be valid

    survivor = workers()
    deadline = time.monotonic() + LEASE_SECONDS + 10
    resumed: list = []
    while not resumed and time.monotonic() < deadline:
        time.sleep(0.5)
        resumed = workflow_resume_stale()  # what beat runs every minute
    assert resumed == [run.uuid], f"lease until {lease.locked_until}, now {timezone.now()}"
    assert wait_for_status(run.uuid, {"completed", "compensated", "failed"}, survivor) in (
        "completed",
        "compensated",
    )
    assert workflow_run_get(run.uuid).status == "completed"
    # the survivor sent the same transfer again: the custodian found it by its reference
    assert MockBankTransaction.objects.get().transaction_id == sent.transaction_id
    assert balances_by_asset(customer_account.uuid) == {"USD": 430_000}
    assert_books_agree()
