"""E-mails sent at most once per recipient and event, in the recipient's language, with a one-click unsubscribe.

Celery delivers a task at least once. Each e-mail is claimed in the database before it goes
(core.models.Notification, unique per event and recipient), so a redelivered task finds the claim and sends
nothing; a failed send gives the claim back so that the retry sends it. Callers pass the recipient's
canonical mailbox (ambassadors.mailbox), so two spellings of one mailbox get one e-mail.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from core.actors import Actor
from core.audit import audit_record
from core.clock import now
from core.models import EmailOptOut, Notification, UserPreference
from core.text import one_line

# A claim whose sender never said "sent" nor "failed" (the worker was killed mid-send) is taken over after
# this long. Longer than any one SMTP exchange, shorter than the broker's redelivery (visibility timeout).
LEASE = timedelta(minutes=15)

# The kinds of bulk e-mail a recipient may unsubscribe from, per program.
PRICE_DROPPED = "price_dropped"
FRIEND_SUBSCRIBED = "friend_subscribed"
BULK_KINDS = frozenset({PRICE_DROPPED, FRIEND_SUBSCRIBED})

_UNSUBSCRIBE_SALT = "parrain.unsubscribe"


# --- The marker --------------------------------------------------------------------------------------


def notification_claim(*, event_key: str, recipient: str, lease: timedelta = LEASE) -> bool:
    """True for the one caller that may send this e-mail now; False if it was sent or is being sent.

    The first claimer inserts the row; the unique constraint turns any concurrent or later insert into an
    IntegrityError. A row not sent and released (a failed send) or past its lease (a sender that died) is
    taken over by one conditional UPDATE: of two claimers racing, PostgreSQL re-checks the condition for
    the second after the first commits, finds the fresh claim, and changes no row.
    """
    moment = now()
    try:
        with transaction.atomic():
            Notification.objects.create(
                event_key=event_key, recipient=recipient, claimed_at=moment, attempts=1, created_at=moment
            )
        return True
    except IntegrityError:
        pass
    retaken = (
        Notification.objects.filter(event_key=event_key, recipient=recipient, sent_at__isnull=True)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=moment - lease))
        .update(claimed_at=moment, attempts=F("attempts") + 1)
    )
    return retaken == 1


def notification_sent(*, event_key: str, recipient: str) -> None:
    Notification.objects.filter(event_key=event_key, recipient=recipient).update(sent_at=now())


def notification_release(*, event_key: str, recipient: str) -> None:
    """The send failed: the next attempt (the task's retry) may claim it again at once."""
    Notification.objects.filter(event_key=event_key, recipient=recipient, sent_at__isnull=True).update(claimed_at=None)


def send_once(*, event_key: str, recipient: str, message: EmailMessage, connection: Any = None) -> bool:
    """Send `message` unless this (event, recipient) was claimed before. True if it went now.

    A failure releases the claim and propagates, so that the task retries and sends it then. Between the
    SMTP server's acceptance and the UPDATE that records it, a killed worker would leave a claim that
    expires after LEASE and is sent again: the only window for a second copy, milliseconds wide.
    """
    if not notification_claim(event_key=event_key, recipient=recipient):
        return False
    try:
        (connection or get_connection()).send_messages([message])
    except BaseException:
        notification_release(event_key=event_key, recipient=recipient)
        raise
    notification_sent(event_key=event_key, recipient=recipient)
    return True


# --- Opt-outs and the one-click unsubscribe (RFC 8058) -----------------------------------------------


def mailbox_digest(canonical: str) -> str:
    """What opt-outs and unsubscribe links hold instead of the address."""
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Unsubscribe:
    mailbox_digest: str
    program_id: int
    kind: str


def unsubscribe_token(*, recipient: str, program_id: int, kind: str) -> str:
    """A signed token naming the recipient (by digest), the program and the kind of e-mail. No expiry:
    an unsubscribe link must work as long as the e-mail is in someone's inbox."""
    return signing.dumps([mailbox_digest(recipient), program_id, kind], salt=_UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_read(token: str) -> Unsubscribe | None:
    """The request a token names, or None if it was tampered with or is not ours."""
    try:
        digest, program_id, kind = signing.loads(token, salt=_UNSUBSCRIBE_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if kind not in BULK_KINDS or not isinstance(program_id, int) or not isinstance(digest, str):
        return None
    return Unsubscribe(mailbox_digest=digest, program_id=program_id, kind=kind)


def unsubscribe_url(*, recipient: str, program_id: int, kind: str) -> str:
    token = unsubscribe_token(recipient=recipient, program_id=program_id, kind=kind)
    return settings.PARRAIN_BASE_URL.rstrip("/") + reverse("unsubscribe", kwargs={"unsubscribe_token": token})


def email_opt_out(*, request: Unsubscribe, actor: Actor) -> bool:
    """Record the opt-out (idempotent). True if it is new."""
    try:
        with transaction.atomic():
            opt_out = EmailOptOut.objects.create(
                mailbox_digest=request.mailbox_digest,
                program_id=request.program_id,
                kind=request.kind,
                created_at=now(),
            )
            audit_record(
                actor=actor,
                action="email.unsubscribed",
                object_type="email_opt_out",
                object_id=opt_out.pk,
                program_id=request.program_id,
                after={"kind": request.kind},
            )
    except IntegrityError:
        return False  # unsubscribed before (or by a concurrent click): nothing more to do
    return True


def opted_out(*, recipient: str, program_id: int, kind: str) -> bool:
    digest = mailbox_digest(recipient)
    return EmailOptOut.objects.filter(mailbox_digest=digest, program_id=program_id, kind=kind).exists()


def opted_out_digests(*, program_id: int, kind: str) -> set[str]:
    return set(EmailOptOut.objects.filter(program_id=program_id, kind=kind).values_list("mailbox_digest", flat=True))


# --- Rendering ---------------------------------------------------------------------------------------


def recipient_language(user: Any = None) -> str:
    """The user's saved language if they chose one of ours, else the site's default."""
    available = {code for code, _ in settings.LANGUAGES}
    saved = ""
    if user is not None and getattr(user, "pk", None) is not None:
        saved = UserPreference.objects.filter(user_id=user.pk).values_list("language", flat=True).first() or ""
    return saved if saved in available else settings.LANGUAGE_CODE


def email_render(
    template: str,
    context: dict[str, Any],
    *,
    to: str,
    language: str,
    unsubscribe: str | None = None,
) -> EmailMessage:
    """templates/emails/<template>_subject.txt and _body.txt rendered in `language`.

    With `unsubscribe` (the URL of unsubscribe_url) the message is a bulk one: RFC 8058 headers, and the
    same link in the body (the template shows `unsubscribe_url`).
    """
    context = {**context, "unsubscribe_url": unsubscribe}
    with translation.override(language):
        subject = one_line(render_to_string(f"emails/{template}_subject.txt", context))
        body = render_to_string(f"emails/{template}_body.txt", context)
    headers = {}
    if unsubscribe:
        headers = {
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    return EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [to], headers=headers)
