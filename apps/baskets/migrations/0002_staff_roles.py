"""Basket and bank-allocation permissions for the staff groups."""

from django.db import migrations

from apps.users.roles import grant, revoke

VIEW = [
    "baskets.view_basketasset",
    "baskets.view_basketcomponent",
    "baskets.view_basketcompositionchange",
    "baskets.view_basketvalue",
    "baskets.view_basketoperation",
    "baskets.view_partnerbank",
    "baskets.view_bankallocationentry",
    "baskets.view_basketevent",
]
ROLES = {
    "operator": VIEW,
    "compliance": VIEW,
    # Runs the bank: rebalances, activates and deactivates baskets.
    "administrator": [*VIEW, "baskets.rebalance_basket"],
}


class Migration(migrations.Migration):
    dependencies = [
        ("baskets", "0001_initial"),
        ("users", "0003_staff_groups"),
    ]

    operations = [
        migrations.RunPython(
            lambda apps, _: grant(apps, ROLES), lambda apps, _: revoke(apps, ROLES)
        )
    ]
