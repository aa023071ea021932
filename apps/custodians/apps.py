from django.apps import AppConfig


class CustodiansConfig(AppConfig):
    name = "apps.custodians"
    label = "custodians"
    verbose_name = "Custodians"

    def ready(self) -> None:
        # Connects the handler that rebuilds connectors when their settings change (tests).
        from apps.custodians import registry  # noqa: F401

    def seed_reference_data(self) -> None:
        from apps.custodians.services import circuit_breakers_seed

        circuit_breakers_seed()

    def seed_demo_data(self, demo_users) -> None:
        from apps.custodians.services import external_accounts_seed, mock_bank_openings_seed

        mock_bank_openings_seed()
        external_accounts_seed(users=demo_users.values())

    def periodic_jobs(self):
        from apps.workflows.schedule import PeriodicJob, cron

        return [
            PeriodicJob(
                "custodians.reconcile",
                "custodians.reconcile",
                "Reconcile each custodian's balances with its settlement account, daily 02:30",
                crontab=cron(minute="30", hour="2"),
                expire_seconds=6 * 3600,
            ),
            PeriodicJob(
                "custodians.sync_balances",
                "custodians.sync_balances",
                "Record the balances each custodian reports, every 30 minutes",
                crontab=cron(minute="*/30"),
                expire_seconds=1800,
            ),
        ]
