from pathlib import Path

from apps.core.checkpoints import checkpoint_append
from apps.core.commands import AuditedCommand


class Command(AuditedCommand):
    help = (
        "Append a signed checkpoint (each event table's max id and count, every stream head) "
        "as one JSON line to FILE; ship the file off the machine for verify_events --checkpoint."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, type=Path, metavar="FILE")

    def handle(self, *args, out: Path, **options):
        checkpoint = checkpoint_append(out)
        self.stdout.write(
            f"Checkpoint of {len(checkpoint['heads'])} stream head(s) and "
            f"{len(checkpoint['tables'])} event table(s) appended to {out}."
        )
