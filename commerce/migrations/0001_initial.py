from django.db import migrations


class Migration(migrations.Migration):
    """The commerce app's first migration: its models come in the migrations that follow."""

    initial = True

    dependencies = [
        ("ambassadors", "0005_webhooks"),
        ("rewards", "0004_voucher_expiry"),
    ]

    operations = []
