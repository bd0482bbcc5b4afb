"""The audit trail moves from referrals to core (same rows, table renamed); pseudonyms and the outbox."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import core.models

RENAME_TRIGGER = """
ALTER TRIGGER referrals_auditevent_append_only ON core_auditevent RENAME TO core_auditevent_append_only;
ALTER FUNCTION referrals_auditevent_append_only() RENAME TO core_auditevent_append_only;
"""
RENAME_TRIGGER_BACK = """
ALTER TRIGGER core_auditevent_append_only ON core_auditevent RENAME TO referrals_auditevent_append_only;
ALTER FUNCTION core_auditevent_append_only() RENAME TO referrals_auditevent_append_only;
"""


def rename_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(RENAME_TRIGGER, params=None)


def rename_trigger_back(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(RENAME_TRIGGER_BACK, params=None)


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("referrals", "0002_audit_append_only"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The table referrals created becomes core's: state first, then the rename (the trigger follows it).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("created_at", models.DateTimeField(db_index=True)),
                        ("program_id", models.BigIntegerField(db_index=True, null=True)),
                        (
                            "actor_type",
                            models.CharField(
                                choices=[
                                    ("user", "User"),
                                    ("api_key", "API key"),
                                    ("task", "Task"),
                                    ("system", "System"),
                                    ("visitor", "Visitor"),
                                ],
                                max_length=8,
                            ),
                        ),
                        ("actor_id", models.CharField(blank=True, max_length=64)),
                        ("actor_label", models.CharField(blank=True, max_length=255)),
                        ("action", models.CharField(db_index=True, max_length=64)),
                        ("object_type", models.CharField(max_length=64)),
                        ("object_id", models.CharField(max_length=64)),
                        ("before", models.JSONField(blank=True, null=True)),
                        ("after", models.JSONField(blank=True, null=True)),
                        ("reason", models.TextField(blank=True)),
                    ],
                    options={
                        "ordering": ["-created_at", "-id"],
                        "indexes": [models.Index(fields=["object_type", "object_id"], name="audit_object")],
                        "db_table": "referrals_auditevent",
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name="auditevent", table=None),
        migrations.RunPython(rename_trigger, rename_trigger_back),
        migrations.CreateModel(
            name="ActorPseudonym",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("token", models.CharField(default=core.models._new_token, editable=False, max_length=32, unique=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "user",
                    models.OneToOneField(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="audit_pseudonym",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="OutboxMessage",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("event", models.CharField(max_length=64)),
                ("program_id", models.BigIntegerField(db_index=True, null=True)),
                ("payload", models.JSONField()),
                ("created_at", models.DateTimeField()),
                ("dispatched_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ["id"],
                "indexes": [
                    models.Index(
                        condition=models.Q(("dispatched_at__isnull", True)), fields=["id"], name="outbox_pending"
                    )
                ],
            },
        ),
    ]
