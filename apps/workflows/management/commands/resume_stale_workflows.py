from apps.core.commands import AuditedCommand
from apps.workflows.services import workflow_resume_stale


class Command(AuditedCommand):
    help = (
        "Hand to a worker every workflow run whose worker died (its lease expired) or that is "
        "overdue with nobody working on it. Beat runs this every minute."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="at most this many runs")

    def handle(self, *args, **options):
        resumed = workflow_resume_stale(limit=options["limit"])
        for run_uuid in resumed:
            self.stdout.write(f"resumed {run_uuid}")
        self.stdout.write(f"resumed {len(resumed)} workflow run(s)")
