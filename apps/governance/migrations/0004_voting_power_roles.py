"""Staff who see polls also see the voting power each poll fixed at activation."""

from django.db import migrations

from apps.users.roles import grant, revoke

ROLES = {
    role: ["governance.view_votingpower"] for role in ("operator", "compliance", "administrator")
}


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0003_voting_power_snapshot"),
        ("users", "0003_staff_groups"),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, _: grant(apps, ROLES), lambda apps, _: revoke(apps, ROLES)
        )
    ]
