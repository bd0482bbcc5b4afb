"""Each signup carries the channel link of the click that credited it (the dashboard's counts per link).

The column is added empty (no table rewrite), then filled from the clicks in one statement: on PostgreSQL
an UPDATE ... FROM that PostgreSQL can run as one hash join over the partitions, elsewhere a correlated
subquery. Signups without a click, or whose click came through the main link, stay NULL.
"""

import django.db.models.deletion
from django.db import migrations, models


def copy_links(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        sql = (
            "UPDATE referrals_signup s SET link_id = c.link_id FROM referrals_click c "
            "WHERE c.id = s.click_id AND c.link_id IS NOT NULL AND s.click_id IS NOT NULL"
        )
    else:
        sql = (
            "UPDATE referrals_signup SET link_id = (SELECT c.link_id FROM referrals_click c "
            "WHERE c.id = referrals_signup.click_id) WHERE click_id IS NOT NULL"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("referrals", "0014_weekly_rollups"),
    ]

    operations = [
        migrations.AddField(
            model_name="signup",
            name="link",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="referrals.referrallink",
            ),
        ),
        migrations.RunPython(copy_links, migrations.RunPython.noop, elidable=True),
    ]
