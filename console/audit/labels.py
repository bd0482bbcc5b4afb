"""Words for the stored values the audit console shows, translated (the models' own labels are the API's,
in English)."""

from __future__ import annotations

from collections.abc import Mapping

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

# Labels of the stored values, translated (the models' own labels are the API's, in English).
SIGNUP_STATUSES = {
    "qualified": pgettext_lazy("signup status", "Qualified"),
    "pending_review": _("Held for review"),
    "rejected": pgettext_lazy("signup status", "Rejected"),
}
SIGNUP_METHODS = {
    "code": _("Referral code"),
    "cookie": _("Referral cookie"),
    "api": _("Click id from the integration"),
    "manual": _("Set by an admin"),
    "none": _("Not attributed"),
}
SIGNUP_REASONS = {
    "": "",
    "self_referral": _("Self-referral"),
    "disposable_email": _("Throw-away e-mail domain"),
    "velocity": _("Too many signups from one address or visitor"),
    "reviewed": _("Decided by an admin"),
}
CONVERSION_STATUSES = {
    "pending": _("Pending (hold period)"),
    "approved": _("Approved"),
    "reversed": _("Reversed"),
}


def label(labels: Mapping[str, object], value: str) -> str:
    return str(labels.get(value, value))
