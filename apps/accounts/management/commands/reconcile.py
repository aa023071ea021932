import json

from apps.accounts.reconciliation import ledger_reconcile_recorded
from apps.core.commands import AuditedCommand


class Command(AuditedCommand):
    help = (
        "Prove the ledger: per asset all balances sum to zero, every balance equals the replay of "
        "its events, every journal entry balances, every hash chain verifies, every read model "
        "equals a replay. Exits 1 on any discrepancy."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.add_argument(
            "--skip-replay", action="store_true", help="skip rebuilding read models to compare"
        )

    def handle(self, *args, **options):
        report, _ = ledger_reconcile_recorded(replay=not options["skip_replay"])
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, default=str))
        else:
            self._print_table(report)
        if not report.clean:
            raise SystemExit(1)

    def _print_table(self, report):
        self.stdout.write(f"{'asset':<8}{'sum of balances':>22}")
        for asset, total in report.totals_by_asset.items():
            self.stdout.write(f"{asset:<8}{total:>22}")
        self.stdout.write(
            f"accounts checked: {report.accounts_checked}, "
            f"money events replayed: {report.events_checked}"
        )
        for d in report.discrepancies:
            self.stderr.write(
                f"DISCREPANCY {d.check}: {d.subject}: expected {d.expected}, found {d.found}"
            )
        if report.clean:
            self.stdout.write(self.style.SUCCESS("Ledger reconciles: no discrepancies."))
        else:
            self.stderr.write(self.style.ERROR(f"{len(report.discrepancies)} discrepancies."))
