"""Signups gain their canonical mailbox, filled through the same function the service uses, and one
signup per mailbox in a program replaces one per typed address.

Two rows of one program landing on one mailbox (variants recorded before this release) keep the first;
later ones get a canonical form no address can produce, so the constraint holds and nothing is deleted.
"""

from django.db import migrations, models

from ambassadors.mailbox import canonical_mailbox

BATCH = 1000


def forwards(apps, schema_editor):
    Signup = apps.get_model("referrals", "Signup")
    seen = set()
    batch = []
    for signup in Signup.objects.only("pk", "program_id", "email").order_by("pk").iterator(chunk_size=BATCH):
        canonical = canonical_mailbox(signup.email)
        if (signup.program_id, canonical) in seen:
            canonical = f"{canonical}#legacy-{signup.pk}"
        seen.add((signup.program_id, canonical))
        signup.email_canonical = canonical
        batch.append(signup)
        if len(batch) >= BATCH:
            Signup.objects.bulk_update(batch, ["email_canonical"])
            batch = []
    if batch:
        Signup.objects.bulk_update(batch, ["email_canonical"])


class Migration(migrations.Migration):
    dependencies = [("referrals", "0003_auditevent_moved_to_core")]

    operations = [
        migrations.AddField(
            model_name="signup",
            name="email_canonical",
            field=models.CharField(default="", editable=False, max_length=2048),
            preserve_default=False,
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="signup", name="signup_email_once_per_program"),
        migrations.AddConstraint(
            model_name="signup",
            constraint=models.UniqueConstraint(
                fields=("program", "email_canonical"), name="signup_mailbox_once_per_program"
            ),
        ),
    ]
