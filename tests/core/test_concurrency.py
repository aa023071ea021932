"""Concurrent writers on PostgreSQL: row locks in uuid order, bounded retries, no lost update."""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connection, connections

from apps.core.verification import broken_links
from tests.eventstore_app.models import TallyEvent, TallyView
from tests.eventstore_app.services import tally_increment, tally_move, tally_open

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _run_threads(count: int, work) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def worker(index: int) -> None:
        try:
            start.wait()
            work(index)
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_eight_threads_appending_to_one_aggregate_lose_nothing():
    tally = tally_open(name="hot")
    per_thread = 25

    def work(index: int) -> None:
        for n in range(per_thread):
            tally_increment(tally_uuid=tally.uuid, amount=index * 1000 + n)

    assert _run_threads(8, work) == []
    versions = list(
        TallyEvent.objects.filter(aggregate_uuid=tally.uuid)
        .order_by("aggregate_version")
        .values_list("aggregate_version", flat=True)
    )
    assert versions == list(range(1, 8 * per_thread + 2))  # gap-free, every command landed
    expected = sum(i * 1000 + n for i in range(8) for n in range(per_thread))
    view = TallyView.objects.get(uuid=tally.uuid)
    assert (view.total, view.increments) == (expected, 8 * per_thread)
    assert broken_links() == []


def test_racing_creation_of_the_same_aggregate_is_retried_not_duplicated():
    import uuid

    from apps.core.errors import ConcurrencyError

    shared = uuid.uuid4()
    outcomes: list[str] = []

    def work(index: int) -> None:
        try:
            tally_open(name=f"racer-{index}", tally_uuid=shared)
            outcomes.append("created")
        except ConcurrencyError:
            outcomes.append("lost")

    assert _run_threads(4, work) == []
    assert outcomes.count("created") == 1
    assert TallyEvent.objects.filter(aggregate_uuid=shared).count() == 1


def test_crossing_moves_between_aggregates_never_deadlock():
    tallies = [tally_open(name=f"m{i}") for i in range(4)]
    for tally in tallies:
        tally_increment(tally_uuid=tally.uuid, amount=1000)

    def work(index: int) -> None:
        rng = random.Random(index)
        for _ in range(30):
            source, target = rng.sample(tallies, 2)
            tally_move(source=source.uuid, target=target.uuid, amount=rng.randint(1, 5))

    assert _run_threads(8, work) == []
    assert sum(TallyView.objects.values_list("total", flat=True)) == 4000
    assert broken_links() == []
    assert connection.vendor == "postgresql"
