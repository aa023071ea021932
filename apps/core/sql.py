"""Set-wise writes in plain SQL for the hot paths: the event store and the ledger's projectors.

The ORM compiles every statement anew (a few tenths of a millisecond each) and writes row by
row; a transfer touches a dozen rows. These helpers write one statement per table per command
instead, with values adapted by the model's own fields, so SQLite and PostgreSQL each get the
representation they expect (a UUID is a uuid on one and 32 hex digits on the other).
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from psycopg import pq
from psycopg.adapt import Loader

M = TypeVar("M", bound=models.Model)


@contextmanager
def pipelined() -> Iterator[None]:
    """On PostgreSQL, send the statements of the block without waiting for each reply.

    psycopg queues them and syncs when a result is fetched or the block ends, so a run of writes
    costs one round trip. Only for statements whose row counts nobody reads: in a pipeline a
    count is not known until the sync (results that are fetched are fine).
    """
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


@contextmanager
def _reading() -> Iterator[Any]:
    """A cursor for the SELECTs below. On PostgreSQL its results come in binary, which psycopg
    loads in C for uuids, integers, numerics and timestamps instead of parsing their text; jsonb
    is handed on as text, as Django's own loader leaves it, for the fields' converters."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.cursor.format = pq.Format.BINARY
            cursor.cursor.adapters.register_loader("jsonb", _JsonbAsText)
        yield cursor


class _JsonbAsText(Loader):
    format = pq.Format.BINARY

    def load(self, data: Any) -> str:
        # jsonb's binary form is a version byte (1) and the document's text.
        return bytes(data[1:]).decode()


def _fields(model: type[models.Model], names: Sequence[str]) -> list[models.Field]:
    return [model._meta.get_field(name) for name in names]


@functools.cache
def column(model: type[models.Model], name: str) -> str:
    # Both backends quote identifiers the same way, so the result can be kept.
    return connection.ops.quote_name(model._meta.get_field(name).column)


@functools.cache
def table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _adapter(field: models.Field, db) -> Callable[[Any], Any]:
    """A function from a Python value to the field's database value, equal to
    `get_db_prep_save` but without its chain of calls for the types the hot paths write.

    The fast cases are exactly those where Django returns the value unchanged (or, for integers,
    wrapped in the backend's integer type). They are chosen by the field's exact class, so a
    subclass with its own preparation, and any other value, takes Django's own path.
    """
    slow = functools.partial(field.get_db_prep_save, connection=db)
    kind = type(field)
    if kind in (models.CharField, models.TextField):
        return lambda value: value if isinstance(value, str) else slow(value)
    if kind in _INTEGER_FIELDS:
        internal_type = field.get_internal_type()
        adapt = functools.partial(db.ops.adapt_integerfield_value, internal_type=internal_type)
        return lambda value: adapt(value) if type(value) is int else slow(value)
    if kind is models.ForeignKey:
        # Django leaves a key to the target field, after mapping None (and "" where the target
        # takes no empty strings) to NULL.
        target = _adapter(field.target_field, db)
        return lambda value: slow(value) if value is None or value == "" else target(value)
    if db.vendor != "postgresql":
        return slow
    # psycopg takes these types as they are, so PostgreSQL's operations return them unchanged.
    if kind is models.UUIDField:
        return lambda value: value if type(value) is uuid.UUID else slow(value)
    if kind is models.DateTimeField:
        return lambda value: value if _is_aware_datetime(value) else slow(value)
    if kind is models.DateField:
        return lambda value: value if type(value) is dt.date else slow(value)
    if kind is models.DecimalField:
        return lambda value: value if value is None or _is_finite_decimal(value) else slow(value)
    return slow


_INTEGER_FIELDS = (
    models.SmallIntegerField,
    models.IntegerField,
    models.BigIntegerField,
    models.PositiveSmallIntegerField,
    models.PositiveIntegerField,
    models.PositiveBigIntegerField,
)


def _is_aware_datetime(value: Any) -> bool:
    return isinstance(value, dt.datetime) and value.tzinfo is not None


def _is_finite_decimal(value: Any) -> bool:
    return type(value) is Decimal and value.is_finite()


@functools.lru_cache(maxsize=256)
def _adapters(model: type[models.Model], names: tuple[str, ...], vendor: str) -> list:
    # `vendor` is part of the key only. The adapters use the backend's operations, never its
    # connection, so the wrapper of whichever thread builds them serves every thread.
    db = connections[DEFAULT_DB_ALIAS]
    return [_adapter(field, db) for field in _fields(model, names)]


def _prepared(model: type[models.Model], names: tuple[str, ...], rows: Sequence[Sequence[Any]]):
    """Each row's values as the database takes them (see `_adapter`)."""
    adapters = _adapters(model, names, connection.vendor)
    return [[adapt(value) for adapt, value in zip(adapters, row, strict=True)] for row in rows]


# From this many rows on, PostgreSQL gets one array parameter per column, unnested into rows:
# the statement stays short and the same whatever the count, so psycopg parses no thousands of
# placeholders, and the 65,535-parameter limit never applies. The arrays travel in binary
# (`%b`), which spares escaping every element as text. Fewer rows go as VALUES, whose
# statements psycopg keeps parsed and whose scalars dump faster than arrays.
UNNEST_FROM_ROWS = 16


@functools.lru_cache(maxsize=1024)
def _insert_statement(
    model: type[models.Model], names: tuple[str, ...], rows: int, suffix: str, unnest: bool
) -> str:
    fields = _fields(model, names)
    columns = ", ".join(column(model, name) for name in names)
    if unnest:
        arrays = ", ".join(f"%b::{f.db_type(connection)}[]" for f in fields)
        source = f"SELECT * FROM unnest({arrays})"
    else:
        placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
        source = f"VALUES {', '.join([placeholders] * rows)}"
    return f"INSERT INTO {table(model)} ({columns}) {source} {suffix}"


def _insert_batches(model, names: tuple[str, ...], rows: Sequence[Sequence[Any]], suffix: str):
    """(statement, parameters) for the rows, in as few statements as the backend allows."""
    prepared = _prepared(model, names, rows)
    if connection.vendor == "postgresql" and len(rows) >= UNNEST_FROM_ROWS:
        yield (
            _insert_statement(model, names, 0, suffix, unnest=True),
            [list(values) for values in zip(*prepared, strict=True)],
        )
        return
    # SQLite caps a statement's parameters; Django's batch size for it stays under the cap.
    size = connection.ops.bulk_batch_size(_fields(model, names), rows)
    for start in range(0, len(rows), size):
        chunk = prepared[start : start + size]
        params = [value for row in chunk for value in row]
        yield _insert_statement(model, names, len(chunk), suffix, unnest=False), params


def select_in(
    model: type[models.Model],
    names: Sequence[str],
    key: str,
    values: Sequence[Any],
    *,
    lock: bool = False,
) -> list[tuple]:
    """SELECT `names` of the rows whose `key` is one of `values`, in `key` order, with values
    converted as the ORM converts them; with `lock` the rows stay locked (FOR UPDATE) until the
    transaction ends."""
    if not values:
        return []
    fields = _fields(model, names)
    key_field = model._meta.get_field(key)
    converters = _converters(model, tuple(names), connection.vendor)
    placeholders = ", ".join(["%s"] * len(values))
    sql = (
        f"SELECT {', '.join(connection.ops.quote_name(f.column) for f in fields)} "
        f"FROM {table(model)} WHERE {column(model, key)} IN ({placeholders}) "
        f"ORDER BY {column(model, key)}"
    )
    if lock and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    with _reading() as cursor:
        cursor.execute(sql, [key_field.get_db_prep_value(v, connection) for v in values])
        rows = cursor.fetchall()
    return [_converted(row, converters) for row in rows]


def models_in(model: type[M], key: str, values: Sequence[Any]) -> list[M]:
    """The instances `model.objects.filter(<key>__in=values)` would give, in `key` order,
    without compiling a query: for the lookups every API request makes (its token, its user,
    its accounts), where the ORM's compilation costs ten times the query."""
    fields = model._meta.concrete_fields
    names = tuple(field.name for field in fields)
    attnames = [field.attname for field in fields]
    rows = select_in(model, names, key, values)
    return [model.from_db(connection.alias, attnames, row) for row in rows]


# SQLite's default cap is 999 parameters per statement; three per range.
_RANGES_PER_STATEMENT = 300


def select_ranges(
    model: type[models.Model],
    names: Sequence[str],
    key: str,
    order: str,
    ranges: dict[Any, tuple[int, int]],
) -> list[tuple]:
    """SELECT `names` of the rows whose `key` is k and whose `order` is from lo to hi, for each
    k: (lo, hi) of `ranges`, in (`key`, `order`) order, with values converted as the ORM
    converts them. One statement however many ranges (up to a few hundred)."""
    key_field = model._meta.get_field(key)
    condition = f"({column(model, key)} = %s AND {column(model, order)} BETWEEN %s AND %s)"
    converters = _converters(model, tuple(names), connection.vendor)
    items = list(ranges.items())
    rows: list[tuple] = []
    with _reading() as cursor:
        for start in range(0, len(items), _RANGES_PER_STATEMENT):
            chunk = items[start : start + _RANGES_PER_STATEMENT]
            statement = (
                f"SELECT {', '.join(column(model, name) for name in names)} FROM {table(model)} "
                f"WHERE {' OR '.join([condition] * len(chunk))} "
                f"ORDER BY {column(model, key)}, {column(model, order)}"
            )
            params = [
                param
                for value, (low, high) in chunk
                for param in (key_field.get_db_prep_value(value, connection), low, high)
            ]
            cursor.execute(statement, params)
            rows += cursor.fetchall()
    return [_converted(row, converters) for row in rows]


def select_after(
    model: type[models.Model], names: Sequence[str], key: str, after: Any, limit: int
) -> list[tuple]:
    """SELECT `names` of the first `limit` rows whose `key` is greater than `after`, in `key`
    order, with values converted as the ORM converts them: a keyset page, for reading a table
    through in batches without compiling a query per batch."""
    converters = _converters(model, tuple(names), connection.vendor)
    statement = (
        f"SELECT {', '.join(column(model, name) for name in names)} FROM {table(model)} "
        f"WHERE {column(model, key)} > %s ORDER BY {column(model, key)} LIMIT %s"
    )
    with _reading() as cursor:
        cursor.execute(
            statement, [model._meta.get_field(key).get_db_prep_value(after, connection), limit]
        )
        rows = cursor.fetchall()
    return [_converted(row, converters) for row in rows]


@functools.lru_cache(maxsize=64)
def _converters(model: type[models.Model], names: tuple[str, ...], vendor: str) -> list:
    """Per column, the expression and the converters the ORM would apply to its values."""
    # `vendor` is part of the key only; the converters are called with the caller's connection.
    converters = []
    for field in _fields(model, names):
        expression = field.get_col(model._meta.db_table)
        functions = connection.ops.get_db_converters(expression)
        converters.append((expression, functions + expression.get_db_converters(connection)))
    return converters


def _converted(row: Sequence[Any], converters: list) -> tuple:
    values = []
    for value, (expression, functions) in zip(row, converters, strict=True):
        for function in functions:
            value = function(value, expression, connection)
        values.append(value)
    return tuple(values)


def insert_rows(
    model: type[models.Model],
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    on_conflict: str = "",
    returning: str | None = None,
) -> list[Any]:
    """INSERT the rows (tuples in the order of `names`); returns the `returning` column's values.

    `on_conflict` is appended as is (e.g. an upsert's `ON CONFLICT (...) DO UPDATE SET ...`).
    """
    if not rows:
        return []
    suffix = on_conflict + (f" RETURNING {column(model, returning)}" if returning else "")
    returned: list[Any] = []
    with connection.cursor() as cursor:
        for statement, params in _insert_batches(model, tuple(names), rows, suffix):
            cursor.execute(statement, params)
            if returning:
                returned.extend(value for (value,) in cursor.fetchall())
    return returned


def update_each(
    model: type[models.Model],
    assignments: Sequence[str],
    keys: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """UPDATE one row per input row (`assignments` values, then `keys` values).

    One executemany: psycopg sends it as a pipeline, so the whole set costs one round trip.
    """
    if not rows:
        return
    setters = ", ".join(f"{column(model, name)} = %s" for name in assignments)
    where = " AND ".join(f"{column(model, name)} = %s" for name in keys)
    params = _prepared(model, (*assignments, *keys), rows)
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table(model)} SET {setters} WHERE {where}", params)
