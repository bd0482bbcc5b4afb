"""The one function that writes the audit trail."""

from __future__ import annotations

from typing import Any

from core import clock
from core.actors import Actor
from core.models import AuditEvent
from core.outbox import outbox_write
from core.webhook_events import webhook_data, webhook_events


def audit_record(
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: Any,
    program_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEvent:
    event = AuditEvent.objects.create(
        created_at=clock.now(),
        program_id=program_id,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_label=actor.label[:255],
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=before,
        after=after,
        reason=reason,
    )
    # The webhooks this change announces, in its transaction: written (and sent) only if it commits.
    for name in webhook_events(action=action, before=before, after=after):
        data = webhook_data(object_type=object_type, object_id=object_id, program_id=program_id, after=after)
        outbox_write(
            event=name,
            program_id=program_id,
            payload={"type": name, "timestamp": event.created_at.isoformat(), "data": data},
        )
    return event
