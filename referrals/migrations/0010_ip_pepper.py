from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("referrals", "0009_analytics_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="IpPepper",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("secret", models.CharField(max_length=64)),
                ("created_at", models.DateTimeField(db_index=True)),
            ],
        ),
    ]
