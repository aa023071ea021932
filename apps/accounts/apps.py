from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def seed_reference_data(self) -> None:
        from apps.accounts.services import system_accounts_seed

        system_accounts_seed()
