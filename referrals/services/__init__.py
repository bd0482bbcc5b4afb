"""Writes of the tracking core: clicks, attributed signups, conversions, overrides and reviews.

Every rule of attribution (design section 2) lives here, once, for the pages, the API and the admin.
Each state change that matters is one transaction that also writes its audit event and moves the
counters; rewards hears of it through `counts_changed` and recalculates after commit.

One module per use case; callers import from the package, which re-exports the public surface.
"""

from referrals.services.attribution import Attribution, attribution_decide
from referrals.services.clicks import (
    RecordedClick,
    classify_user_agent,
    click_record,
    ip_hash,
    safe_redirect_target,
    with_referral_params,
)
from referrals.services.conversions import (
    conversion_approve,
    conversion_record,
    conversion_refund,
    conversions_approve_due,
    parse_amount,
    validate_currency,
)
from referrals.services.links import link_create
from referrals.services.review import signup_override, signup_review, signup_status_change
from referrals.services.signups import signup_record, signup_snapshot

__all__ = [
    "Attribution",
    "RecordedClick",
    "attribution_decide",
    "classify_user_agent",
    "click_record",
    "conversion_approve",
    "conversion_record",
    "conversion_refund",
    "conversions_approve_due",
    "ip_hash",
    "link_create",
    "parse_amount",
    "safe_redirect_target",
    "signup_override",
    "signup_record",
    "signup_review",
    "signup_status_change",
    "signup_snapshot",
    "validate_currency",
    "with_referral_params",
]
