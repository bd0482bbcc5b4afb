"""Indexes of the audit console's searches (console/audit/queries.py; the plans are checked with EXPLAIN in
tests/console/audit/test_search.py). Built concurrently on PostgreSQL, so that signups and conversions
keep being recorded while they are built (hence not atomic); plainly on SQLite."""

from django.db import migrations, models

from core.migration_operations import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('ambassadors', '0004_program_share_message_and_labels'),
        ('referrals', '0006_signup_wants_price_news'),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name='conversion',
            index=models.Index(fields=['occurred_at', 'id'], name='conversion_recent'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='conversion',
            index=models.Index(fields=['program', 'occurred_at', 'id'], name='conversion_program_recent'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='conversion',
            index=models.Index(fields=['status', 'occurred_at', 'id'], name='conversion_status_recent'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='conversion',
            index=models.Index(fields=['external_id'], name='conversion_external_id'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='signup',
            index=models.Index(fields=['created_at', 'id'], name='signup_recent'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='signup',
            index=models.Index(fields=['program', 'created_at', 'id'], name='signup_program_recent'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='signup',
            index=models.Index(fields=['ambassador', 'created_at', 'id'], name='signup_ambassador_recent'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='signup',
            index=models.Index(fields=['status', 'created_at', 'id'], name='signup_status_recent'),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='signup',
            index=models.Index(fields=['email'], name='signup_email_pattern', opclasses=['varchar_pattern_ops']),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='signup',
            index=models.Index(fields=['email_canonical'], name='signup_email_canonical'),
        ),
    ]
