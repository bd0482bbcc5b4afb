"""Stripe: each program's settings, which conversion a payment belongs to, and vouchers as promotion codes."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('commerce', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='StripeAccount',
            fields=[
                ('program', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='stripe_account', serialize=False, to='ambassadors.program')),
                ('webhook_secret', models.CharField(blank=True, max_length=200)),
                ('api_key', models.CharField(blank=True, max_length=255)),
                ('promotion_codes_enabled', models.BooleanField(default=False)),
                ('webhook_secret_set_at', models.DateTimeField(blank=True, null=True)),
                ('api_key_set_at', models.DateTimeField(blank=True, null=True)),
                ('last_event_at', models.DateTimeField(blank=True, null=True)),
                ('last_event_type', models.CharField(blank=True, max_length=100)),
            ],
        ),
        migrations.CreateModel(
            name='StripePaymentLink',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('stripe_id', models.CharField(max_length=255)),
                ('external_id', models.CharField(max_length=128)),
                ('created_at', models.DateTimeField()),
                ('program', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='ambassadors.program')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('program', 'stripe_id'), name='stripe_payment_link_once')],
            },
        ),
        migrations.CreateModel(
            name='StripePromotionCode',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('voucher_code', models.CharField(max_length=32)),
                ('coupon_id', models.CharField(blank=True, max_length=255)),
                ('promotion_code_id', models.CharField(blank=True, max_length=255)),
                ('created_at', models.DateTimeField()),
                ('completed_at', models.DateTimeField(blank=True, null=True)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('last_error', models.CharField(blank=True, max_length=500)),
                ('grant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='rewards.rewardgrant')),
                ('program', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='ambassadors.program')),
            ],
            options={
                'indexes': [models.Index(fields=['program', 'promotion_code_id'], name='stripe_promo_by_code_id'), models.Index(fields=['program', 'coupon_id'], name='stripe_promo_by_coupon_id')],
                'constraints': [models.UniqueConstraint(fields=('grant', 'voucher_code'), name='stripe_promotion_code_once')],
            },
        ),
    ]
