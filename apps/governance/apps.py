from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "apps.governance"
    label = "governance"
    verbose_name = "Governance"

    def seed_demo_data(self, demo_users: dict) -> None:
        """An open yes/no poll that every customer may vote in, with one vote already cast."""
        from apps.governance.services import demo_polls_seed

        demo_polls_seed(users=demo_users)

    def periodic_jobs(self) -> list:
        """Scheduled jobs, installed by apps.workflows' `setup_periodic_tasks`."""
        from apps.workflows.schedule import PeriodicJob

        return [
            PeriodicJob(
                "governance.close_expired_polls",
                "governance.close_expired_polls",
                "Close the polls whose end has passed and run their workflows, every 5 minutes",
                every_seconds=300,
                expire_seconds=300,
            ),
        ]
