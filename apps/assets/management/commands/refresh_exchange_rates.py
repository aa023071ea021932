from django.core.management.base import CommandError

from apps.assets.providers import rate_provider
from apps.assets.services import exchange_rates_refresh
from apps.core.commands import AuditedCommand


class Command(AuditedCommand):
    help = "Fetch exchange rates from the configured provider and record them."

    def add_arguments(self, parser):
        parser.add_argument(
            "--provider",
            help="dotted path of a rate provider class (default: EXCHANGE_RATE_PROVIDER)",
        )

    def handle(self, *args, **options):
        try:
            provider = rate_provider(options["provider"])
        except ImportError as exc:
            raise CommandError(f"cannot load the rate provider: {exc}") from exc
        count = exchange_rates_refresh(provider=provider)
        self.stdout.write(f"recorded {count} exchange rate(s) from the {provider.name} provider")
