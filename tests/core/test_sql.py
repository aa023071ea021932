"""The set-wise SQL helpers adapt values exactly as Django's fields would."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db import connection

from apps.accounts.models import AccountBalance, Turnover
from apps.core import sql
from apps.core.models import AggregateStream
from apps.payments.models import Transfer

NOW = dt.datetime(2026, 11, 28, 12, 30, tzinfo=dt.UTC)
ROWS = [
    (
        Transfer,
        ("uuid", "kind", "status", "amount", "rate", "actor", "created_at", "reversal_forced"),
        (uuid.uuid4(), "transfer", Transfer.Status.COMPLETED, 2**40, Decimal("1.5"), {"id": 1},
         NOW, False),
    ),
    # Values of other types than the fast paths expect go Django's way.
    (
        Transfer,
        ("uuid", "kind", "amount", "created_at"),
        (str(uuid.uuid4()), 7, "12", dt.datetime(2026, 11, 28, 12, 30)),
    ),
    (AggregateStream, ("uuid", "version", "last_hash", "updated_at"), (uuid.uuid4(), 3, "ab", NOW)),
    (AccountBalance, ("account", "asset_code", "balance", "version"), (uuid.uuid4(), "USD", -5, 9)),
    (Turnover, ("day", "credit", "debit", "count"), (NOW.date(), 0, 2**62, 1)),
    (Transfer, ("rate", "to_amount"), (None, None)),
    (Transfer, ("from_account", "to_account", "rate"), (uuid.uuid4(), None, 0.25)),
    (Transfer, ("from_account", "to_account"), (str(uuid.uuid4()), "")),
    (Turnover, ("account", "day"), (uuid.uuid4(), NOW)),
]  # fmt: skip


def _meaning(value):
    """What a value means to the database: a JSON wrapper's object, else the value."""
    return getattr(value, "obj", value)


@pytest.mark.filterwarnings("ignore:DateTimeField .* received a naive datetime")
@pytest.mark.parametrize(("model", "names", "row"), ROWS)
def test_prepared_values_equal_djangos_own(model, names, row, db):
    fields = [model._meta.get_field(name) for name in names]
    expected = [
        field.get_db_prep_save(value, connection) for field, value in zip(fields, row, strict=True)
    ]
    (prepared,) = sql._prepared(model, names, [row])
    assert [type(v) for v in prepared] == [type(v) for v in expected]
    assert [_meaning(v) for v in prepared] == [_meaning(v) for v in expected]


def test_select_ranges_returns_each_range_in_order_with_orm_values(db):
    """Rows of several (key, version range) pairs in one statement, converted as the ORM
    converts them (a uuid is a UUID on SQLite too, a datetime is aware)."""
    streams = [uuid.uuid4() for _ in range(3)]
    for number, stream in enumerate(streams):
        AggregateStream.objects.create(
            uuid=stream, aggregate_type="tests.Tally", version=number, last_hash="h"
        )
    names = ("uuid", "version", "updated_at")
    ranges = {streams[0]: (0, 0), streams[2]: (1, 5), streams[1]: (2, 3)}  # the last: none
    rows = sql.select_ranges(AggregateStream, names, "uuid", "version", ranges)
    expected = list(
        AggregateStream.objects.filter(uuid__in=[streams[0], streams[2]])
        .order_by("uuid", "version")
        .values_list(*names)
    )
    assert rows == expected
    assert all(isinstance(row[0], uuid.UUID) and row[2].tzinfo is not None for row in rows)


def test_models_in_gives_what_the_orm_gives(db):
    """Instances with every field as the ORM loads it, saved state included (so a later save
    updates, not inserts), for a model with a foreign key, JSON and datetimes."""
    from apps.users.models import ApiToken
    from apps.users.services import token_create
    from tests.factories import UserFactory

    user = UserFactory()
    token = token_create(user=user, name="cli").token
    (loaded,) = sql.models_in(ApiToken, "key_hash", [token.key_hash])
    expected = ApiToken.objects.get(pk=token.pk)
    fields = [field.attname for field in ApiToken._meta.concrete_fields]
    assert [getattr(loaded, f) for f in fields] == [getattr(expected, f) for f in fields]
    assert not loaded._state.adding and loaded.user == user
    assert sql.models_in(ApiToken, "key_hash", ["no such hash"]) == []
    assert sql.models_in(ApiToken, "key_hash", []) == []


def test_select_after_pages_a_table_by_key_with_orm_values(db):
    """Keyset pages: the rows after a key, in key order, at most `limit`, converted as the ORM
    converts them (JSON documents decoded, datetimes aware, uuids as UUID on both backends)."""
    from apps.accounts.models import AccountEvent

    for number in range(5):
        AccountEvent.objects.create(
            aggregate_uuid=uuid.uuid4(),
            aggregate_version=0,
            event_type="tests.Page",
            event_data={"n": number, "big": 2**62},
            meta_data={"actor": {"id": "t"}},
            hash="h",
        )
    names = ("id", "aggregate_uuid", "event_data", "meta_data", "created_at")
    ordered = list(AccountEvent.objects.order_by("id").values_list(*names))
    first = sql.select_after(AccountEvent, names, "id", 0, 2)
    rest = sql.select_after(AccountEvent, names, "id", first[-1][0], 10)
    assert first == ordered[:2] and rest == ordered[2:]
    assert sql.select_after(AccountEvent, names, "id", ordered[-1][0], 10) == []
    assert rest[0][2] == {"n": 2, "big": 2**62} and rest[0][4].tzinfo is not None
