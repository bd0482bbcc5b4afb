"""Who did something, and the append-only record of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from referrals.models import AuditEvent


@dataclass(frozen=True)
class Actor:
    type: str
    id: str = ""
    label: str = ""

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(AuditEvent.ActorType.SYSTEM, "", label)

    @classmethod
    def visitor(cls) -> Actor:
        return cls(AuditEvent.ActorType.VISITOR, "", "visitor")

    @classmethod
    def for_user(cls, user: Any) -> Actor:
        return cls(AuditEvent.ActorType.USER, str(user.pk), user.get_username())

    @classmethod
    def for_api_key(cls, key: Any) -> Actor:
        return cls(AuditEvent.ActorType.API_KEY, str(key.pk), key.prefix)

    @classmethod
    def for_request(cls, request: Any) -> Actor:
        from ambassadors.models import ApiKey

        auth = getattr(request, "auth", None)
        if isinstance(auth, ApiKey):
            return cls.for_api_key(auth)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return cls.for_user(user)
        return cls.visitor()


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
        created_at=timezone.now(),
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
