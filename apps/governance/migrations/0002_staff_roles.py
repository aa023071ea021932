"""Governance permissions for the staff groups."""

from django.db import migrations

from apps.users.roles import grant, revoke

VIEW = ["governance.view_poll", "governance.view_vote", "governance.view_governanceevent"]
ROLES = {
    "operator": VIEW,
    # Investigations: may check that votes are genuine.
    "compliance": [*VIEW, "governance.verify_vote"],
    # Runs the bank: creates, activates, closes and cancels polls.
    "administrator": [*VIEW, "governance.verify_vote", "governance.manage_poll"],
}


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0001_initial"),
        ("users", "0003_staff_groups"),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, _: grant(apps, ROLES), lambda apps, _: revoke(apps, ROLES)
        )
    ]
