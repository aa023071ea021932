from django.db import transaction

from apps.core import store
from apps.core.aggregates import aggregate_class
from apps.core.commands import AuditedCommand
from apps.core.models import AggregateStream, Snapshot


class Command(AuditedCommand):
    help = "Snapshot every aggregate with at least --min-events events since its newest snapshot."

    def add_arguments(self, parser):
        parser.add_argument("--min-events", type=int, default=100)

    def handle(self, *args, **options):
        taken = 0
        for stream in AggregateStream.objects.filter(version__gte=options["min_events"]).iterator():
            newest = (
                Snapshot.objects.filter(aggregate_uuid=stream.uuid)
                .order_by("-aggregate_version")
                .values_list("aggregate_version", flat=True)
                .first()
            ) or 0
            if stream.version - newest < options["min_events"]:
                continue
            with transaction.atomic():
                aggregate = store.load_one(aggregate_class(stream.aggregate_type), stream.uuid)
                taken += store.take_snapshot(aggregate)
        self.stdout.write(f"took {taken} snapshot(s)")
