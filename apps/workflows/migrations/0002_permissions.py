"""Staff roles: who sees workflow runs and scheduled jobs, and who may retry or compensate."""

from django.db import migrations

from apps.users.roles import grant, revoke

VIEW = ["workflows.view_workflowrun", "workflows.view_workflowevent", "workflows.view_jobrun"]
ROLES = {
    "operator": [*VIEW, "workflows.operate_workflowrun"],
    "compliance": VIEW,
    "administrator": [*VIEW, "workflows.operate_workflowrun"],
}


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0001_initial"),
        ("users", "0003_staff_groups"),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, _: grant(apps, ROLES), lambda apps, _: revoke(apps, ROLES)
        )
    ]
