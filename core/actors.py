"""Who did something: a person, an API key, a task, the system, or an anonymous visitor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.models import ActorPseudonym, AuditEvent
from core.roles import is_staff_member


@dataclass(frozen=True)
class Actor:
    type: str
    id: str = ""
    label: str = ""

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(AuditEvent.ActorType.SYSTEM, "", label)

    @classmethod
    def task(cls, name: str) -> Actor:
        return cls(AuditEvent.ActorType.TASK, "", name)

    @classmethod
    def visitor(cls) -> Actor:
        return cls(AuditEvent.ActorType.VISITOR, "", "visitor")

    @classmethod
    def for_user(cls, user: Any) -> Actor:
        # Staff act under their username, which an auditor needs to read; customers' usernames are their
        # e-mails, so they appear by pseudonym only.
        label = user.get_username() if (user.is_staff or is_staff_member(user)) else ""
        return cls(AuditEvent.ActorType.USER, pseudonym_of(user), label)

    @classmethod
    def for_api_key(cls, key: Any) -> Actor:
        return cls(AuditEvent.ActorType.API_KEY, str(key.pk), key.prefix)

    @classmethod
    def for_request(cls, request: Any) -> Actor:
        # request.auth is set only by the bearer-key authentication (ambassadors.auth): sessions leave it None.
        key = getattr(request, "auth", None)
        if key is not None:
            return cls.for_api_key(key)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return cls.for_user(user)
        return cls.visitor()


def pseudonym_of(user: Any) -> str:
    """The stable token a user acts under in the audit trail (created on first use)."""
    pseudonym, _ = ActorPseudonym.objects.get_or_create(user=user)
    return pseudonym.token
