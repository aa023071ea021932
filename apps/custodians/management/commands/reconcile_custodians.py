from apps.core.commands import AuditedCommand
from apps.custodians.services import custodian_reconcile


class Command(AuditedCommand):
    help = (
        "Compare what each custodian holds with its settlement account in the ledger; record "
        "the comparison and a discrepancy per asset that differs. Exits 1 on any discrepancy or "
        "unreachable custodian (beat: daily 02:30)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--custodian", help="only this custodian code")

    def handle(self, *args, **options):
        trouble = 0
        for check in custodian_reconcile(code=options["custodian"]):
            if not check.ok:
                trouble += 1
                self.stderr.write(f"{check.custodian}: unreachable: {check.error['message']}")
                continue
            for row in check.reconciliation.results:
                line = (
                    f"{check.custodian} {row['asset_code']}: ledger expects "
                    f"{row['expected']}, custodian holds {row['custodian_balance']}"
                )
                if row["difference"]:
                    trouble += 1
                    self.stderr.write(f"DISCREPANCY {line} (difference {row['difference']:+d})")
                else:
                    self.stdout.write(line)
            if check.reconciliation.clean:
                self.stdout.write(self.style.SUCCESS(f"{check.custodian} reconciles."))
        if trouble:
            raise SystemExit(1)
