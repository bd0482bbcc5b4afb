"""Rows of the permission table (tests/core/test_permission_table.py) for one part of the site.

Same shape as TABLE there: (kind, url name, method) -> the status for each role, in the order of ROLES
("anon", "owner", "other_amb", "marketer", "auditor", "superuser", "track", "read", "manage", "other_key");
keys are anonymous to pages. BODIES gives the body sent for a (url name, method) that needs one.

Stripe (commerce.stripe_webhook, console/staff/stripe.py): the staff page is for marketing staff (and
superusers) only (core.policies.may_manage_stripe); anonymous callers (and keys, anonymous to pages) log in
first; ambassadors and auditors get 403. The webhook answers POST only, and its signature is the only
credential: a session or a key changes nothing, and without a valid Stripe-Signature everyone gets 400.
"""

from typing import Any

from commerce.models import StripeAccount

#                                                           anon own  othr mkt  aud  su   trk  read mng  othk
ROWS: dict[tuple[str, str, str], tuple[int, ...]] = {
    ("page", "staff-stripe", "GET"):                        (302, 403, 403, 200, 403, 200, 302, 302, 302, 302),
    ("page", "staff-stripe", "POST"):                       (302, 403, 403, 302, 403, 302, 302, 302, 302, 302),
    ("page", "stripe-webhook", "GET"):                      (405, 405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("page", "stripe-webhook", "POST"):                     (400, 400, 400, 400, 400, 400, 400, 400, 400, 400),
}  # fmt: skip

BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("staff-stripe", "POST"): {"webhook_secret": "whsec_" + "PermissionTableSecret0123456789"},
}


def scene_kwargs(scene: dict[str, Any]) -> dict[str, Any]:
    """The scene's program is connected to Stripe: the webhook's 400 is the missing signature's."""
    StripeAccount.objects.create(program=scene["program"], webhook_secret="whsec_" + "SceneSecret0123456789abcdef")
    return {}
