"""Staff roles see customers' deposits and withdrawals and their registered accounts."""

from django.db import migrations

from apps.users.roles import grant, revoke

VIEW = ["custodians.view_custodianmovement", "custodians.view_externalaccount"]
ROLES = {"operator": VIEW, "compliance": VIEW, "administrator": VIEW}


class Migration(migrations.Migration):
    dependencies = [("custodians", "0003_movements_external_accounts")]

    operations = [
        migrations.RunPython(
            lambda apps, _: grant(apps, ROLES), lambda apps, _: revoke(apps, ROLES)
        )
    ]
