"""Tamper evidence of the event store: TRUNCATE is refused, `verify_events` names each broken
aggregate once, and a signed checkpoint shows what went backwards since it was taken."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from apps.core.models import AggregateStream, event_models
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


def _rewind_to(aggregate_uuid, version: int) -> None:
    """Delete an aggregate's events after `version` and point its head at the new last event:
    what someone holding EVENT_HASH_KEY and database access leaves behind; the chains verify."""
    _tamper(
        "DELETE FROM {table} WHERE aggregate_uuid = %s AND aggregate_version > %s",
        [aggregate_uuid.hex if connection.vendor == "sqlite" else str(aggregate_uuid), version],
    )
    last = TallyEvent.objects.get(aggregate_uuid=aggregate_uuid, aggregate_version=version)
    AggregateStream.objects.filter(uuid=aggregate_uuid).update(version=version, last_hash=last.hash)


def test_a_checkpoint_followed_by_honest_writes_verifies(tmp_path, capsys):
    tally = tally_open(name="growing")
    path = tmp_path / "checkpoints.jsonl"
    call_command("checkpoint_events", out=path)
    tally_increment(tally_uuid=tally.uuid, amount=5)
    tally_open(name="newcomer")
    call_command("checkpoint_events", out=path)
    tally_increment(tally_uuid=tally.uuid, amount=6)

    call_command("verify_events", checkpoint=path)
    assert "All event chains verify" in capsys.readouterr().out
    assert len(path.read_text().splitlines()) == 2


def test_a_rewound_aggregate_verifies_alone_but_not_against_the_checkpoint(tmp_path, capsys):
    honest = tally_open(name="honest")
    victim = tally_open(name="victim")
    for amount in (1, 2, 3):
        tally_increment(tally_uuid=victim.uuid, amount=amount)
    path = tmp_path / "checkpoints.jsonl"
    call_command("checkpoint_events", out=path)
    _rewind_to(victim.uuid, 2)

    call_command("verify_events")  # the chains alone cannot tell
    assert "All event chains verify" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_events", checkpoint=path)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert f"aggregate {victim.uuid}: stream head went back from version 4 to 2" in err
    assert f"{TallyEvent._meta.db_table}: 2 event(s) up to id" in err
    assert str(honest.uuid) not in err


def test_an_edited_checkpoint_does_not_verify(tmp_path, capsys):
    """Whoever rewinds the store cannot also lower the head in the operator's copy."""
    victim = tally_open(name="victim")
    tally_increment(tally_uuid=victim.uuid, amount=1)
    path = tmp_path / "checkpoints.jsonl"
    call_command("checkpoint_events", out=path)
    checkpoint = json.loads(path.read_text())
    checkpoint["heads"][str(victim.uuid)][0] = 1
    path.write_text(json.dumps(checkpoint) + "\n")

    with pytest.raises(SystemExit):
        call_command("verify_events", checkpoint=path)
    assert "checkpoint: signature does not verify" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("", "holds no checkpoint"),
        ("not json\n", "is not JSON"),
        ('{"heads": {}}\n', "is not a checkpoint"),
    ],
)
def test_an_unreadable_checkpoint_file_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "checkpoints.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CommandError, match=message):
        call_command("verify_events", checkpoint=path)
