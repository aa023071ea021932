"""Migration operations that make an event table append-only at the database.

Row triggers reject UPDATE and DELETE (a DELETE without WHERE too). PostgreSQL's TRUNCATE fires
no row trigger, so it gets a statement-level trigger of its own; SQLite has no TRUNCATE (its
"truncate optimisation" of a bare DELETE is switched off when a DELETE trigger exists).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.db.migrations.operations.base import Operation

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION finaegis_reject_event_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql
"""


def _trigger_name(table: str, op: str) -> str:
    return f"{table}_no_{op.lower()}"


def _pg_no_truncate_sql(table: str) -> str:
    return (
        f'CREATE TRIGGER "{_trigger_name(table, "TRUNCATE")}" BEFORE TRUNCATE ON "{table}" '
        f"FOR EACH STATEMENT EXECUTE FUNCTION finaegis_reject_event_change()"
    )


def _pg_drop_no_truncate_sql(table: str) -> str:
    return f'DROP TRIGGER IF EXISTS "{_trigger_name(table, "TRUNCATE")}" ON "{table}"'


def append_only_sql(vendor: str, table: str) -> list[str]:
    if vendor == "postgresql":
        return [
            _PG_FUNCTION,
            *(
                f'CREATE TRIGGER "{_trigger_name(table, op)}" BEFORE {op} ON "{table}" '
                f"FOR EACH ROW EXECUTE FUNCTION finaegis_reject_event_change()"
                for op in ("UPDATE", "DELETE")
            ),
            _pg_no_truncate_sql(table),
        ]
    if vendor == "sqlite":
        return [
            f'CREATE TRIGGER "{_trigger_name(table, op)}" BEFORE {op} ON "{table}" '
            f"BEGIN SELECT RAISE(ABORT, 'table {table} is append-only: {op} is not allowed'); END"
            for op in ("UPDATE", "DELETE")
        ]
    raise ImproperlyConfigured(f"append-only triggers are not written for {vendor}")


def drop_append_only_sql(vendor: str, table: str) -> list[str]:
    on_table = f' ON "{table}"' if vendor == "postgresql" else ""
    rows = [
        f'DROP TRIGGER IF EXISTS "{_trigger_name(table, op)}"{on_table}'
        for op in ("UPDATE", "DELETE")
    ]
    return [*rows, _pg_drop_no_truncate_sql(table)] if vendor == "postgresql" else rows


def no_truncate_sql(vendor: str, table: str) -> list[str]:
    """The TRUNCATE trigger alone, for a table made append-only before it existed; re-creating
    it is harmless (a database migrated from scratch already has it from `AppendOnly`)."""
    if vendor != "postgresql":
        return []
    return [_PG_FUNCTION, _pg_drop_no_truncate_sql(table), _pg_no_truncate_sql(table)]


class AppendOnly(Operation):
    """Install triggers that reject UPDATE, DELETE and TRUNCATE on a model's table (PostgreSQL,
    SQLite)."""

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str):
        self.model_name = model_name

    def deconstruct(self):
        return (self.__class__.__qualname__, [], {"model_name": self.model_name})

    def state_forwards(self, app_label, state):
        """Triggers are invisible to the model state."""

    def _table(self, app_label, state) -> str:
        return state.apps.get_model(app_label, self.model_name)._meta.db_table

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        vendor = schema_editor.connection.vendor
        for sql in append_only_sql(vendor, self._table(app_label, to_state)):
            schema_editor.execute(sql, params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        vendor = schema_editor.connection.vendor
        for sql in drop_append_only_sql(vendor, self._table(app_label, from_state)):
            schema_editor.execute(sql, params=None)

    def describe(self):
        return f"Make {self.model_name} append-only"

    @property
    def migration_name_fragment(self):
        return f"{self.model_name.lower()}_append_only"


class NoTruncate(AppendOnly):
    """Add the TRUNCATE trigger to a table `AppendOnly` ran on before it installed one."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        vendor = schema_editor.connection.vendor
        for sql in no_truncate_sql(vendor, self._table(app_label, to_state)):
            schema_editor.execute(sql, params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(_pg_drop_no_truncate_sql(self._table(app_label, from_state)))

    def describe(self):
        return f"Reject TRUNCATE on {self.model_name}"

    @property
    def migration_name_fragment(self):
        return f"{self.model_name.lower()}_no_truncate"
