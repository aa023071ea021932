"""Maker-checker and console permissions for the staff groups."""

from django.db import migrations

from apps.users.roles import grant, revoke

ROLES = {
    "operator": ["payments.view_movementrequest", "payments.approve_movementrequest"],
    "compliance": ["payments.view_movementrequest"],
    "administrator": ["payments.view_movementrequest", "payments.approve_movementrequest"],
}


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0003_staff_groups"),
        ("payments", "0003_movement_requests"),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, _: grant(apps, ROLES), lambda apps, _: revoke(apps, ROLES)
        )
    ]
