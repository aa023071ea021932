from django.core.management.base import CommandError

from apps.core.commands import AuditedCommand
from apps.core.models import event_models
from apps.core.replay import rebuild_projections


class Command(AuditedCommand):
    help = "Rebuild read models by replaying the event tables (all apps, or the ones named)."

    def add_arguments(self, parser):
        parser.add_argument("apps", nargs="*", help="app labels, e.g. accounts payments")
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args, **options):
        known = [m._meta.app_label for m in event_models()]
        wanted = options["apps"] or known
        unknown = sorted(set(wanted) - set(known))
        if unknown:
            raise CommandError(
                f"no event table in: {', '.join(unknown)}; known: {', '.join(known)}"
            )
        for app_label in wanted:
            count = rebuild_projections(app_label, batch_size=options["batch_size"])
            self.stdout.write(f"{app_label}: replayed {count} events")
