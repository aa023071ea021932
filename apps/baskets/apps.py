from django.apps import AppConfig


class BasketsConfig(AppConfig):
    name = "apps.baskets"
    label = "baskets"
    verbose_name = "Baskets and bank allocation"

    def ready(self) -> None:
        # Polls may name "update_basket_composition" as their execution workflow.
        from apps.baskets.services import workflows_register

        workflows_register()

    def seed_reference_data(self) -> None:
        """The partner banks and the GCU basket."""
        from apps.baskets.services import reference_data_seed

        reference_data_seed()

    def seed_demo_data(self, demo_users: dict) -> None:
        """GCU holdings for the demo customer and an open GCU composition vote."""
        from apps.baskets.services import demo_baskets_seed

        demo_baskets_seed(users=demo_users)

    def periodic_jobs(self) -> list:
        """Scheduled jobs (UTC), installed by apps.workflows' `setup_periodic_tasks`."""
        from apps.workflows.schedule import PeriodicJob, cron

        return [
            PeriodicJob(
                "baskets.record_basket_values",
                "baskets.record_basket_values",
                "Record the USD value of every active basket, hourly",
                crontab=cron(minute="5"),
                expire_seconds=3600,
            ),
            PeriodicJob(
                "baskets.open_monthly_composition_votes",
                "baskets.open_monthly_composition_votes",
                "Open next month's composition vote of the monthly baskets, on the 20th",
                crontab=cron(minute="0", hour="0", day_of_month="20"),
                expire_seconds=24 * 3600,
            ),
            PeriodicJob(
                "baskets.apply_monthly_compositions",
                "baskets.apply_monthly_compositions",
                "Close the month's composition vote, apply its result and rebalance, on the 1st",
                crontab=cron(minute="10", hour="0", day_of_month="1"),
                expire_seconds=24 * 3600,
            ),
            PeriodicJob(
                "baskets.rebalance_due_baskets",
                "baskets.rebalance_due_baskets",
                "Apply due compositions and rebalance the baskets whose period began, daily",
                crontab=cron(minute="20", hour="0"),
                expire_seconds=24 * 3600,
            ),
        ]
