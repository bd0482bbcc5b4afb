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
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
            # The trail's keyset, newest first: (created_at, id) < (the last row shown) is an index condition.
            models.Index(fields=["created_at", "id"], name="audit_created_id"),
        ]

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


class Notification(models.Model):
    """The marker that lets one e-mail go at most once to one recipient for one event.

    A sender claims (event_key, recipient) before it sends and marks it sent after: a redelivered task
    finds the claim and sends nothing. A failed send gives the claim back (released_at), and a sender that
    died mid-send leaves a claim that expires after its lease, so the e-mail is not lost either.
    """

    # `reward.unlocked:grant:12`, `signup.attributed:signup:45`, `price.dropped:milestone:7`.
    event_key = models.CharField(max_length=120)
    # The canonical mailbox (ambassadors.mailbox): two spellings of one mailbox get one e-mail.
    recipient = models.CharField(max_length=2048)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            # At most once, whatever the number of workers or deliveries: the database says no.
            models.UniqueConstraint(fields=["event_key", "recipient"], name="notification_once_per_event_recipient"),
        ]

    def __str__(self) -> str:
        return f"{self.event_key} to {self.recipient} ({'sent' if self.sent_at else 'pending'})"


class EmailOptOut(models.Model):
    """A recipient who unsubscribed from one kind of bulk e-mail of one program (RFC 8058 one-click).

    Holds a digest of the canonical mailbox (core.notifications.mailbox_digest), not the address: the
    unsubscribe link carries the same digest, so no address travels in URLs or access logs.
    """

    mailbox_digest = models.CharField(max_length=64)
    program_id = models.BigIntegerField()
    kind = models.CharField(max_length=32)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox_digest", "program_id", "kind"], name="email_opt_out_once"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of program {self.program_id} off for {self.mailbox_digest[:8]}…"


class UserPreference(models.Model):
    """What a person chose for themselves: the language of their pages and of the e-mails they get."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="preference"
    )
    language = models.CharField(max_length=8, blank=True)

    def __str__(self) -> str:
        return f"preferences of user {self.user_id}"
