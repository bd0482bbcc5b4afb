from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ambassadors", "0005_webhooks"),
    ]

    operations = [
        migrations.AddField(
            model_name="program",
            name="attribution_cookie",
            field=models.BooleanField(default=True),
        ),
    ]
