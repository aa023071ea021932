import json

from apps.accounts.reconciliation import ledger_reconcile_recorded
from apps.core.commands import AuditedCommand


class Command(AuditedCommand):
    help = (
        "Prove the ledger: per asset all balances sum to zero, every balance equals the replay of "
        "its events, every journal entry balances and has exactly the postings its transfer, "
        "reversal or basket operation describes, every hash chain verifies and every stream head "
        "is the last event of its chain, every snapshot equals a replay, every read model equals "
        "a replay, and every custodian holds what its settlement account says. Prints each "
        "finding on its own line; exits 1 on any."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.add_argument(
            "--skip-replay", action="store_true", help="skip rebuilding read models to compare"
        )
        parser.add_argument(
            "--skip-custodians",
            action="store_true",
            help="skip asking the custodians what they hold",
        )

    def handle(self, *args, **options):
        report, _ = ledger_reconcile_recorded(
            replay=not options["skip_replay"], custodians=not options["skip_custodians"]
        )
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
            f"money events replayed: {report.events_checked}, "
            f"entries matched: {report.entries_checked}, "
            f"snapshots replayed: {report.snapshots_checked}"
        )
        for custodian in report.custodians:
            state = "unreachable"
            if custodian["reachable"]:
                state = "reconciles" if custodian["clean"] else "differs"
            self.stdout.write(f"custodian {custodian['custodian']}: {state}")
        for d in report.discrepancies:
            if d.check == "custodian_unreachable":
                self.stderr.write(f"UNREACHABLE custodian {d.subject}: {d.found}")
            else:
                self.stderr.write(
                    f"DISCREPANCY {d.check}: {d.subject}: expected {d.expected}, found {d.found}"
                )
        if report.clean:
            self.stdout.write(self.style.SUCCESS("Ledger reconciles: no discrepancies."))
        else:
            self.stderr.write(self.style.ERROR(f"{len(report.discrepancies)} discrepancies."))
