import sys

from apps.core.commands import AuditedCommand
from apps.governance.models import Vote
from apps.governance.selectors import vote_verify


class Command(AuditedCommand):
    help = (
        "Verify every vote (or the votes of one poll): its stored event is intact, its HMAC "
        "signature matches poll, user, options, power and time, and the read model agrees. "
        "Exits 1 naming each vote that fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("--poll", help="only the votes of this poll (uuid)")

    def handle(self, *args, **options):
        votes = Vote.objects.order_by("poll_id", "voted_at", "uuid")
        if options["poll"]:
            votes = votes.filter(poll_id=options["poll"])
        checked = failed = 0
        for vote in votes.iterator(chunk_size=1000):
            checked += 1
            verification = vote_verify(vote)
            if not verification.valid:
                failed += 1
                problems = "; ".join(verification.problems)
                self.stdout.write(f"vote {vote.uuid} (poll {vote.poll_id}): {problems}")
        if failed:
            self.stderr.write(f"{failed} of {checked} vote(s) failed verification.")
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS(f"{checked} vote(s) verify."))
