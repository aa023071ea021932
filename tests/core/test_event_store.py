"""The event-store kernel, exercised through the test app's Tally aggregate."""

from __future__ import annotations

import gc
import pickle
import uuid

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from apps.core import store
from apps.core.context import command_context
from apps.core.errors import AggregateNotFound
from apps.core.events import decode, encode
from apps.core.hashing import chain_hash
from apps.core.models import AggregateStream, Snapshot, event_models
from apps.core.store import TransactionRequired
from tests.eventstore_app.aggregates import Tally, TallyLimitReached
from tests.eventstore_app.events import TallyIncremented, TallyOpened
from tests.eventstore_app.models import TallyEvent, TallyView
from tests.eventstore_app.services import tally_increment, tally_move, tally_open

pytestmark = pytest.mark.django_db


def _events(tally_uuid):
    return list(TallyEvent.objects.filter(aggregate_uuid=tally_uuid).order_by("aggregate_version"))


def test_events_round_trip_through_the_store():
    tally = tally_open(name="coins")
    tally_increment(tally_uuid=tally.uuid, amount=5, note="first")
    tally_increment(tally_uuid=tally.uuid, amount=7)

    rows = _events(tally.uuid)
    assert [r.event_type for r in rows] == [
        "eventstore_app.TallyOpened",
        "eventstore_app.TallyIncremented",
        "eventstore_app.TallyIncremented",
    ]
    assert [r.aggregate_version for r in rows] == [1, 2, 3]
    assert rows[1].event_data == {"amount": 5, "note": "first"}
    assert rows[1].event_version == 2
    assert [decode(r.event_type, r.event_version, r.event_data) for r in rows] == [
        TallyOpened(name="coins"),
        TallyIncremented(amount=5, note="first"),
        TallyIncremented(amount=7, note=""),
    ]
    with transaction.atomic():
        loaded = store.load_one(Tally, tally.uuid)
    assert (loaded.name, loaded.total, loaded.increments, loaded.version) == ("coins", 12, 2, 3)
    assert AggregateStream.objects.get(uuid=tally.uuid).version == 3


def _expected_hash(previous, row):
    return chain_hash(
        previous,
        row.aggregate_uuid,
        row.aggregate_version,
        row.event_type,
        row.event_data,
        event_version=row.event_version,
        meta=row.meta_data,
    )


def test_hash_chain_links_each_event_to_the_previous_one():
    tally = tally_open(name="chain")
    tally_increment(tally_uuid=tally.uuid, amount=1)
    first, second = _events(tally.uuid)
    assert first.hash == _expected_hash("", first)
    assert second.hash == _expected_hash(first.hash, second)
    assert len(second.hash) == 128  # SHA3-512, hex
    assert AggregateStream.objects.get(uuid=tally.uuid).last_hash == second.hash


def test_projector_updates_read_model_in_the_same_transaction():
    tally = tally_open(name="view")
    tally_increment(tally_uuid=tally.uuid, amount=3)
    view = TallyView.objects.get(uuid=tally.uuid)
    assert (view.name, view.total, view.increments) == ("view", 3, 1)


def test_rejected_command_writes_nothing():
    tally = tally_open(name="limited")
    with pytest.raises(TallyLimitReached):
        tally_increment(tally_uuid=tally.uuid, amount=Tally.limit + 1)
    assert len(_events(tally.uuid)) == 1
    assert TallyView.objects.get(uuid=tally.uuid).total == 0


def test_move_between_two_aggregates_is_one_atomic_command():
    source, target = tally_open(name="a"), tally_open(name="b")
    tally_increment(tally_uuid=source.uuid, amount=10)
    tally_move(source=source.uuid, target=target.uuid, amount=4)
    totals = dict(TallyView.objects.values_list("name", "total"))
    assert totals == {"a": 6, "b": 4}
    with pytest.raises(TallyLimitReached):
        tally_move(source=source.uuid, target=target.uuid, amount=-Tally.limit)
    assert dict(TallyView.objects.values_list("name", "total")) == totals


def test_loading_an_unknown_aggregate_is_not_found():
    with transaction.atomic(), pytest.raises(AggregateNotFound):
        store.load_one(Tally, uuid.uuid4())


@pytest.mark.django_db(transaction=True)
def test_writing_outside_a_transaction_is_refused():
    tally = Tally(uuid.uuid4())
    tally.open("loose")
    with pytest.raises(TransactionRequired):
        store.save(tally)


def test_upcaster_lifts_an_old_event_version_on_load():
    assert decode("eventstore_app.TallyIncremented", 1, {"by": 9}) == TallyIncremented(
        amount=9, note=""
    )
    tally = tally_open(name="legacy")
    # A row written by the version-1 code of TallyIncremented, chained like the store chains it.
    stream = AggregateStream.objects.get(uuid=tally.uuid)
    old_data = {"by": 9}
    old_hash = chain_hash(
        stream.last_hash,
        tally.uuid,
        2,
        "eventstore_app.TallyIncremented",
        old_data,
        event_version=1,
        meta={},
    )
    TallyEvent.objects.create(
        aggregate_uuid=tally.uuid,
        aggregate_version=2,
        event_type="eventstore_app.TallyIncremented",
        event_version=1,
        event_data=old_data,
        hash=old_hash,
    )
    AggregateStream.objects.filter(uuid=tally.uuid).update(version=2, last_hash=old_hash)

    tally_increment(tally_uuid=tally.uuid, amount=1)
    with transaction.atomic():
        loaded = store.load_one(Tally, tally.uuid)
    assert loaded.total == 10
    assert (
        TallyEvent.objects.get(aggregate_uuid=tally.uuid, aggregate_version=2).event_data
        == old_data
    )
    call_command("verify_events")


def test_event_data_refuses_floats():
    with pytest.raises(TypeError):
        encode(TallyIncremented(amount=1.5, note=""))


def test_meta_data_records_the_actor_and_ids_of_the_context():
    with command_context(
        actor={"type": "staff", "id": "s-1"}, request_id="req-1", correlation_id="cor-1"
    ):
        tally = tally_open(name="audited")
    meta = _events(tally.uuid)[0].meta_data
    assert meta == {
        "actor": {"type": "staff", "id": "s-1"},
        "request_id": "req-1",
        "correlation_id": "cor-1",
    }


def test_events_without_a_context_name_the_system():
    tally = tally_open(name="system")
    assert _events(tally.uuid)[0].meta_data["actor"] == {"type": "system", "id": "system"}


@pytest.mark.parametrize(
    "statement", ["UPDATE {table} SET event_type = 'x'", "DELETE FROM {table}"]
)
def test_every_event_table_rejects_update_and_delete(statement):
    tally = tally_open(name="immutable")
    tally_increment(tally_uuid=tally.uuid, amount=1)
    for model in event_models():
        model.objects.create(
            aggregate_uuid=uuid.uuid4(),
            aggregate_version=1,
            event_type="x",
            event_data={},
            hash="h",
        )
        sql = statement.format(table=connection.ops.quote_name(model._meta.db_table))
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert TallyEvent.objects.filter(aggregate_uuid=tally.uuid).count() == 2


def test_orm_update_and_delete_are_rejected_too():
    tally = tally_open(name="orm")
    row = _events(tally.uuid)[0]
    with pytest.raises(DatabaseError), transaction.atomic():
        TallyEvent.objects.filter(pk=row.pk).update(event_data={"name": "forged"})
    with pytest.raises(DatabaseError), transaction.atomic():
        row.delete()


def test_snapshot_plus_tail_loads_the_same_state_as_a_full_replay(settings):
    settings.EVENT_STORE_SNAPSHOT_EVERY = 4
    tally = tally_open(name="snap")
    for amount in range(1, 11):
        tally_increment(tally_uuid=tally.uuid, amount=amount)
    # 11 events: snapshots were taken when the stream crossed versions 4 and 8.
    assert list(
        Snapshot.objects.filter(aggregate_uuid=tally.uuid)
        .order_by("aggregate_version")
        .values_list("aggregate_version", flat=True)
    ) == [4, 8]
    with transaction.atomic():
        from_snapshot = store.load_one(Tally, tally.uuid)
    full = Tally(tally.uuid)
    for row in _events(tally.uuid):
        full.apply(decode(row.event_type, row.event_version, row.event_data))
    assert from_snapshot.snapshot_state() == full.snapshot_state()
    assert (from_snapshot.version, from_snapshot.total) == (full.version, 55)


def test_snapshot_is_really_used_when_loading(settings):
    settings.EVENT_STORE_SNAPSHOT_EVERY = 2
    tally = tally_open(name="used")
    tally_increment(tally_uuid=tally.uuid, amount=1)
    # Doctor the snapshot: if load replayed from the start, this mark would not appear.
    snap = Snapshot.objects.get(aggregate_uuid=tally.uuid, aggregate_version=2)
    Snapshot.objects.filter(pk=snap.pk).update(state={**snap.state, "name": "from-snapshot"})
    with transaction.atomic():
        assert store.load_one(Tally, tally.uuid).name == "from-snapshot"


@pytest.fixture
def cached_state():
    """Put a state in the store's per-process cache as another process's commit would leave it."""

    def put(tally_uuid: uuid.UUID, version: int, last_hash: str | None = None, **changes) -> None:
        rows = _events(tally_uuid)[:version]
        replayed = Tally(tally_uuid)
        for row in rows:
            replayed.apply(decode(row.event_type, row.event_version, row.event_data))
        state = {**replayed.snapshot_state(), **changes}
        store.state_cache.put(tally_uuid, version, last_hash or rows[-1].hash, pickle.dumps(state))

    yield put
    store.state_cache.clear()


def test_an_older_cached_state_is_brought_up_to_date_with_the_events_after_it(cached_state):
    tally = tally_open(name="cached")
    for amount in (1, 2, 3):
        tally_increment(tally_uuid=tally.uuid, amount=amount)
    # Marked, so the load shows it started from the cache (v2), then applied v3 and v4.
    cached_state(tally.uuid, 2, name="from-cache")
    with transaction.atomic():
        loaded = store.load_one(Tally, tally.uuid)
    assert (loaded.name, loaded.version, loaded.total, loaded.increments) == ("from-cache", 4, 6, 3)


def test_several_older_cached_states_are_caught_up_with_one_query(
    cached_state, django_assert_num_queries
):
    """A batch whose accounts other processes wrote since this one cached them: the events
    after each cached state come in one statement, not one per aggregate."""
    tallies = [tally_open(name=f"t{i}") for i in range(3)]
    for i, tally in enumerate(tallies):
        for amount in range(1, i + 3):
            tally_increment(tally_uuid=tally.uuid, amount=amount)
        cached_state(tally.uuid, 2, name=f"cached-{i}")
    with transaction.atomic(), django_assert_num_queries(2):  # the stream heads, the tails
        loaded = store.load(Tally, *(t.uuid for t in reversed(tallies)))
    assert [(t.name, t.version, t.total) for t in loaded] == [
        ("cached-2", 5, 10),
        ("cached-1", 4, 6),
        ("cached-0", 3, 3),
    ]


def test_a_cached_state_from_another_history_is_not_used(cached_state):
    tally = tally_open(name="truth")
    tally_increment(tally_uuid=tally.uuid, amount=5)
    cached_state(tally.uuid, 1, last_hash="0" * 128, name="forged")
    with transaction.atomic():
        loaded = store.load_one(Tally, tally.uuid)
    assert (loaded.name, loaded.total) == ("truth", 5)


def test_snapshot_aggregates_command_snapshots_long_streams():
    tally = tally_open(name="cmd")
    for _ in range(5):
        tally_increment(tally_uuid=tally.uuid, amount=1)
    call_command("snapshot_aggregates", "--min-events", "3")
    assert Snapshot.objects.filter(aggregate_uuid=tally.uuid, aggregate_version=6).exists()
    call_command("snapshot_aggregates", "--min-events", "3")  # nothing new: idempotent
    assert Snapshot.objects.filter(aggregate_uuid=tally.uuid).count() == 1


def test_rebuild_pauses_the_cycle_collector_only_while_it_runs():
    from apps.core.replay import _collector_paused

    with pytest.raises(RuntimeError), _collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("a failed rebuild")
    assert gc.isenabled()
    gc.disable()  # a caller that runs without it keeps it off
    try:
        with _collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_rebuild_projections_reproduces_the_read_model_exactly():
    tallies = [tally_open(name=f"t{i}") for i in range(5)]
    for i, tally in enumerate(tallies):
        for amount in range(i + 1):
            tally_increment(tally_uuid=tally.uuid, amount=amount + 1)
    tally_move(source=tallies[4].uuid, target=tallies[0].uuid, amount=3)
    live = sorted(
        TallyView.objects.values_list("uuid", "name", "total", "increments", "last_event_id")
    )
    TallyView.objects.update(total=-1)  # drift the read model
    call_command("rebuild_projections", "eventstore_app", "--batch-size", "3")
    rebuilt = sorted(
        TallyView.objects.values_list("uuid", "name", "total", "increments", "last_event_id")
    )
    assert rebuilt == live
