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


class Projector:
    """Maps events of one app's event table to its read models.

    `read_models` lists the tables this projector owns, children before parents: a rebuild
    empties them in that order and replays every event of the app's table.
    """

    def __init__(self, app_label: str, *, read_models: tuple[type[models.Model], ...] = ()):
        self.app_label = app_label
        self.read_models = read_models
        self.handlers: dict[type[DomainEvent], list[Handler]] = defaultdict(list)
        _projectors[app_label].append(self)

    def on(self, *event_classes: type[DomainEvent]) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            for event_cls in event_classes:
                self.handlers[event_cls].append(handler)
            return handler

        return register

    def project(self, evt: DomainEvent, record: EventRecord) -> None:
        for handler in self.handlers.get(type(evt), ()):
            handler(evt, record)

    def reset(self) -> None:
        """Empty the read models; raw DELETE so no cascade collector walks millions of rows."""
        with connection.cursor() as cursor:
            for model in self.read_models:
                cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")


_projectors: dict[str, list[Projector]] = defaultdict(list)
_reactors: dict[type[DomainEvent], list[Handler]] = defaultdict(list)


def projectors_for(app_label: str) -> list[Projector]:
    return list(_projectors.get(app_label, ()))


def project(app_label: str, evt: DomainEvent, record: EventRecord) -> None:
    for projector in _projectors.get(app_label, ()):
        projector.project(evt, record)


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
