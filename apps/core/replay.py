"""Rebuilding read models from the events, and loading aggregates outside a command."""

from __future__ import annotations

from django.db import transaction

from apps.core.events import decode
from apps.core.models import event_model_for
from apps.core.projection import EventRecord, projectors_for


def rebuild_projections(app_label: str, *, batch_size: int = 5000) -> int:
    """Empty the app's read models and replay its event table in id order, in one transaction.

    Readers keep seeing the old read models until the rebuild commits. Returns the events replayed.
    """
    projectors = projectors_for(app_label)
    if not projectors:
        return 0
    model = event_model_for(app_label)
    replayed = 0
    with transaction.atomic():
        for projector in projectors:
            projector.reset()
        last_id = 0
        while True:
            batch = list(
                model.objects.filter(id__gt=last_id)
                .order_by("id")
                .values_list(
                    "id",
                    "aggregate_uuid",
                    "aggregate_version",
                    "event_type",
                    "event_version",
                    "event_data",
                    "meta_data",
                    "created_at",
                )[:batch_size]
            )
            if not batch:
                return replayed
            pairs = [
                (decode(event_type, event_version, data), EventRecord(*position, created, meta))
                for *position, event_type, event_version, data, meta, created in batch
            ]
            for projector in projectors:
                projector.project_all(pairs)
            replayed += len(batch)
            last_id = batch[-1][0]
