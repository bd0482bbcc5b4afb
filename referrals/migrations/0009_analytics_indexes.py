"""Indexes of the staff analytics (console/analytics.py), so that a period's human clicks and signups are
counted per day and per ambassador off the indexes alone (index-only scans), and PostgreSQL statistics on a
signup's UTC day, so that the planner knows a period holds a few hundred days (not one group per signup):
it then groups by hashing, in one pass. Built concurrently on PostgreSQL, so that clicks and signups keep
being recorded while they are built (hence not atomic); plainly on SQLite, which ignores INCLUDE and has
no extended statistics."""

from django.db import migrations, models

from core.migration_operations import AddIndexConcurrentlyOnPostgres

UTC_DAY_STATISTICS = "signup_utc_day"


def create_statistics(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("referrals", "Signup")._meta.db_table)
    # The very expression of TruncDate("created_at", tzinfo=UTC) and of console.analytics' SQL.
    schema_editor.execute(
        f"CREATE STATISTICS IF NOT EXISTS {UTC_DAY_STATISTICS} ON ((created_at AT TIME ZONE 'UTC')::date) FROM {table}"
    )
    schema_editor.execute(f"ANALYZE {table}")


def drop_statistics(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP STATISTICS IF EXISTS {UTC_DAY_STATISTICS}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("referrals", "0008_click_flood"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="click",
            index=models.Index(
                condition=models.Q(("is_bot", False)),
                fields=["program", "created_at"],
                include=("ambassador", "flood"),
                name="click_human_analytics",
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="signup",
            index=models.Index(
                fields=["program", "created_at"], include=("status", "ambassador"), name="signup_analytics"
            ),
        ),
        migrations.RunPython(create_statistics, drop_statistics, elidable=False),
    ]
