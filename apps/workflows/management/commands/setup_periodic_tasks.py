from apps.core.commands import AuditedCommand
from apps.workflows.services import periodic_jobs_install


class Command(AuditedCommand):
    help = (
        "Install the scheduled jobs every app declares (AppConfig.periodic_jobs) into "
        "django-celery-beat's tables, which beat reads. Idempotent: run it on every deploy."
    )

    def handle(self, *args, **options):
        report = periodic_jobs_install()
        for label, names in (
            ("created", report.created),
            ("updated", report.updated),
            ("disabled", report.disabled),
        ):
            for name in names:
                self.stdout.write(f"{label}: {name}")
        self.stdout.write(
            f"periodic tasks: {len(report.created)} created, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged, {len(report.disabled)} disabled"
        )
