"""The audit trail's one exception to append-only: the redaction an erasure declares.

The trigger still refuses every DELETE, and every UPDATE but one: inside the transaction of an erasure
(rewards.services.privacy), which first writes its `person.erased` event listing the ids of the events
it redacts, then names that event in the transaction-local setting `parrain.audit_erasure_event`. An
UPDATE then passes only for an event that list names, only when it changes nothing but `before`,
`after`, `reason` and `actor_label` (what may hold the erased person's e-mail, name or order numbers),
and never for a `person.erased` event itself. Every redaction is thus declared, for good, by an event
nobody can change. (SQLite, the development default, has no trigger at all.)
"""

from django.db import migrations

REDACTING = """
CREATE OR REPLACE FUNCTION core_auditevent_append_only() RETURNS trigger AS $$
DECLARE
    erasure text := current_setting('parrain.audit_erasure_event', true);
BEGIN
    IF TG_OP = 'UPDATE' AND erasure ~ '^[0-9]+$'
       AND OLD.action <> 'person.erased'
       AND NEW.id = OLD.id
       AND NEW.created_at = OLD.created_at
       AND NEW.program_id IS NOT DISTINCT FROM OLD.program_id
       AND NEW.actor_type = OLD.actor_type
       AND NEW.actor_id = OLD.actor_id
       AND NEW.action = OLD.action
       AND NEW.object_type = OLD.object_type
       AND NEW.object_id = OLD.object_id
       AND EXISTS (
           SELECT 1 FROM core_auditevent erased
           WHERE erased.id = erasure::bigint
             AND erased.action = 'person.erased'
             AND (erased.after -> 'redacted_events') @> to_jsonb(OLD.id)
       )
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

STRICT = """
CREATE OR REPLACE FUNCTION core_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REDACTING, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(STRICT, params=None)


class Migration(migrations.Migration):
    dependencies = [("core", "0004_audit_event_keyset_index")]

    operations = [migrations.RunPython(forwards, backwards)]
