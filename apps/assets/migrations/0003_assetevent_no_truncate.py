from django.db import migrations

import apps.core.migration_operations


class Migration(migrations.Migration):
    """TRUNCATE fires no row trigger; reject it with a statement trigger (PostgreSQL)."""

    dependencies = [("assets", "0002_rate_status_and_reverse")]

    operations = [apps.core.migration_operations.NoTruncate(model_name="assetevent")]
