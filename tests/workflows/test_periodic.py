"""Scheduled jobs: `setup_periodic_tasks` installs what the apps declare, idempotently; each job's
task runs its service and leaves a JobRun; a ledger that does not reconcile fails loudly."""

from __future__ import annotations

import logging

import pytest
from django.apps import apps
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from apps.accounts.models import AccountBalance, ReconciliationRun
from apps.accounts.services import account_open
from apps.core.models import IdempotencyRecord
from apps.payments.services import deposit_create
from apps.workflows.models import JobRun
from apps.workflows.schedule import MANAGED_MARK, PeriodicJob, cron, periodic_jobs
from apps.workflows.services import periodic_jobs_install
from apps.workflows.tasks import (
    purge_idempotency_keys_task,
    reconcile_ledger_task,
    refresh_exchange_rates_task,
    resume_stale_workflows_task,
    run_recorded_job,
    snapshot_aggregates_task,
)
from finaegis.celery import app as celery_app

pytestmark = pytest.mark.django_db


def schedule_of(name: str) -> str:
    task = PeriodicTask.objects.get(name=name)
    if task.interval is not None:
        return f"every {task.interval.every} {task.interval.period}"
    c = task.crontab
    return f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week} {c.timezone}"


def test_the_command_installs_every_required_job_on_its_schedule(capsys):
    call_command("setup_periodic_tasks")
    assert schedule_of("assets.refresh_exchange_rates") == "0 * * * * UTC"
    assert schedule_of("core.snapshot_aggregates") == "0 3 * * * UTC"
    assert schedule_of("accounts.reconcile_ledger") == "0 2 * * * UTC"
    assert schedule_of("custodians.reconcile") == "30 2 * * * UTC"
    assert schedule_of("custodians.sync_balances") == "*/30 * * * * UTC"
    assert schedule_of("workflows.resume_stale") == "every 60 seconds"
    assert schedule_of("core.purge_idempotency_keys") == "45 3 * * * UTC"
    assert PeriodicTask.objects.get(name="workflows.resume_stale").expire_seconds == 60
    assert "created: accounts.reconcile_ledger" in capsys.readouterr().out


def test_every_declared_job_names_a_registered_celery_task():
    celery_app.loader.import_default_modules()
    registered = set(celery_app.tasks)
    missing = [job.name for job in periodic_jobs() if job.task not in registered]
    assert missing == []


def test_running_it_again_changes_nothing(capsys):
    call_command("setup_periodic_tasks")
    before = list(PeriodicTask.objects.order_by("name").values())
    capsys.readouterr()
    call_command("setup_periodic_tasks")
    assert list(PeriodicTask.objects.order_by("name").values()) == before
    out = capsys.readouterr().out
    assert "0 created, 0 updated" in out and "0 disabled" in out


def test_a_changed_job_is_updated_and_a_job_no_longer_declared_is_disabled():
    jobs = periodic_jobs()
    periodic_jobs_install(jobs=jobs)
    moved = PeriodicJob(
        "accounts.reconcile_ledger",
        "accounts.reconcile_ledger",
        "Prove the ledger, at 04:00 now",
        crontab=cron(minute="0", hour="4"),
    )
    kept = [
        j for j in jobs if j.name not in ("accounts.reconcile_ledger", "core.snapshot_aggregates")
    ]
    report = periodic_jobs_install(jobs=[*kept, moved])
    assert report.updated == ["accounts.reconcile_ledger"]
    assert report.disabled == ["core.snapshot_aggregates"]
    assert schedule_of("accounts.reconcile_ledger") == "0 4 * * * UTC"
    dropped = PeriodicTask.objects.get(name="core.snapshot_aggregates")
    assert not dropped.enabled and dropped.description.endswith(MANAGED_MARK)
    # a schedule someone added by hand in the console is none of the command's business
    every_minute = PeriodicTask.objects.get(name="workflows.resume_stale").interval
    PeriodicTask.objects.create(name="hand-made", task="x", interval=every_minute)
    periodic_jobs_install(jobs=[*kept, moved])
    assert PeriodicTask.objects.get(name="hand-made").enabled


def test_an_app_declares_its_jobs_on_its_app_config(monkeypatch):
    config = apps.get_app_config("custodians")
    declared = config.periodic_jobs()
    extra = PeriodicJob(
        "custodians.extra", "custodians.reconcile", "an extra job", every_seconds=300
    )
    monkeypatch.setattr(config, "periodic_jobs", lambda: [*declared, extra], raising=False)
    assert "custodians.extra" in [job.name for job in periodic_jobs()]
    periodic_jobs_install()
    assert schedule_of("custodians.extra") == "every 300 seconds"
    twice = PeriodicJob("custodians.reconcile", "x", "again", every_seconds=1)
    monkeypatch.setattr(config, "periodic_jobs", lambda: [*declared, twice], raising=False)
    with pytest.raises(Exception, match="declared twice"):
        periodic_jobs()


def test_a_job_needs_exactly_one_schedule():
    with pytest.raises(Exception, match="exactly one"):
        PeriodicJob("x", "x", "neither")
    with pytest.raises(Exception, match="exactly one"):
        PeriodicJob("x", "x", "both", every_seconds=1, crontab=cron())


# --- the jobs -------------------------------------------------------------------------------


@pytest.fixture
def ledger(bank):
    account = account_open(name="Jobs", owner_uuid=None)
    deposit_create(account_uuid=account.uuid, amount=1_000, asset_code="USD")
    return account


def last_run(job: str) -> JobRun:
    return JobRun.objects.filter(job=job).latest("started_at")


def test_the_nightly_ledger_reconciliation_records_a_clean_run(ledger):
    summary = reconcile_ledger_task.apply().get()
    assert summary["clean"] is True and summary["discrepancies"] == 0
    run = last_run("accounts.reconcile_ledger")
    assert run.status == "succeeded" and run.finished_at is not None and run.task_id
    assert ReconciliationRun.objects.get(pk=summary["reconciliation_run"]).clean


def test_a_ledger_that_does_not_reconcile_fails_the_job_and_says_so_loudly(ledger, caplog):
    # A read model that drifted from its events: the balance no longer matches the postings.
    AccountBalance.objects.filter(account_id=ledger.uuid).update(balance=999)
    with caplog.at_level(logging.ERROR, logger="apps.workflows.tasks"):
        summary = reconcile_ledger_task.apply().get()
    assert summary["clean"] is False and summary["discrepancies"] > 0
    assert last_run("accounts.reconcile_ledger").status == "failed"
    assert not ReconciliationRun.objects.get(pk=summary["reconciliation_run"]).clean
    assert any("LEDGER DOES NOT RECONCILE" in r.getMessage() for r in caplog.records)


def test_the_other_kernel_jobs_run_their_services(ledger):
    assert refresh_exchange_rates_task.apply().get()["recorded"] > 0
    assert snapshot_aggregates_task.apply().get() == {}
    IdempotencyRecord.objects.create(
        scope="s", key="k", fingerprint="f", expires_at="2000-01-01T00:00:00Z"
    )
    assert purge_idempotency_keys_task.apply().get() == {"purged": 1}
    assert resume_stale_workflows_task.apply().get() == {"resumed": 0}
    assert {run.job for run in JobRun.objects.all()} == {
        "assets.refresh_exchange_rates",
        "core.snapshot_aggregates",
        "core.purge_idempotency_keys",
        "workflows.resume_stale",
    }
    assert set(JobRun.objects.values_list("status", flat=True)) == {"succeeded"}


def test_the_custodian_jobs_record_whether_every_custodian_answered_and_agreed(ledger):
    from apps.custodians.tasks import reconcile_custodians_task, sync_custodian_balances_task

    sync = sync_custodian_balances_task.apply().get()
    assert sync["custodians"]["mock_bank"]["ok"] is True
    assert last_run("custodians.sync_balances").status == "succeeded"
    # the deposit was booked straight on the ledger: the mock bank does not hold it
    reconciled = reconcile_custodians_task.apply().get()
    assert reconciled["custodians"]["mock_bank"]["clean"] is False
    assert last_run("custodians.reconcile").status == "failed"


def test_a_job_that_raises_is_recorded_as_failed_and_the_error_reaches_celery(db):
    class Task:
        class request:
            id = "task-1"

    def broken():
        raise RuntimeError("provider down")

    with pytest.raises(RuntimeError):
        run_recorded_job(Task, "tests.broken", broken)
    run = last_run("tests.broken")
    assert run.status == "failed" and run.summary == {
        "error": "RuntimeError",
        "message": "provider down",
    }


def test_old_job_runs_are_dropped_as_new_ones_finish(db, settings):
    import datetime as dt

    from django.utils import timezone

    class Task:
        class request:
            id = "task-2"

    long_ago = timezone.now() - dt.timedelta(days=settings.JOB_RUN_RETENTION_DAYS + 1)
    old = JobRun.objects.create(job="tests.job", status="succeeded", started_at=long_ago)
    other = JobRun.objects.create(job="tests.other", status="succeeded", started_at=long_ago)
    run_recorded_job(Task, "tests.job", lambda: (True, {}))
    assert not JobRun.objects.filter(pk=old.pk).exists()
    assert JobRun.objects.filter(pk=other.pk).exists()  # another job's history is its own
