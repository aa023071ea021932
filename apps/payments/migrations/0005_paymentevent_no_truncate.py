from django.db import migrations

import apps.core.migration_operations


class Migration(migrations.Migration):
    """TRUNCATE fires no row trigger; reject it with a statement trigger (PostgreSQL)."""

    dependencies = [("payments", "0004_staff_movement_reason")]

    operations = [apps.core.migration_operations.NoTruncate(model_name="paymentevent")]
