# A program's counters move by rows folded in by a worker, not by an UPDATE of its one counters row per signup.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ambassadors", "0006_program_attribution_cookie"),
    ]

    operations = [
        migrations.CreateModel(
            name="ProgramCounterDelta",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("signups", models.IntegerField(default=0)),
                ("qualified", models.IntegerField(default=0)),
                (
                    "program",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="ambassadors.program",
                    ),
                ),
            ],
        ),
    ]
