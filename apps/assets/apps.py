from django.apps import AppConfig

# code, name, type, precision, metadata
REFERENCE_ASSETS: tuple[tuple[str, str, str, int, dict], ...] = (
    ("USD", "US Dollar", "fiat", 2, {}),
    ("EUR", "Euro", "fiat", 2, {}),
    ("GBP", "British Pound", "fiat", 2, {}),
    ("CHF", "Swiss Franc", "fiat", 2, {}),
    ("JPY", "Japanese Yen", "fiat", 0, {}),
    ("XAU", "Gold", "commodity", 3, {"unit": "troy ounce"}),
    ("BTC", "Bitcoin", "crypto", 8, {}),
    ("ETH", "Ether", "crypto", 8, {}),
    ("GCU", "Global Currency Unit", "basket", 2, {}),
)


class AssetsConfig(AppConfig):
    name = "apps.assets"
    label = "assets"
    verbose_name = "Assets and exchange rates"

    def seed_reference_data(self) -> None:
        """Define the reference assets and, on a database without rates, the demo rates."""
        from apps.assets.models import ExchangeRate
        from apps.assets.providers import DemoRateProvider
        from apps.assets.services import asset_define, exchange_rates_refresh

        for code, name, type_, precision, metadata in REFERENCE_ASSETS:
            asset_define(code=code, name=name, type=type_, precision=precision, metadata=metadata)
        if not ExchangeRate.objects.exists():
            exchange_rates_refresh(provider=DemoRateProvider())
