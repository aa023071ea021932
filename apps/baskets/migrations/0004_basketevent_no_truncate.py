from django.db import migrations

import apps.core.migration_operations


class Migration(migrations.Migration):
    """TRUNCATE fires no row trigger; reject it with a statement trigger (PostgreSQL)."""

    dependencies = [("baskets", "0003_basketcomponent_quantity_and_more")]

    operations = [apps.core.migration_operations.NoTruncate(model_name="basketevent")]
