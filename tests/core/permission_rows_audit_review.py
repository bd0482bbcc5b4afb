"""Rows of the permission table (tests/core/test_permission_table.py) for one part of the consoles.

Same shape as TABLE there: (kind, url name, method) -> the status for each role, in the order of ROLES
("anon", "owner", "other_amb", "marketer", "auditor", "superuser", "track", "read", "manage", "other_key");
keys are anonymous to pages. BODIES gives the form posted for a (url name, method) that needs one.

The review queue and its decisions ask core.policies.may_review; the trail and its CSV may_read_audit:
admins (auditors, superusers) only. Marketing gets 403, ambassadors 403, anybody not signed in logs in.
"""

from collections.abc import Iterator
from typing import Any

ROWS: dict[tuple[str, str, str], tuple[int, ...]] = {
    #                                               anon own  othr mkt  aud  su   trk  read mng  othk
    ("page", "audit-review", "GET"):               (302, 403, 403, 403, 200, 200, 302, 302, 302, 302),
    # A decision is a POST only (405 to any GET, as the dashboard's forms); a decided one goes back (302).
    ("page", "audit-review-decide", "GET"):        (405, 405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("page", "audit-review-decide", "POST"):       (302, 403, 403, 403, 302, 302, 302, 302, 302, 302),
    ("page", "audit-trail", "GET"):                (302, 403, 403, 403, 200, 200, 302, 302, 302, 302),
    ("page", "audit-trail-csv", "GET"):            (302, 403, 403, 403, 200, 200, 302, 302, 302, 302),
}  # fmt: skip


class HeldSignupIds:
    """The ids of the scene's held signups, read when the test client encodes the form (the scene makes
    them in each test, so no id is known when this module is imported)."""

    def __iter__(self) -> Iterator[int]:
        from referrals.models import Signup

        return iter(Signup.objects.filter(status=Signup.Status.PENDING_REVIEW).values_list("pk", flat=True))


BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("audit-review-decide", "POST"): {"signups": HeldSignupIds(), "decision": "approve", "reason": "A real reader"},
}
