from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class WorkflowsConfig(AppConfig):
    name = "apps.workflows"
    label = "workflows"
    verbose_name = "Workflows and scheduled jobs"

    def ready(self) -> None:
        # Workflow types are declared in each app's `workflows` module; a worker must know them
        # all before it advances a run of any of them.
        autodiscover_modules("workflows")

    def periodic_jobs(self):
        """The runtime's own job, and the kernel's jobs whose tasks live in this app's tasks.py
        (see its docstring)."""
        from apps.workflows.schedule import PeriodicJob, cron

        return [
            PeriodicJob(
                "workflows.resume_stale",
                "workflows.resume_stale",
                "Resume workflow runs whose worker died or whose dispatch was lost",
                every_seconds=60,
                expire_seconds=60,
            ),
            PeriodicJob(
                "assets.refresh_exchange_rates",
                "assets.refresh_exchange_rates",
                "Record the configured provider's exchange rates, hourly",
                crontab=cron(minute="0"),
                expire_seconds=3600,
            ),
            PeriodicJob(
                "core.snapshot_aggregates",
                "core.snapshot_aggregates",
                "Snapshot aggregates with many events since their last snapshot, daily",
                crontab=cron(minute="0", hour="3"),
                expire_seconds=6 * 3600,
            ),
            PeriodicJob(
                "accounts.reconcile_ledger",
                "accounts.reconcile_ledger",
                "Prove the ledger (conservation, balances, chains, replay), daily at 02:00",
                crontab=cron(minute="0", hour="2"),
                expire_seconds=6 * 3600,
            ),
            PeriodicJob(
                "core.purge_idempotency_keys",
                "core.purge_idempotency_keys",
                "Delete expired Idempotency-Key records, daily",
                crontab=cron(minute="45", hour="3"),
                expire_seconds=6 * 3600,
            ),
        ]
