"""Tamper evidence of the event store: TRUNCATE is refused, and `verify_events` names each
broken aggregate once."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from apps.core.models import event_models
from tests.core.test_verify_events import _tamper
from tests.eventstore_app.models import TallyEvent
from tests.eventstore_app.services import tally_increment, tally_open

pytestmark = pytest.mark.django_db


def _event_tables() -> list[str]:
    return [model._meta.db_table for model in event_models()]


def test_every_app_with_events_is_covered():
    """The installed event tables include the test app's and the banking apps' own."""
    tables = set(_event_tables())
    assert {"eventstore_app_tallyevent", "accounts_accountevent", "payments_paymentevent"} <= tables


@pytest.mark.postgres
@pytest.mark.parametrize("table", _event_tables())
def test_truncate_of_an_event_table_is_refused_and_the_rows_remain(table):
    tally = tally_open(name="kept")
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{table}"')
        (before,) = cursor.fetchone()
        with pytest.raises(DatabaseError, match="append-only: TRUNCATE"), transaction.atomic():
            cursor.execute(f'TRUNCATE "{table}" CASCADE')
        cursor.execute(f'SELECT count(*) FROM "{table}"')
        assert cursor.fetchone() == (before,)
    assert TallyEvent.objects.filter(aggregate_uuid=tally.uuid).exists()


@pytest.mark.postgres
def test_truncate_of_all_event_tables_at_once_is_refused():
    tally_open(name="kept")
    tables = ", ".join(f'"{table}"' for table in _event_tables())
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"TRUNCATE {tables} CASCADE")
    assert TallyEvent.objects.count() == 1


def test_a_delete_without_where_is_refused_on_either_backend():
    """SQLite has no TRUNCATE; its bare DELETE fires the row trigger like any other."""
    tally_open(name="kept")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f'DELETE FROM "{TallyEvent._meta.db_table}"')
    assert TallyEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("sql", "version"),
    [
        ("UPDATE {table} SET event_data = %s WHERE id = %s", 3),
        ("DELETE FROM {table} WHERE id = %s", 3),
    ],
    ids=["forged-content", "deleted-event"],
)
def test_verify_events_reports_a_broken_aggregate_once(capsys, sql, version):
    victim = tally_open(name="victim")
    for amount in (1, 2, 3):
        tally_increment(tally_uuid=victim.uuid, amount=amount)
    row = TallyEvent.objects.get(aggregate_uuid=victim.uuid, aggregate_version=version)
    params = [row.id] if sql.startswith("DELETE") else ['{"amount": 9, "note": ""}', row.id]
    _tamper(sql, params)

    with pytest.raises(SystemExit):
        call_command("verify_events")
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if str(victim.uuid) in line]
    assert len(lines) == 1, err
    assert f"version {version}" in lines[0]
    assert "without a stream head" not in err
    assert "1 broken chain(s)." in err
