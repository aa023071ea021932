"""A database connection killed in the middle of a transfer leaves nothing half-written.

PostgreSQL only. The transfer runs in a worker thread (its own connection) and stops right
after its first INSERT into an event table, with stream heads already advanced inside its
transaction; another connection then ends that backend with `pg_terminate_backend`. The caller
must get a database error, the database must look exactly as before, and the same thread's next
transfer must go through on a fresh connection.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import InterfaceError, OperationalError, connection, connections

from apps.accounts.selectors import balances_by_asset
from apps.accounts.services import account_open
from apps.core.models import event_models
from apps.core.seeding import seed_reference_data
from apps.payments.models import Transfer
from apps.payments.services import deposit_create, transfer_create
from tests.factories import UserFactory
from tests.reliability.support import assert_ledger_whole, database_state

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WAIT = 30  # seconds: an upper bound for a step that takes milliseconds, never a measurement


class PauseAfterFirstEventInsert:
    """An execute wrapper: after the first INSERT into an event table it notes the backend's
    pid and blocks until released, holding the open transaction at that point."""

    def __init__(self) -> None:
        tables = "|".join(re.escape(model._meta.db_table) for model in event_models())
        self._event_insert = re.compile(rf'^\s*INSERT\s+INTO\s+"?({tables})"?', re.IGNORECASE)
        self.paused = threading.Event()
        self.release = threading.Event()
        self.pid: int | None = None
        self.table: str | None = None

    def __call__(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        match = self._event_insert.match(sql)
        if match and not self.paused.is_set():
            self.pid = context["connection"].connection.info.backend_pid
            self.table = match.group(1)
            self.paused.set()
            self.release.wait(WAIT)
        return result


def _transaction_id(pid: int) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT backend_xid FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return None if row is None else row[0]


def _terminate(pid: int) -> bool:
    """End the backend from this (another) connection; waits until it has exited."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s, %s)", [pid, WAIT * 1000])
        return cursor.fetchone()[0]


def test_a_transfer_whose_connection_is_killed_mid_transaction_leaves_nothing_behind():
    assert connection.vendor == "postgresql"
    seed_reference_data()
    owner = UserFactory()
    source = account_open(name="source", owner_uuid=owner.uuid).uuid
    target = account_open(name="target", owner_uuid=owner.uuid).uuid
    deposit_create(account_uuid=source, amount=10_000, asset_code="USD")
    before = database_state()
    pause = PauseAfterFirstEventInsert()

    def doomed_transfer():
        with connection.execute_wrapper(pause):
            return transfer_create(
                from_account=source, to_account=target, amount=2_500, asset_code="USD"
            )

    # One worker thread, so the retry below runs on the thread (and the Django connection
    # object) whose database connection was killed.
    with ThreadPoolExecutor(max_workers=1) as worker:
        try:
            attempt = worker.submit(doomed_transfer)
            assert pause.paused.wait(WAIT), "the transfer never reached an event INSERT"
            # Its transaction is open and has written: only a write takes a transaction id.
            assert _transaction_id(pause.pid) is not None
            assert _terminate(pause.pid)
            pause.release.set()
            error = attempt.exception(WAIT)

            # The caller is told, with a database error (not a domain refusal, not a result).
            assert isinstance(error, (OperationalError, InterfaceError)), repr(error)

            # Nothing of it was kept: no stream head moved, no event, no balance change, no
            # transfer row, in any table.
            assert database_state() == before
            assert not Transfer.objects.filter(kind="transfer").exists()
            assert balances_by_asset(source) == {"USD": 10_000}

            # The same thread's next transfer between the same accounts goes through: the dead
            # connection was dropped and a new one opened.
            retried = worker.submit(
                transfer_create,
                from_account=source,
                to_account=target,
                amount=2_500,
                asset_code="USD",
            ).result(WAIT)
        finally:
            pause.release.set()
            worker.submit(connections.close_all).result(WAIT)

    print(f"paused after the first INSERT into {pause.table}; the caller got {error!r}")
    assert retried.status == "completed"
    assert balances_by_asset(source) == {"USD": 7_500}
    assert balances_by_asset(target) == {"USD": 2_500}
    assert list(Transfer.objects.filter(kind="transfer").values_list("uuid", flat=True)) == [
        retried.uuid
    ]
    assert_ledger_whole()
