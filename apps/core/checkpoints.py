"""Signed checkpoints of the event store, shipped off the machine by the operator.

The hash chains prove that no event was changed in place, but someone holding EVENT_HASH_KEY can
delete an aggregate's newest events and rewind its stream head (or rebuild a whole chain), and
the store verifies again. A checkpoint records each event table's highest id and row count and
every stream head (uuid, version, last hash), keyed with EVENT_HASH_KEY so a copy that was
edited on its way does not verify; comparing the store with the operator's latest copy shows
what went backwards since.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from apps.core.hashing import canonical_json
from apps.core.models import AggregateStream, event_models


class CheckpointUnreadable(Exception):
    """The checkpoint file is missing, empty or not checkpoint JSON lines."""


@dataclass(frozen=True)
class Regression:
    subject: str
    reason: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.reason}"


def _mac(body: dict[str, Any]) -> str:
    return hmac.new(
        settings.EVENT_HASH_KEY.encode(), canonical_json(body), hashlib.sha3_512
    ).hexdigest()


def checkpoint_take() -> dict[str, Any]:
    """The store's current checkpoint, signed; read in one transaction so the parts agree."""
    with transaction.atomic():
        tables = {}
        for model in event_models():
            summary = model.objects.aggregate(max_id=Max("id"), count=Count("id"))
            tables[model._meta.db_table] = {
                "max_id": summary["max_id"] or 0,
                "count": summary["count"],
            }
        heads = {
            str(stream_uuid): [version, last_hash]
            for stream_uuid, version, last_hash in AggregateStream.objects.values_list(
                "uuid", "version", "last_hash"
            ).iterator(chunk_size=5000)
        }
    body = {"taken_at": timezone.now().isoformat(), "tables": tables, "heads": heads}
    return {**body, "mac": _mac(body)}


def checkpoint_append(path: Path) -> dict[str, Any]:
    checkpoint = checkpoint_take()
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(checkpoint, sort_keys=True) + "\n")
    return checkpoint


def latest_checkpoint(path: Path) -> dict[str, Any]:
    """The last line of the file, parsed; its signature is checked by `checkpoint_regressions`."""
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as error:
        raise CheckpointUnreadable(f"cannot read {path}: {error.strerror}") from error
    if not lines:
        raise CheckpointUnreadable(f"{path} holds no checkpoint")
    try:
        checkpoint = json.loads(lines[-1])
    except json.JSONDecodeError as error:
        raise CheckpointUnreadable(f"the last line of {path} is not JSON") from error
    if not isinstance(checkpoint, dict) or not {"tables", "heads", "mac"} <= checkpoint.keys():
        raise CheckpointUnreadable(f"the last line of {path} is not a checkpoint")
    return checkpoint


def _table_regressions(tables: dict[str, Any]) -> Iterator[Regression]:
    """Ids are not gap-free (a rolled-back insert burns one), so count what is still there."""
    models = {model._meta.db_table: model for model in event_models()}
    for table, seen in sorted(tables.items()):
        model = models.get(table)
        if model is None:
            yield Regression(table, "event table is gone")
            continue
        left = model.objects.filter(id__lte=seen["max_id"]).count()
        if left < seen["count"]:
            yield Regression(
                table,
                f"{seen['count'] - left} event(s) up to id {seen['max_id']} went missing",
            )


def _head_regressions(heads: dict[str, list]) -> Iterator[Regression]:
    """A head may only move forward, and the event it pointed at must keep its hash."""
    now = {
        str(stream_uuid): (version, last_hash)
        for stream_uuid, version, last_hash in AggregateStream.objects.values_list(
            "uuid", "version", "last_hash"
        ).iterator(chunk_size=5000)
    }
    moved_on: dict[tuple[str, int], str] = {}
    for stream_uuid, (version, last_hash) in sorted(heads.items()):
        current = now.get(stream_uuid)
        if current is None:
            yield Regression(f"aggregate {stream_uuid}", "stream head is gone")
        elif current[0] < version:
            yield Regression(
                f"aggregate {stream_uuid}",
                f"stream head went back from version {version} to {current[0]}",
            )
        elif current[0] == version and current[1] != last_hash:
            yield Regression(f"aggregate {stream_uuid}", f"version {version} was rewritten")
        elif current[0] > version:
            moved_on[(stream_uuid, version)] = last_hash
    yield from _rewritten_history(moved_on)


def _rewritten_history(moved_on: dict[tuple[str, int], str]) -> Iterator[Regression]:
    """For heads that moved on: the event at the checkpointed version must still be there, with
    the hash it had (else the chain was rebuilt from below)."""
    for model in event_models():
        rows = model.objects.values_list("aggregate_uuid", "aggregate_version", "hash")
        for aggregate_uuid, version, stored_hash in rows.iterator(chunk_size=5000):
            expected = moved_on.pop((str(aggregate_uuid), version), None)
            if expected is not None and expected != stored_hash:
                yield Regression(f"aggregate {aggregate_uuid}", f"version {version} was rewritten")
    for stream_uuid, version in sorted(moved_on):
        yield Regression(f"aggregate {stream_uuid}", f"version {version} is missing")


def checkpoint_regressions(checkpoint: dict[str, Any]) -> list[Regression]:
    """What went backwards since the checkpoint; an empty list means nothing did."""
    body = {key: value for key, value in checkpoint.items() if key != "mac"}
    if not hmac.compare_digest(str(checkpoint["mac"]), _mac(body)):
        return [Regression("checkpoint", "signature does not verify (edited, or another key)")]
    return [*_table_regressions(body["tables"]), *_head_regressions(body["heads"])]
