"""Staff roles as groups with model permissions: operator, compliance, administrator."""

from django.db import migrations

from apps.users.roles import grant

VIEW_LEDGER = [
    "accounts.view_account",
    "accounts.view_accountbalance",
    "accounts.view_turnover",
    "accounts.view_accountevent",
    "payments.view_transfer",
    "payments.view_paymentevent",
    "assets.view_asset",
    "assets.view_exchangerate",
    "assets.view_ratedeviation",
    "assets.view_assetevent",
]

ROLES = {
    # Day-to-day servicing: deposits and withdrawals for customers, freezing on suspicion.
    "operator": [*VIEW_LEDGER, "accounts.transact_account", "accounts.freeze_account"],
    # Investigations: sees everything of the ledger, freezes, reverses; moves no money itself.
    "compliance": [
        *VIEW_LEDGER,
        "accounts.freeze_account",
        "payments.reverse_transfer",
        "users.view_user",
    ],
    # Runs the bank: every ledger and reference-data permission.
    "administrator": [
        *VIEW_LEDGER,
        "accounts.transact_account",
        "accounts.freeze_account",
        "accounts.close_account",
        "payments.reverse_transfer",
        "assets.change_asset",
        "assets.add_exchangerate",
        "assets.change_exchangerate",
        "users.view_user",
        "users.change_user",
    ],
}


def create_roles(apps, schema_editor):
    grant(apps, ROLES)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0002_api_token"),
        ("accounts", "0002_permissions"),
        ("payments", "0002_permissions"),
        ("assets", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
