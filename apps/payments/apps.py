from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "apps.payments"
    label = "payments"
    verbose_name = "Payments"

    def seed_demo_data(self, demo_users) -> None:
        from apps.payments.services import demo_ledger_seed

        demo_ledger_seed(users=demo_users)
