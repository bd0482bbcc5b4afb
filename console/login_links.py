"""One-time log-in links e-mailed to an ambassador enrolled without a password (the "Share it too" loop).

The link is signed (django.core.signing), expires, and works once: it names the account's last log-in,
which signing in changes. It reaches only the address's mailbox, so following it proves the address,
as allauth's log-in code does, and the account is the one a log-in code for that address would reach.
"""

from __future__ import annotations

from typing import Any

from django.core import signing
from django.core.mail import send_mail
from django.urls import reverse
from django.utils.translation import gettext as _

from ambassadors.accounts import account_for_login_code

SALT = "parrain.console.login-link"
MAX_AGE_SECONDS = 24 * 3600


def _last_login(user: Any) -> str:
    return user.last_login.isoformat() if user.last_login else ""


def login_link_token(*, user: Any, email: str) -> str:
    return signing.dumps({"u": user.pk, "e": email, "l": _last_login(user)}, salt=SALT, compress=True)


def login_link_user(token: str) -> tuple[Any, str] | None:
    """(account, address) a valid, unexpired, unused token signs in to; None otherwise."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=MAX_AGE_SECONDS)
    except signing.BadSignature:  # SignatureExpired is one
        return None
    if not isinstance(payload, dict) or not {"u", "e", "l"} <= payload.keys():
        return None
    user = account_for_login_code(str(payload["e"]))
    # The account must still be the one the address leads to, and must not have signed in since.
    if user is None or user.pk != payload["u"] or _last_login(user) != payload["l"]:
        return None
    return user, str(payload["e"])


def login_link_send(*, request: Any, user: Any, email: str, program_name: str) -> None:
    """E-mail `email` a link that signs `user` in to their dashboard."""
    url = request.build_absolute_uri(reverse("dashboard-login", args=[login_link_token(user=user, email=email)]))
    send_mail(
        subject=_("Your referral link for %(program)s") % {"program": program_name},
        message=_(
            "Thank you for sharing %(program)s.\n\n"
            "Follow this link to see your dashboard: who subscribed through your link and the rewards you "
            "unlocked. It works once, within 24 hours:\n%(url)s\n\n"
            "If you did not ask for this, ignore this e-mail."
        )
        % {"program": program_name, "url": url},
        from_email=None,
        recipient_list=[email],
    )
