from pathlib import Path

from django.core.management.base import CommandError

from apps.core.checkpoints import CheckpointUnreadable, checkpoint_regressions, latest_checkpoint
from apps.core.commands import AuditedCommand
from apps.core.verification import broken_links


class Command(AuditedCommand):
    help = (
        "Walk every event table's hash chains; exit 1 and name the first broken link of each. "
        "With --checkpoint FILE also name what went backwards since FILE's latest checkpoint."
    )

    def add_arguments(self, parser):
        parser.add_argument("--checkpoint", type=Path, metavar="FILE")

    def handle(self, *args, checkpoint: Path | None = None, **options):
        regressions = self._regressions(checkpoint) if checkpoint else []
        links = broken_links()
        if not links and not regressions:
            self.stdout.write(self.style.SUCCESS("All event chains verify."))
            return
        for link in links:
            self.stderr.write(f"BROKEN {link}")
        for regression in regressions:
            self.stderr.write(f"BACKWARDS {regression}")
        if links:
            self.stderr.write(self.style.ERROR(f"{len(links)} broken chain(s)."))
        if regressions:
            self.stderr.write(
                self.style.ERROR(f"{len(regressions)} regression(s) since the checkpoint.")
            )
        raise SystemExit(1)

    def _regressions(self, path: Path):
        try:
            return checkpoint_regressions(latest_checkpoint(path))
        except CheckpointUnreadable as error:
            raise CommandError(str(error)) from error
