"""Rows of the permission table (tests/core/test_permission_table.py) for one part of the site.

Same shape as TABLE there: (kind, url name, method) -> the status for each role, in the order of ROLES
("anon", "owner", "other_amb", "marketer", "auditor", "superuser", "track", "read", "manage", "other_key");
keys are anonymous to pages. BODIES gives the body sent for a (url name, method) that needs one.

The dashboard inside the business's product: a `manage` key of the program (or marketing staff) asks for an
embed token (core.policies.may_issue_embed_token); the page /embed/dashboard answers its token only, never a
session or a key, so without one everybody gets the same 403 page. Waitlists: a subscriber's status page
answers its signed link alike for everybody; the staff pages are marketing's (may_manage_waitlist).
"""

from typing import Any

from commerce.waitlist import waitlist_status_token
from referrals.models import Signup

# fmt: off
ROWS: dict[tuple[str, str, str], tuple[int, ...]] = {
    #                                                     anon own  oth  mkt  aud  su   trk  rd   mng  other
    ("api", "api-embed-tokens", "POST"):                 (401, 403, 403, 201, 403, 201, 403, 403, 201, 403),
    ("page", "embed-dashboard", "GET"):                  (403, 403, 403, 403, 403, 403, 403, 403, 403, 403),
    ("page", "waitlist-status", "GET"):                  (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("page", "staff-waitlist", "GET"):                   (302, 403, 403, 200, 403, 200, 302, 302, 302, 302),
    ("page", "staff-waitlist", "POST"):                  (302, 403, 403, 302, 403, 302, 302, 302, 302, 302),
    ("page", "staff-waitlist-admit", "GET"):             (405, 405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("page", "staff-waitlist-admit", "POST"):            (302, 403, 403, 302, 403, 302, 302, 302, 302, 302),
    ("page", "staff-waitlist-csv", "GET"):               (302, 403, 403, 200, 403, 200, 302, 302, 302, 302),
}
# fmt: on
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("api-embed-tokens", "POST"): {"email": "ana@example.com"},
    ("staff-waitlist", "POST"): {"enabled": "on", "places_per_referral": "5"},
    ("staff-waitlist-admit", "POST"): {"count": "1"},
}


def scene_kwargs(scene: dict[str, Any]) -> dict[str, Any]:
    """The status link of the scene's first subscriber (Ana's friend)."""
    signup = Signup.objects.filter(program=scene["program"]).order_by("pk").first()
    assert signup is not None
    return {"waitlist_token": waitlist_status_token(signup)}
