"""Integrity of the event store: hash chains, gap-free versions, stream heads."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from apps.core.hashing import GENESIS_HASH, chain_hash
from apps.core.models import AggregateStream, StoredEvent, event_models


@dataclass(frozen=True)
class BrokenLink:
    table: str
    aggregate_uuid: uuid.UUID
    version: int
    reason: str

    def __str__(self) -> str:
        return (
            f"{self.table}: aggregate {self.aggregate_uuid} version {self.version}: {self.reason}"
        )


def _chain_breaks(model: type[StoredEvent], chunk_size: int) -> Iterator[BrokenLink]:
    """The first broken link of every aggregate of one table, walking each chain in order."""
    table = model._meta.db_table
    rows = (
        model.objects.order_by("aggregate_uuid", "aggregate_version")
        .values_list(
            "aggregate_uuid",
            "aggregate_version",
            "event_type",
            "event_version",
            "event_data",
            "meta_data",
            "hash",
        )
        .iterator(chunk_size=chunk_size)
    )
    current, previous, expected = None, GENESIS_HASH, 1
    heads: dict[uuid.UUID, tuple[int, str]] = {}
    broken: set[uuid.UUID] = set()
    for aggregate_uuid, version, event_type, event_version, data, meta, stored_hash in rows:
        if aggregate_uuid != current:
            current, previous, expected = aggregate_uuid, GENESIS_HASH, 1
        if aggregate_uuid in broken:
            continue
        link = None
        if version != expected:
            link = BrokenLink(table, aggregate_uuid, expected, f"version {expected} is missing")
        elif stored_hash != chain_hash(
            previous,
            aggregate_uuid,
            version,
            event_type,
            data,
            event_version=event_version,
            meta=meta,
        ):
            link = BrokenLink(table, aggregate_uuid, version, "hash does not match its content")
        if link is not None:
            broken.add(aggregate_uuid)
            heads.pop(aggregate_uuid, None)  # reported once, as broken, not also as headless
            yield link
            continue
        previous, expected = stored_hash, expected + 1
        heads[aggregate_uuid] = (version, stored_hash)
    yield from _head_breaks(model, heads, broken)


def _head_breaks(
    model: type[StoredEvent], heads: dict[uuid.UUID, tuple[int, str]], broken: set[uuid.UUID]
) -> Iterator[BrokenLink]:
    """Each aggregate's stream head must point at the last event of its chain, and each chain
    must have a head."""
    table = model._meta.db_table
    streams = AggregateStream.objects.filter(
        aggregate_type__startswith=f"{model._meta.app_label}."
    ).values_list("uuid", "version", "last_hash")
    for stream_uuid, version, last_hash in streams.iterator(chunk_size=5000):
        if stream_uuid in broken:
            continue
        if heads.pop(stream_uuid, (0, GENESIS_HASH)) != (version, last_hash):
            yield BrokenLink(table, stream_uuid, version, "stream head disagrees with the chain")
    for orphan_uuid, (version, _) in heads.items():
        yield BrokenLink(table, orphan_uuid, version, "events without a stream head")


def broken_links(chunk_size: int = 5000) -> list[BrokenLink]:
    """Every chain of every event table, checked; an empty list means the store verifies."""
    return [link for model in event_models() for link in _chain_breaks(model, chunk_size)]


@dataclass(frozen=True)
class VerifiedEvent:
    row: StoredEvent
    verified: bool


def verified_event_page(
    model: type[StoredEvent], aggregate_uuid: uuid.UUID, *, page: int, per_page: int
) -> tuple[list[VerifiedEvent], bool]:
    """One page of an aggregate's events, newest first, each checked against its hash link
    (its content and the stored hash of the event before it). Returns the page and whether an
    older page exists."""
    offset = (page - 1) * per_page
    rows = list(
        model.objects.filter(aggregate_uuid=aggregate_uuid).order_by("-aggregate_version")[
            offset : offset + per_page + 1
        ]
    )
    has_next = len(rows) > per_page
    rows = rows[:per_page]
    if not rows:
        return [], False
    oldest = rows[-1].aggregate_version
    previous = (
        model.objects.filter(aggregate_uuid=aggregate_uuid, aggregate_version=oldest - 1)
        .values_list("hash", flat=True)
        .first()
    ) or GENESIS_HASH
    checked = []
    for row in reversed(rows):
        expected = chain_hash(
            previous,
            row.aggregate_uuid,
            row.aggregate_version,
            row.event_type,
            row.event_data,
            event_version=row.event_version,
            meta=row.meta_data,
        )
        checked.append(VerifiedEvent(row, expected == row.hash))
        previous = row.hash
    return list(reversed(checked)), has_next
