import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ambassadors", "0007_counter_shards"),
    ]

    operations = [
        migrations.AddField(
            model_name="program",
            name="click_retention_months",
            field=models.PositiveSmallIntegerField(
                default=13,
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(120),
                ],
            ),
        ),
    ]
