"""Staff roles: who sees custodians' health, balances and discrepancies, and who may resolve a
discrepancy or reset a circuit breaker."""

from django.db import migrations

from apps.users.roles import grant, revoke

VIEW = [
    "custodians.view_circuitbreakerstate",
    "custodians.view_custodianbalance",
    "custodians.view_custodianreconciliation",
    "custodians.view_custodiandiscrepancy",
    "custodians.view_custodianwebhookevent",
    "custodians.view_custodianevent",
    "custodians.view_mockbankaccount",
    "custodians.view_mockbanktransaction",
]
ROLES = {
    "operator": [*VIEW, "custodians.reset_circuitbreakerstate"],
    "compliance": [*VIEW, "custodians.resolve_custodiandiscrepancy"],
    "administrator": [
        *VIEW,
        "custodians.reset_circuitbreakerstate",
        "custodians.resolve_custodiandiscrepancy",
    ],
}


class Migration(migrations.Migration):
    dependencies = [
        ("custodians", "0001_initial"),
        ("users", "0003_staff_groups"),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, _: grant(apps, ROLES), lambda apps, _: revoke(apps, ROLES)
        )
    ]
