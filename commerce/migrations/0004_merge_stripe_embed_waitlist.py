from django.db import migrations


class Migration(migrations.Migration):
    """Stripe (0002) and the embedded dashboard and waitlists (0003) were written side by side."""

    dependencies = [
        ("commerce", "0002_stripe"),
        ("commerce", "0003_embed_waitlist"),
    ]

    operations = []
