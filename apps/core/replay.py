"""Rebuilding read models from the events, and loading aggregates outside a command."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from django.db import transaction

from apps.core import sql
from apps.core.events import DomainEvent, decode
from apps.core.models import event_model_for
from apps.core.projection import EventRecord, batch_handled_only, projectors_for

_EVENT_COLUMNS = (
    "id",
    "aggregate_uuid",
    "aggregate_version",
    "event_type",
    "event_version",
    "event_data",
    "meta_data",
    "created_at",
)


def rebuild_projections(app_label: str, *, batch_size: int = 5000) -> int:
    """Empty the app's read models and replay its event table in id order, in one transaction.

    Readers keep seeing the old read models until the rebuild commits. Returns the events replayed.
    """
    projectors = projectors_for(app_label)
    if not projectors:
        return 0
    model = event_model_for(app_label)
    replayed = 0
    with _collector_paused(), transaction.atomic():
        for projector in projectors:
            projector.reset()
        pairs = _decoded(sql.select_after(model, _EVENT_COLUMNS, "id", 0, batch_size))
        while pairs:
            # The next batch is read before this one's writes are sent, and decoded while the
            # database runs them: a pipeline waits for their results only when the block ends.
            # Batches with handlers other than batch handlers may read row counts, so they
            # wait for each statement instead.
            pipelined = batch_handled_only({app_label: pairs})
            with sql.pipelined() if pipelined else nullcontext():
                after = pairs[-1][1].id
                rows = sql.select_after(model, _EVENT_COLUMNS, "id", after, batch_size)
                for projector in projectors:
                    projector.project_all(pairs)
                replayed += len(pairs)
                pairs = _decoded(rows)
    return replayed


def _decoded(rows: list[tuple]) -> list[tuple[DomainEvent, EventRecord]]:
    return [
        (decode(event_type, event_version, data), EventRecord(*position, created, meta))
        for *position, event_type, event_version, data, meta, created in rows
    ]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off for the block. A rebuild allocates millions of short-lived,
    acyclic objects (rows, documents, events), and each batch that outlives the young
    generations counts towards a full collection, which walks the whole heap: with the
    collector on, a rebuild spent a third of its CPU in it (docs/PERFORMANCE.md)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
