"""The tracking core's e-mail: "a friend subscribed through your link", to the ambassador credited.

A bulk e-mail (one per friend), so it carries the one-click unsubscribe; at most once per signup through
core.notifications' marker, however often its task is delivered.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from ambassadors.models import AmbassadorCounters
from core.notifications import (
    FRIEND_SUBSCRIBED,
    email_render,
    opted_out,
    recipient_language,
    send_once,
    unsubscribe_url,
)
from referrals.models import Signup


def _masked(email: str) -> str:
    """`ana@example.org` -> `a•••@example.org`, as the dashboard shows friends: no address to harvest."""
    local, at, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}" if at else "•••"


def _dashboard_url() -> str:
    try:
        return settings.PARRAIN_BASE_URL.rstrip("/") + reverse("dashboard")
    except NoReverseMatch:
        return ""


def friend_subscribed_send(*, signup_id: int) -> bool:
    """E-mail the ambassador credited with a qualified signup. True if it went now.

    Read again when the task runs: a signup rejected or credited to nobody since gets no e-mail, and an
    ambassador who unsubscribed from these e-mails gets none.
    """
    signup = Signup.objects.select_related("program", "ambassador__user").filter(pk=signup_id).first()
    if signup is None or signup.ambassador is None or signup.status != Signup.Status.QUALIFIED:
        return False
    ambassador, program = signup.ambassador, signup.program
    if not ambassador.is_active or opted_out(
        recipient=ambassador.email_canonical, program_id=program.pk, kind=FRIEND_SUBSCRIBED
    ):
        return False
    counters = AmbassadorCounters.objects.filter(ambassador=ambassador).first()
    message = email_render(
        "friend_subscribed",
        {
            "program": program,
            "friend": _masked(signup.email),
            "qualified": counters.qualified if counters else 1,
            "dashboard_url": _dashboard_url(),
        },
        to=ambassador.email,
        language=recipient_language(ambassador.user),
        unsubscribe=unsubscribe_url(
            recipient=ambassador.email_canonical, program_id=program.pk, kind=FRIEND_SUBSCRIBED
        ),
    )
    return send_once(
        event_key=f"signup.attributed:signup:{signup.pk}", recipient=ambassador.email_canonical, message=message
    )
