"""Projectors (read models, inside the write transaction) and reactors (side effects, after commit).

A domain app declares one `Projector` per event table in its `projectors.py`; the event store calls
it for every event it appends, and `rebuild_projections` replays the table through it from scratch.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, models, transaction

from apps.core.events import DomainEvent


@dataclass(frozen=True, slots=True)
class EventRecord:
    """What a handler knows of a stored event besides its data."""

    id: int
    aggregate_uuid: uuid.UUID
    aggregate_version: int
    created_at: datetime
    meta_data: dict[str, Any]


Handler = Callable[[Any, EventRecord], None]
BatchHandler = Callable[[list[tuple[Any, EventRecord]]], None]


class Projector:
    """Maps events of one app's event table to its read models.

    `read_models` lists the tables this projector owns, children before parents: a rebuild
    empties them in that order and replays every event of the app's table.
    """

    def __init__(self, app_label: str, *, read_models: tuple[type[models.Model], ...] = ()):
        self.app_label = app_label
        self.read_models = read_models
        self.handlers: dict[type[DomainEvent], list[Handler]] = defaultdict(list)
        self.batch_handlers: dict[type[DomainEvent], BatchHandler] = {}
        _projectors[app_label].append(self)

    def on(self, *event_classes: type[DomainEvent]) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            for event_cls in event_classes:
                if event_cls in self.batch_handlers:
                    raise ValueError(f"{event_cls.__name__} already has a batch handler here")
                self.handlers[event_cls].append(handler)
            return handler

        return register

    def on_batch(self, *event_classes: type[DomainEvent]) -> Callable[[BatchHandler], BatchHandler]:
        """Register a handler that takes a run of consecutive events of these classes at once.

        For the hot read models: a command or a rebuild writes them with one set-wise statement
        per table instead of one per event. The run is in stored order, so within it an
        aggregate's events come in version order. The store may run batch handlers inside a
        pipeline (see `apps.core.sql.pipelined`), so they must not read their writes' row counts.
        """

        def register(handler: BatchHandler) -> BatchHandler:
            for event_cls in event_classes:
                if event_cls in self.handlers or event_cls in self.batch_handlers:
                    raise ValueError(f"{event_cls.__name__} already has a handler here")
                self.batch_handlers[event_cls] = handler
            return handler

        return register

    def project_all(self, pairs: list[tuple[DomainEvent, EventRecord]]) -> None:
        """Project the events in order; runs of events with the same batch handler go together."""
        run: list[tuple[DomainEvent, EventRecord]] = []
        run_handler: BatchHandler | None = None
        for evt, record in pairs:
            batch_handler = self.batch_handlers.get(type(evt))
            if run and batch_handler is not run_handler:
                run_handler(run)
                run = []
            if batch_handler is None:
                for handler in self.handlers.get(type(evt), ()):
                    handler(evt, record)
            else:
                run_handler = batch_handler
                run.append((evt, record))
        if run:
            run_handler(run)

    def reset(self) -> None:
        """Empty the read models; raw DELETE so no cascade collector walks millions of rows."""
        with connection.cursor() as cursor:
            for model in self.read_models:
                cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")


_projectors: dict[str, list[Projector]] = defaultdict(list)
_reactors: dict[type[DomainEvent], list[Handler]] = defaultdict(list)


def projectors_for(app_label: str) -> list[Projector]:
    return list(_projectors.get(app_label, ()))


def project_all(app_label: str, pairs: list[tuple[DomainEvent, EventRecord]]) -> None:
    for projector in _projectors.get(app_label, ()):
        projector.project_all(pairs)


def batch_handled_only(stored: dict[str, list[tuple[DomainEvent, EventRecord]]]) -> bool:
    """Whether every event (by app) has no handler other than batch handlers: then projecting
    them reads no row counts and can share the store's pipeline."""
    return all(
        not projector.handlers.get(type(evt))
        for app_label, pairs in stored.items()
        for projector in _projectors.get(app_label, ())
        for evt, _ in pairs
    )


def reactor(*event_classes: type[DomainEvent]) -> Callable[[Handler], Handler]:
    """Register a side effect to run once the transaction that stored the event has committed."""

    def register(handler: Handler) -> Handler:
        for event_cls in event_classes:
            _reactors[event_cls].append(handler)
        return handler

    return register


def schedule_reactors(evt: DomainEvent, record: EventRecord) -> None:
    for handler in _reactors.get(type(evt), ()):
        transaction.on_commit(lambda h=handler: h(evt, record), robust=True)
