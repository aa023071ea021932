from apps.core.commands import AuditedCommand
from apps.core.seeding import seed_reference_data


class Command(AuditedCommand):
    help = "Load the reference data every installation needs (idempotent)."

    def handle(self, *args, **options):
        seeded = seed_reference_data()
        self.stdout.write(f"reference data loaded: {', '.join(seeded) or 'none needed'}")
