from apps.core.commands import AuditedCommand
from apps.custodians.services import custodian_balances_sync


class Command(AuditedCommand):
    help = "Ask each custodian what our omnibus account holds and record it (beat: every 30 min)."

    def add_arguments(self, parser):
        parser.add_argument("--custodian", help="only this custodian code")

    def handle(self, *args, **options):
        failed = 0
        for check in custodian_balances_sync(code=options["custodian"]):
            if not check.ok:
                failed += 1
                self.stderr.write(f"{check.custodian}: {check.error['message']}")
                continue
            shown = ", ".join(f"{asset} {amount}" for asset, amount in check.balances.items())
            self.stdout.write(f"{check.custodian}: {shown or 'no balances'}")
        if failed:
            raise SystemExit(1)
