"""What every layer writes and no domain owns: the audit trail, actors' pseudonyms, the outbox of events."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """Append-only: on PostgreSQL a trigger refuses UPDATE and DELETE on this table."""

    class ActorType(models.TextChoices):
        USER = "user", "User"
        API_KEY = "api_key", "API key"
        TASK = "task", "Task"
        SYSTEM = "system", "System"
        VISITOR = "visitor", "Visitor"

    created_at = models.DateTimeField(db_index=True)
    # Plain ids and labels rather than foreign keys: deleting a user must not rewrite the trail.
    program_id = models.BigIntegerField(null=True, db_index=True)
    actor_type = models.CharField(max_length=8, choices=ActorType.choices)
    # For a person, a pseudonym (ActorPseudonym.token), never an e-mail: the row outlives an erasure.
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=255, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.object_type}:{self.object_id}"


def _new_token() -> str:
    return "u_" + secrets.token_hex(10)


class ActorPseudonym(models.Model):
    """The id a person acts under in the audit trail.

    Audit rows hold the token, never the person's name or e-mail. Erasing a person deletes this row (or
    the user): the trail keeps every decision and no longer says whose it was.
    """

    token = models.CharField(max_length=32, unique=True, default=_new_token, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="audit_pseudonym"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.token


class OutboxMessage(models.Model):
    """An event to deliver outside (webhooks), written in the transaction of the change it announces.

    The broker may be down when the change commits: the row is still there, and a dispatcher sends it.
    """

    event = models.CharField(max_length=64)
    program_id = models.BigIntegerField(null=True, db_index=True)
    payload = models.JSONField()
    created_at = models.DateTimeField()
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], condition=models.Q(dispatched_at__isnull=True), name="outbox_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.event} #{self.pk}"
