"""verify_events catches a row changed behind the triggers' back and names it."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from apps.core.migration_operations import append_only_sql, drop_append_only_sql
from tests.eventstore_app.models import TallyEvent
from tests.eventstore_app.services import tally_increment, tally_open

pytestmark = pytest.mark.django_db


def _tamper(sql: str, params: list) -> None:
    """Change a stored event the way an intruder with database access would: triggers off."""
    table = TallyEvent._meta.db_table
    with connection.cursor() as cursor:
        for statement in drop_append_only_sql(connection.vendor, table):
            cursor.execute(statement)
        cursor.execute(sql.format(table=connection.ops.quote_name(table)), params)
        for statement in append_only_sql(connection.vendor, table):
            cursor.execute(statement)


def test_verify_events_passes_on_an_untouched_store(capsys):
    tally = tally_open(name="clean")
    tally_increment(tally_uuid=tally.uuid, amount=2)
    call_command("verify_events")
    assert "All event chains verify" in capsys.readouterr().out


def test_verify_events_names_the_tampered_aggregate_and_version(capsys):
    honest = tally_open(name="honest")
    victim = tally_open(name="victim")
    for amount in (1, 2, 3):
        tally_increment(tally_uuid=honest.uuid, amount=amount)
        tally_increment(tally_uuid=victim.uuid, amount=amount)
    row = TallyEvent.objects.get(aggregate_uuid=victim.uuid, aggregate_version=3)
    _tamper(
        "UPDATE {table} SET event_data = %s WHERE id = %s",
        ['{"amount": 2000, "note": ""}', row.id],
    )

    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_events")
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert f"aggregate {victim.uuid} version 3" in err
    assert TallyEvent._meta.db_table in err
    assert str(honest.uuid) not in err


def test_verify_events_catches_a_forged_actor(capsys):
    tally = tally_open(name="audit")
    row = TallyEvent.objects.get(aggregate_uuid=tally.uuid, aggregate_version=1)
    _tamper(
        "UPDATE {table} SET meta_data = %s WHERE id = %s",
        ['{"actor": {"type": "staff", "id": "someone-else"}}', row.id],
    )
    with pytest.raises(SystemExit):
        call_command("verify_events")
    assert f"aggregate {tally.uuid} version 1: hash does not match" in capsys.readouterr().err


def test_verify_events_names_a_deleted_event_as_a_missing_version(capsys):
    tally = tally_open(name="gap")
    for amount in (1, 2):
        tally_increment(tally_uuid=tally.uuid, amount=amount)
    row = TallyEvent.objects.get(aggregate_uuid=tally.uuid, aggregate_version=2)
    _tamper("DELETE FROM {table} WHERE id = %s", [row.id])

    with pytest.raises(SystemExit):
        call_command("verify_events")
    assert f"aggregate {tally.uuid} version 2: version 2 is missing" in capsys.readouterr().err
