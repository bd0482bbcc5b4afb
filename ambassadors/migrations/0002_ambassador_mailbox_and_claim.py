"""Ambassadors gain their canonical mailbox and a claim time; profiles bound to an account that never proved
the address (the takeover this release closes) go back to a placeholder that waits for the real owner.

Existing rows are sorted out as follows:
- the account verified the address (allauth `EmailAddress.verified`): claimed, it stays;
- the account holds the address unverified (it typed it into the signup form): the profile moves to a
  placeholder account for the address, to be claimed by whoever proves it;
- the old placeholder made by enrolment (username = the address, no usable password, never signed in):
  renamed into the placeholder namespace and given its unverified address, so a log-in code reaches it;
- any other account (made by an admin or named by a trusted caller): claimed, it stays.
Two rows of one program landing on one mailbox keep the first; later ones get a canonical form no address
can produce, so the new unique constraint (next migration) holds and nothing is deleted.
"""

import hashlib

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import migrations, models

from ambassadors.mailbox import canonical_mailbox

BATCH = 1000


def placeholder_username(email: str) -> str:
    # Frozen copy of ambassadors.services.placeholder_username: `~` is refused by every signup and admin
    # form (Django's username validator), so nobody can register a name in this namespace.
    name = f"~{email}"
    if len(name) <= 150:
        return name
    return f"~{email[:84]}+{hashlib.sha256(email.encode()).hexdigest()}"


def _old_placeholder_username(email: str) -> str:
    # What ambassadors.services._username_for made before this release.
    if len(email) <= 150:
        return email
    return f"{email[:85]}+{hashlib.sha256(email.encode()).hexdigest()}"


def forwards(apps, schema_editor):
    Ambassador = apps.get_model("ambassadors", "Ambassador")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    EmailAddress = apps.get_model("account", "EmailAddress")

    def placeholder_for(email):
        user, created = User.objects.get_or_create(
            username=placeholder_username(email), defaults={"email": email, "password": make_password(None)}
        )
        EmailAddress.objects.get_or_create(user=user, email=email, defaults={"verified": False, "primary": True})
        return user

    seen = set()
    batch = []
    for ambassador in Ambassador.objects.select_related("user").order_by("pk").iterator(chunk_size=BATCH):
        canonical = canonical_mailbox(ambassador.email)
        if (ambassador.program_id, canonical) in seen:
            canonical = f"{canonical}#legacy-{ambassador.pk}"
        seen.add((ambassador.program_id, canonical))
        ambassador.email_canonical = canonical

        user = ambassador.user
        address = ambassador.email.lower()
        proofs = list(EmailAddress.objects.filter(user_id=user.pk, email__iexact=address))
        if any(proof.verified for proof in proofs):
            ambassador.claimed_at = ambassador.created_at
        elif proofs:
            ambassador.user = placeholder_for(address)
        elif (
            user.username in (_old_placeholder_username(address), placeholder_username(address))
            and user.password.startswith("!")
            and user.last_login is None
        ):
            if user.username != placeholder_username(address):
                user.username = placeholder_username(address)
                user.save(update_fields=["username"])
            EmailAddress.objects.get_or_create(user=user, email=address, defaults={"verified": False, "primary": True})
        else:
            ambassador.claimed_at = ambassador.created_at
        batch.append(ambassador)
        if len(batch) >= BATCH:
            Ambassador.objects.bulk_update(batch, ["email_canonical", "claimed_at", "user"])
            batch = []
    if batch:
        Ambassador.objects.bulk_update(batch, ["email_canonical", "claimed_at", "user"])


class Migration(migrations.Migration):
    dependencies = [
        ("ambassadors", "0001_initial"),
        ("account", "0009_emailaddress_unique_primary_email"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="ambassador",
            name="email_canonical",
            field=models.CharField(default="", editable=False, max_length=2048),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="ambassador",
            name="claimed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
