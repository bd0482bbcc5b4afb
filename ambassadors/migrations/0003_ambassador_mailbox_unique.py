"""One ambassador per mailbox in a program; an index for claims, which look profiles up by address.

A migration of its own: on PostgreSQL the previous one moved rows between users, and a table with pending
foreign-key checks cannot be altered in the same transaction.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ambassadors", "0002_ambassador_mailbox_and_claim")]

    operations = [
        migrations.RemoveConstraint(model_name="ambassador", name="ambassador_email_once_per_program"),
        migrations.AddConstraint(
            model_name="ambassador",
            constraint=models.UniqueConstraint(
                fields=("program", "email_canonical"), name="ambassador_mailbox_once_per_program"
            ),
        ),
        migrations.AddIndex(
            model_name="ambassador",
            index=models.Index(fields=["email"], name="ambassador_email"),
        ),
    ]
