"""The event store: load aggregates (newest snapshot + later events), persist what they recorded.

One command is one database transaction. `load` locks the stream rows of every aggregate it is
given, in uuid order, so writers of the same aggregate queue up instead of losing updates and
writers of overlapping sets cannot deadlock. `save` appends the events with their hash chain,
advances the stream heads (the unique version is the last guard), runs the projectors in the same
transaction, schedules the reactors for after commit and takes snapshots every N events.
"""

from __future__ import annotations

import datetime as dt
import functools
import pickle
import random
import threading
import time
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, NamedTuple, ParamSpec, TypeVar

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from apps.core import sql
from apps.core.aggregates import AggregateRoot
from apps.core.context import current_metadata
from apps.core.errors import AggregateNotFound, ConcurrencyError
from apps.core.events import DomainEvent, decode, encode
from apps.core.hashing import chain_hash
from apps.core.models import AggregateStream, Snapshot, event_model_for
from apps.core.projection import (
    EventRecord,
    batch_handled_only,
    project_all,
    schedule_reactors,
)

A = TypeVar("A", bound=AggregateRoot)
P = ParamSpec("P")
R = TypeVar("R")

# PostgreSQL's serialization_failure and deadlock_detected: safe to retry the whole transaction.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


class TransactionRequired(RuntimeError):
    pass


class EventStoreCorrupted(RuntimeError):
    """A stream head and its events disagree; never retried."""


def _require_transaction() -> None:
    if not connection.in_atomic_block:
        raise TransactionRequired("the event store writes only inside a command's transaction")


class StreamHead(NamedTuple):
    uuid: uuid.UUID
    aggregate_type: str
    version: int
    last_hash: str


def _stream_heads(uuids: list[uuid.UUID], lock: bool) -> dict[uuid.UUID, StreamHead]:
    with sql.pipelined():  # sends BEGIN and the SELECT together
        rows = sql.select_in(AggregateStream, StreamHead._fields, "uuid", uuids, lock=lock)
    return {row[0]: StreamHead(*row) for row in rows}


_Cached = tuple[int, str, dict[str, Any]]  # version, last hash, state


class _StateCache:
    """Aggregate states by uuid as of a committed version, per process.

    Events never change once stored, so the state at a given version is the same everywhere.
    A cached state of exactly the locked stream's version saves replaying the tail since the
    last snapshot (hot system accounts would otherwise replay up to N events on every command);
    an older one (another process wrote since) is brought up to date with the few events after
    it. Entries are stored only after commit, and pickled (a copy that nobody can change, and
    cheaper to take than a deep copy), so a rolled-back command never leaks its state.
    """

    def __init__(self) -> None:
        self._states: OrderedDict[uuid.UUID, tuple[int, str, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, stream: StreamHead) -> _Cached | None:
        """(version, last hash, state) cached for the stream at its version or before."""
        with self._lock:
            entry = self._states.get(stream.uuid)
        if entry is None or entry[0] > stream.version:
            return None
        version, last_hash, state = entry
        return version, last_hash, pickle.loads(state)

    def put(self, aggregate_uuid: uuid.UUID, version: int, last_hash: str, state: bytes) -> None:
        size = settings.EVENT_STORE_STATE_CACHE_SIZE
        with self._lock:
            self._states[aggregate_uuid] = (version, last_hash, state)
            self._states.move_to_end(aggregate_uuid)
            while len(self._states) > size:
                self._states.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._states.clear()


state_cache = _StateCache()


_TAIL_COLUMNS = (
    "aggregate_uuid",
    "aggregate_version",
    "hash",
    "event_type",
    "event_version",
    "event_data",
)


def _tails(app_label: str, ranges: dict[uuid.UUID, tuple[int, int]]) -> dict[uuid.UUID, list]:
    """Each aggregate's stored events from the first to the last version of its range, in
    order, as (version, hash, type, event version, data); one query for all of them (a batch
    loads up to a few hundred aggregates, most of them a few events behind their cached state).
    """
    tails: dict[uuid.UUID, list] = {aggregate_uuid: [] for aggregate_uuid in ranges}
    if not ranges:
        return tails
    model = event_model_for(app_label)
    rows = sql.select_ranges(model, _TAIL_COLUMNS, "aggregate_uuid", "aggregate_version", ranges)
    for aggregate_uuid, *event in rows:
        tails[aggregate_uuid].append(event)
    return tails


def _from_cache(
    aggregate: AggregateRoot, stream: StreamHead, cached: _Cached | None, tail: list
) -> bool:
    """Restore from the cached state, applying the events stored since (`tail`, from the
    cached version on); False if unusable."""
    if cached is None:
        return False
    version, last_hash, state = cached
    if version == stream.version:
        if last_hash != stream.last_hash:
            return False
        aggregate.restore_state(state)
        aggregate.version = version
        return True
    # The cached state belongs to this history only if the event it ends with is the stored one.
    if not tail or tuple(tail[0][:2]) != (version, last_hash):
        return False
    aggregate.restore_state(state)
    aggregate.version = version
    for _, _, event_type, event_version, data in tail[1:]:
        aggregate.apply(decode(event_type, event_version, data))
    return True


def _from_snapshot(aggregate: AggregateRoot, stream: StreamHead) -> None:
    snapshot = (
        Snapshot.objects.filter(aggregate_uuid=stream.uuid, aggregate_version__lte=stream.version)
        .order_by("-aggregate_version")
        .values_list("aggregate_version", "state")
        .first()
    )
    if snapshot is not None:
        aggregate.version, state = snapshot
        aggregate.restore_state(state)
    first = aggregate.version + 1
    tail = _tails(aggregate.app_label, {stream.uuid: (first, stream.version)})[stream.uuid]
    for _, _, event_type, event_version, data in tail:
        aggregate.apply(decode(event_type, event_version, data))


def _restore(aggregate: A, stream: StreamHead, cached: _Cached | None, tail: list) -> A:
    if not _from_cache(aggregate, stream, cached, tail):
        _from_snapshot(aggregate, stream)
    if aggregate.version != stream.version:
        # Under the row lock this is corruption, not a race; verify_events will name it.
        raise EventStoreCorrupted(
            f"{stream.uuid}: stream at v{stream.version}, events replay to v{aggregate.version}"
        )
    aggregate.mark_persisted(stream.last_hash)
    return aggregate


def load(cls: type[A], *uuids: uuid.UUID, lock: bool = True) -> list[A]:
    """Load aggregates in the order asked; with `lock` their rows stay locked until commit."""
    if lock:
        _require_transaction()
    wanted = sorted(set(uuids))
    heads = _stream_heads(wanted, lock)
    for aggregate_uuid in wanted:
        head = heads.get(aggregate_uuid)
        if head is None or head.aggregate_type != cls.aggregate_type:
            raise AggregateNotFound(details={"uuid": str(aggregate_uuid)})
    cached = {u: state_cache.get(heads[u]) for u in wanted}
    behind = {
        u: (entry[0], heads[u].version)
        for u, entry in cached.items()
        if entry is not None and entry[0] < heads[u].version
    }
    aggregates = {u: cls(u) for u in wanted}
    tails = _tails(aggregates[wanted[0]].app_label, behind) if behind else {}
    loaded = {u: _restore(aggregates[u], heads[u], cached[u], tails.get(u, [])) for u in wanted}
    return [loaded[u] for u in uuids]


def load_one(cls: type[A], aggregate_uuid: uuid.UUID, *, lock: bool = True) -> A:
    return load(cls, aggregate_uuid, lock=lock)[0]


_STREAM_COLUMNS = ("uuid", "aggregate_type", "version", "last_hash", "updated_at")
EVENT_COLUMNS = (
    "aggregate_uuid",
    "aggregate_version",
    "event_type",
    "event_version",
    "event_data",
    "meta_data",
    "hash",
    "created_at",
)


def _advance_streams(heads: dict[AggregateRoot, str], at: dt.datetime) -> None:
    """Move every stream head to its aggregate's new version and last hash; a new stream that
    exists already means another writer won, and the command is retried."""
    new = [a for a in heads if a._is_new]
    moved = [a for a in heads if not a._is_new]
    if new:
        # In PostgreSQL's pipeline a duplicate surfaces only at the next fetch, in `_append`,
        # which turns it into the same retryable ConcurrencyError; SQLite raises it here.
        try:
            sql.insert_rows(
                AggregateStream,
                _STREAM_COLUMNS,
                [(a.uuid, a.aggregate_type, a.version, heads[a], at) for a in new],
            )
        except IntegrityError as exc:
            raise ConcurrencyError(f"one of {[str(a.uuid) for a in new]} exists") from exc
    # The version condition cannot be checked here (saves are pipelined, so the count is not
    # known yet), nor need it be: the heads are locked since `load`, and were one not, the
    # events' unique (uuid, version) makes `_append` fail for whoever comes second.
    sql.update_each(
        AggregateStream,
        ("version", "last_hash", "updated_at"),
        ("uuid", "version"),
        [(a.version, heads[a], at, a.uuid, a._persisted_version) for a in moved],
    )


def chain_events(
    aggregate: AggregateRoot, meta: dict[str, Any], at: dt.datetime
) -> tuple[list[tuple[DomainEvent, tuple]], str]:
    """Each pending event with its row (in `EVENT_COLUMNS` order), linked into the aggregate's
    hash chain, and the chain's new last link. (`bench.replay` writes its events with it too.)"""
    pending, previous, version = [], aggregate._last_hash, aggregate._persisted_version
    for evt in aggregate.pending_events:
        version += 1
        data = encode(evt)
        previous = chain_hash(
            previous,
            aggregate.uuid,
            version,
            evt.event_type,
            data,
            event_version=evt.event_version,
            meta=meta,
        )
        row = (aggregate.uuid, version, evt.event_type, evt.event_version, data, meta, previous, at)
        pending.append((evt, row))
    return pending, previous


def _append(
    app_label: str, pending: list[tuple[DomainEvent, tuple]], at: dt.datetime, meta: dict
) -> list[tuple[DomainEvent, EventRecord]]:
    """Insert one app's event rows in one statement; returns each event with its record."""
    try:
        ids = sql.insert_rows(
            event_model_for(app_label), EVENT_COLUMNS, [row for _, row in pending], returning="id"
        )
    except IntegrityError as exc:
        raise ConcurrencyError(f"a version of the {app_label} events was taken") from exc
    return [
        (evt, EventRecord(row_id, row[0], row[1], at, meta))
        for (evt, row), row_id in zip(pending, ids, strict=True)
    ]


def _snapshot_if_due(aggregate: AggregateRoot) -> None:
    every = aggregate.snapshot_every
    if every is None:
        every = settings.EVENT_STORE_SNAPSHOT_EVERY
    if every and aggregate.version // every > aggregate._persisted_version // every:
        Snapshot.objects.create(
            aggregate_uuid=aggregate.uuid,
            aggregate_type=aggregate.aggregate_type,
            aggregate_version=aggregate.version,
            state=aggregate.snapshot_state(),
        )


def save(*aggregates: AggregateRoot) -> list[tuple[DomainEvent, EventRecord]]:
    """Persist the pending events of the aggregates; returns each event with its stored record.

    Set-wise: one statement for the stream heads, one per event table, and the projectors get
    each app's events together, so a transfer costs a handful of statements whatever it touches.
    """
    _require_transaction()
    meta = current_metadata()
    at = timezone.now()
    changed = sorted((a for a in aggregates if a.pending_events), key=lambda a: a.uuid)
    by_app: dict[str, list[tuple[DomainEvent, tuple]]] = defaultdict(list)
    heads: dict[AggregateRoot, str] = {}
    for aggregate in changed:
        pending, heads[aggregate] = chain_events(aggregate, meta, at)
        by_app[aggregate.app_label].extend(pending)
    with ExitStack() as pipeline:
        pipeline.enter_context(sql.pipelined())
        _advance_streams(heads, at)
        stored_by_app = {app: _append(app, pending, at, meta) for app, pending in by_app.items()}
        if not batch_handled_only(stored_by_app):
            pipeline.close()  # these projectors read what they write: one statement at a time
        for app_label, pairs in stored_by_app.items():
            project_all(app_label, pairs)
    stored = [pair for pairs in stored_by_app.values() for pair in pairs]
    for evt, record in stored:
        schedule_reactors(evt, record)
    for aggregate, last_hash in heads.items():
        _snapshot_if_due(aggregate)
        aggregate.mark_persisted(last_hash)
        _cache_after_commit(aggregate)
    return stored


def _cache_after_commit(aggregate: AggregateRoot) -> None:
    if not settings.EVENT_STORE_STATE_CACHE_SIZE:
        return
    entry = (aggregate.uuid, aggregate.version, aggregate._last_hash)
    state = pickle.dumps(aggregate.snapshot_state(), pickle.HIGHEST_PROTOCOL)
    transaction.on_commit(lambda: state_cache.put(*entry, state))


def take_snapshot(aggregate: AggregateRoot) -> bool:
    """Store the aggregate's current state; False when a snapshot of that version exists."""
    _, created = Snapshot.objects.get_or_create(
        aggregate_uuid=aggregate.uuid,
        aggregate_version=aggregate.version,
        defaults={"aggregate_type": aggregate.aggregate_type, "state": aggregate.snapshot_state()},
    )
    return created


# --- commands: one transaction, retried when another writer won the race ---------------------


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, ConcurrencyError):
        return True
    if isinstance(exc, OperationalError):
        sqlstate = getattr(exc.__cause__, "sqlstate", None)
        return sqlstate in _RETRYABLE_SQLSTATES or "database is locked" in str(exc)
    return False


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))


def command(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a service function as one atomic command, retried a bounded number of times on races.

    Called inside another command it runs in a savepoint and leaves the retries to the outermost
    one, since only a whole transaction can be safely run again.
    """

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        if connection.in_atomic_block:
            with transaction.atomic():
                return fn(*args, **kwargs)
        attempt = 1
        while True:
            try:
                with transaction.atomic():
                    return fn(*args, **kwargs)
            except Exception as exc:
                if attempt >= settings.EVENT_STORE_RETRIES or not _is_retryable(exc):
                    raise
            _backoff(attempt)
            attempt += 1

    return run
