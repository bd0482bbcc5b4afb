"""The audit trail now belongs to core (core 0001 took over the table): referrals forgets the model."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("referrals", "0002_audit_append_only"), ("core", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="AuditEvent")]),
    ]
