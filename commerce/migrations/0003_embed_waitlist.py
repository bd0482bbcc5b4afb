"""The embedded dashboard's single-use tokens, and waitlists: their settings and who was admitted."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):


    dependencies = [
        ('ambassadors', '0005_webhooks'),
        ('commerce', '0001_initial'),
        ('referrals', '0012_analytics_rollups'),
    ]

    operations = [
        migrations.CreateModel(
            name='WaitlistSettings',
            fields=[
                ('program', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='waitlist', serialize=False, to='ambassadors.program')),
                ('enabled', models.BooleanField(default=False)),
                ('places_per_referral', models.PositiveIntegerField(default=10)),
                ('notified_through_signup_id', models.BigIntegerField(default=0)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'verbose_name_plural': 'waitlist settings',
            },
        ),
        migrations.CreateModel(
            name='EmbedToken',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('jti', models.CharField(max_length=32, unique=True)),
                ('created_at', models.DateTimeField()),
                ('expires_at', models.DateTimeField()),
                ('used_at', models.DateTimeField(blank=True, null=True)),
                ('ambassador', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='ambassadors.ambassador')),
                ('program', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='ambassadors.program')),
            ],
            options={
                'indexes': [models.Index(fields=['expires_at'], name='embed_token_expiry')],
            },
        ),
        migrations.CreateModel(
            name='WaitlistAdmission',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.PositiveIntegerField()),
                ('admitted_at', models.DateTimeField()),
                ('admitted_by', models.CharField(max_length=255)),
                ('program', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='ambassadors.program')),
                ('signup', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='waitlist_admission', to='referrals.signup')),
            ],
            options={
                'indexes': [models.Index(fields=['program', 'admitted_at'], name='waitlist_admitted_recent')],
            },
        ),
    ]
