"""The audit trail's keyset index: pages newest first on (created_at, id), and the position of a page,
(created_at, id) < (t, n), is an index condition (console/audit/trail.py; EXPLAIN in
tests/console/audit/test_trail.py). Built concurrently on PostgreSQL (the trail only grows, and writes go on meanwhile); plainly on SQLite."""

from django.db import migrations, models

from core.migration_operations import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("core", "0003_user_preference"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="auditevent",
            index=models.Index(fields=["created_at", "id"], name="audit_created_id"),
        ),
    ]
