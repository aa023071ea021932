"""Concurrent workers on PostgreSQL: one run is advanced by one worker at a time, and the same
webhook event delivered at the same moment is processed once."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.db import connections
from rest_framework.test import APIClient

from apps.core.seeding import seed_reference_data
from apps.custodians.models import CustodianWebhookEvent
from apps.custodians.services import webhook_signature
from apps.workflows.selectors import workflow_run_get
from apps.workflows.services import workflow_advance, workflow_start
from tests.eventstore_app.models import TallyView
from tests.eventstore_app.services import tally_open
from tests.workflows import sample

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_threads(count: int, work) -> tuple[list, list[BaseException]]:
    results, errors = [None] * count, []
    start = threading.Barrier(count)

    def worker(index: int) -> None:
        try:
            start.wait()
            results[index] = work(index)
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results, errors


def test_workers_racing_for_one_run_advance_it_once(monkeypatch):
    # Nobody advances the run on commit: the six threads below are its only workers.
    dispatched = []
    monkeypatch.setattr("apps.workflows.services._send", lambda *args: dispatched.append(args))
    tally = tally_open(name="race")

    def slow_flight(ctx):
        time.sleep(0.2)  # hold the lease while the others arrive

    sample.world.plan("run", "flight", slow_flight)
    run = workflow_start(workflow_type=sample.TRIP, input={"tally": str(tally.uuid), "amount": 7})
    assert [args[0] for args in dispatched] == [run.uuid]
    outcomes, errors = run_threads(6, lambda i: workflow_advance(run_uuid=run.uuid))
    assert errors == []
    assert outcomes.count("completed") == 1
    assert set(outcomes) <= {"completed", "busy", "not_due"}
    assert sample.world.log == ["book flight", "charge", "book hotel", "confirm"]
    assert TallyView.objects.get(uuid=tally.uuid).total == 7
    assert workflow_run_get(run.uuid).status == "completed"


def test_the_same_webhook_delivered_at_the_same_moment_is_processed_once():
    seed_reference_data()
    body = json.dumps({"id": "evt_race", "type": "balance.updated", "data": {}}).encode()
    timestamp = str(int(time.time()))
    signature = webhook_signature("dev-only-webhook-secret-mock_bank", timestamp, body)

    def deliver(index: int) -> tuple[int, bool]:
        response = APIClient().post(
            "/api/v1/webhooks/custodians/mock_bank",
            body,
            content_type="application/json",
            HTTP_X_CUSTODIAN_TIMESTAMP=timestamp,
            HTTP_X_CUSTODIAN_SIGNATURE=signature,
        )
        return response.status_code, response.json()["duplicate"]

    results, errors = run_threads(6, deliver)
    assert errors == []
    assert [status for status, _ in results] == [200] * 6
    assert sorted(duplicate for _, duplicate in results) == [False] + [True] * 5
    assert CustodianWebhookEvent.objects.filter(event_id="evt_race").count() == 1
