"""An index for the first-click lookup of a visitor (referrals.services.attribution), partial: clicks with
a visitor id, not bots.

The click table is the largest and the redirect writes to it all the time: on PostgreSQL the index is
built CONCURRENTLY, so that redirects keep being recorded while it is built (which is why this migration
is not atomic). SQLite, the embedded default, builds it the plain way.
"""

from django.db import migrations, models

from core.migration_operations import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("ambassadors", "0003_ambassador_mailbox_unique"),
        ("referrals", "0004_signup_email_canonical"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="click",
            index=models.Index(
                condition=models.Q(models.Q(("visitor_id", ""), _negated=True), ("is_bot", False)),
                fields=["program", "visitor_id", "created_at"],
                name="click_visitor_first_click",
            ),
        ),
    ]
