import os

from apps.core.commands import AuditedCommand
from apps.core.seeding import seed_demo_data, seed_reference_data
from apps.users.services import demo_user_ensure

DEMO_USERS = {
    "admin": {"email": "admin@example.com", "name": "Demo Administrator", "staff": True},
    "customer": {"email": "customer@example.com", "name": "Demo Customer", "staff": False},
    "maria": {"email": "maria@example.com", "name": "Maria Demo", "staff": False},
    "kenji": {"email": "kenji@example.com", "name": "Kenji Demo", "staff": False},
}


class Command(AuditedCommand):
    help = (
        "Create the demo staff superuser and demo customer (password from DEMO_PASSWORD) and the "
        "demo data, then print the logins. For development machines only; safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="printed base URL")

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD") or "finaegis-demo"
        seed_reference_data()
        users = {
            role: demo_user_ensure(password=password, **spec) for role, spec in DEMO_USERS.items()
        }
        seed_demo_data(users)
        base = options["url"].rstrip("/")
        self.stdout.write(
            self.style.SUCCESS("FinAegis demo is ready.")
            + f"\n  Operator console  {base}/admin/"
            + f"\n  REST API          {base}/api/v1/"
            + f"\n  API docs          {base}/api/docs/"
            + f"\n  Health            {base}/healthz"
            + f"\n  Staff login       {users['admin'].email} / {password}"
            + f"\n  Customer login    {users['customer'].email} / {password}"
            + f"\n  More customers    {users['maria'].email}, {users['kenji'].email}"
        )
