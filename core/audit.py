"""The one function that writes the audit trail."""

from __future__ import annotations

from typing import Any

from core import clock
from core.actors import Actor
from core.models import AuditEvent


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
    return AuditEvent.objects.create(
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
