from apps.core.commands import AuditedCommand
from apps.core.verification import broken_links


class Command(AuditedCommand):
    help = "Walk every event table's hash chains; exit 1 and name the first broken link of each."

    def handle(self, *args, **options):
        links = broken_links()
        if not links:
            self.stdout.write(self.style.SUCCESS("All event chains verify."))
            return
        for link in links:
            self.stderr.write(f"BROKEN {link}")
        self.stderr.write(self.style.ERROR(f"{len(links)} broken chain(s)."))
        raise SystemExit(1)
