"""The rewards engine's e-mails: a reward unlocked or withdrawn, and the price dropped (a bulk e-mail).

Each goes at most once per recipient and event through core.notifications' marker, so the tasks that call
these may be delivered any number of times.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.mail import get_connection
from django.urls import NoReverseMatch, reverse

from ambassadors.models import Ambassador
from core.notifications import (
    PRICE_DROPPED,
    email_render,
    mailbox_digest,
    opted_out_digests,
    recipient_language,
    send_once,
    unsubscribe_url,
)
from referrals.models import Signup
from rewards.models import Milestone, RewardGrant

logger = logging.getLogger(__name__)

# Recipients per price-drop task: each task sends its batch over one SMTP connection.
PRICE_DROP_BATCH = 200


def absolute_url(name: str, **kwargs: Any) -> str:
    """A page's address for an e-mail, or "" when the page is not part of this site."""
    try:
        return settings.PARRAIN_BASE_URL.rstrip("/") + reverse(name, kwargs=kwargs or None)
    except NoReverseMatch:
        return ""


def grant_email_send(*, grant_id: int, event: str) -> bool:
    """The "you unlocked a reward" (event "unlocked") or "a reward was withdrawn" ("revoked") e-mail.

    Keyed by the voucher code too: a grant revoked then reached again gets a fresh code, and that new
    unlock is a new event worth its own e-mail. True if an e-mail went now.
    """
    grant = (
        RewardGrant.objects.select_related("tier__program", "ambassador__user", "referee_signup")
        .filter(pk=grant_id)
        .first()
    )
    if grant is None:
        return False
    if event == "unlocked" and grant.status == RewardGrant.Status.REVOKED:
        return False  # withdrawn before this task ran: its own e-mail says so, an "unlocked" one would lie
    if grant.ambassador is not None:
        email, canonical, user = grant.ambassador.email, grant.ambassador.email_canonical, grant.ambassador.user
    else:
        signup = grant.referee_signup
        assert signup is not None  # grant_has_recipient
        email, canonical, user = signup.email, signup.email_canonical, None
    template = "reward_revoked" if event == "revoked" else "reward_unlocked"
    message = email_render(
        template,
        {
            "program": grant.tier.program,
            "tier": grant.tier,
            "voucher_code": grant.voucher_code,
            "dashboard_url": absolute_url("dashboard") if grant.ambassador is not None else "",
        },
        to=email,
        language=recipient_language(user),
    )
    event_key = f"reward.{'revoked' if event == 'revoked' else 'unlocked'}:grant:{grant.pk}:{grant.voucher_code}"
    return send_once(event_key=event_key, recipient=canonical, message=message)


def price_drop_batches(*, milestone_id: int, size: int = PRICE_DROP_BATCH) -> Iterator[tuple[list[int], list[int]]]:
    """(ambassador ids, signup ids) per batch: the program's active ambassadors, then the subscribers who
    asked for price news. A person who is both is in two lists; the marker sends them one e-mail."""
    milestone = Milestone.objects.filter(pk=milestone_id).only("program_id").first()
    if milestone is None:
        return
    ambassador_ids = list(
        Ambassador.objects.filter(program_id=milestone.program_id, is_active=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    signup_ids = list(
        Signup.objects.filter(program_id=milestone.program_id, wants_price_news=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    recipients = [("a", pk) for pk in ambassador_ids] + [("s", pk) for pk in signup_ids]
    for start in range(0, len(recipients), size):
        batch = recipients[start : start + size]
        yield [pk for kind, pk in batch if kind == "a"], [pk for kind, pk in batch if kind == "s"]


def price_drop_send(*, milestone_id: int, ambassador_ids: list[int], signup_ids: list[int]) -> int:
    """Send "the price dropped" to one batch over one connection; returns how many went now.

    Rows are read again (an ambassador deactivated or a subscriber who changed their mind since the
    fan-out gets nothing), and opt-outs are honoured as they are now. A failed send raises after releasing
    its claim: the task's retry sends the rest, and nothing twice.
    """
    milestone = Milestone.objects.select_related("program").filter(pk=milestone_id).first()
    if milestone is None:
        return 0
    program = milestone.program
    recipients: dict[str, tuple[str, Any]] = {}
    for signup in Signup.objects.filter(pk__in=signup_ids, program=program, wants_price_news=True):
        recipients[signup.email_canonical] = (signup.email, None)
    # Ambassadors second: a person who is both gets the e-mail in their account's language.
    for ambassador in Ambassador.objects.filter(pk__in=ambassador_ids, program=program, is_active=True).select_related(
        "user"
    ):
        recipients[ambassador.email_canonical] = (ambassador.email, ambassador.user)
    unsubscribed = opted_out_digests(program_id=program.pk, kind=PRICE_DROPPED)
    context = {
        "program": program,
        "price": milestone.price_after,
        "count_at": milestone.count_at,
        "program_url": absolute_url("program-page", slug=program.slug),
    }
    sent = 0
    with get_connection() as connection:
        for canonical, (email, user) in recipients.items():
            if mailbox_digest(canonical) in unsubscribed:
                continue
            message = email_render(
                "price_dropped",
                context,
                to=email,
                language=recipient_language(user),
                unsubscribe=unsubscribe_url(recipient=canonical, program_id=program.pk, kind=PRICE_DROPPED),
            )
            try:
                if send_once(
                    event_key=f"price.dropped:milestone:{milestone.pk}",
                    recipient=canonical,
                    message=message,
                    connection=connection,
                ):
                    sent += 1
            except smtplib.SMTPRecipientsRefused:
                # This address is refused for good: retrying the batch would never reach the ones after it.
                logger.warning("price-drop e-mail of milestone %s refused for one recipient", milestone.pk)
    return sent
