"""A purchase carries a copy of its signup's credit (ambassador, status, day of signup), kept in step by the
services, so that the staff analytics sum a period's purchases per ambassador off one covering index,
without joining them to the signups. Existing purchases are filled in from their signups, in batches; the
index is built concurrently on PostgreSQL (hence not atomic), plainly on SQLite."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery

from core.migration_operations import AddIndexConcurrentlyOnPostgres

BATCH = 10_000


def copy_credit(apps, schema_editor):
    Conversion = apps.get_model("referrals", "Conversion")
    Signup = apps.get_model("referrals", "Signup")
    signup = Signup.objects.filter(pk=OuterRef("signup_id"))
    last = 0
    while True:
        ids = list(Conversion.objects.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:BATCH])
        if not ids:
            return
        Conversion.objects.filter(pk__in=ids).update(
            signup_ambassador_id=Subquery(signup.values("ambassador_id")[:1]),
            signup_status=Subquery(signup.values("status")[:1]),
            signup_created_at=Subquery(signup.values("created_at")[:1]),
        )
        last = ids[-1]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("ambassadors", "0008_program_click_retention"),
        ("referrals", "0011_click_partitioned"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversion",
            name="signup_ambassador",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="ambassadors.ambassador",
            ),
        ),
        migrations.AddField(
            model_name="conversion",
            name="signup_created_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="conversion",
            name="signup_status",
            field=models.CharField(blank=True, db_default="", default="", max_length=16),
        ),
        migrations.RunPython(copy_credit, migrations.RunPython.noop),
        AddIndexConcurrentlyOnPostgres(
            model_name="conversion",
            index=models.Index(
                condition=models.Q(("status", "approved")),
                fields=["program", "occurred_at"],
                include=("signup", "amount", "signup_ambassador", "signup_status", "signup_created_at"),
                name="conversion_analytics",
            ),
        ),
    ]
