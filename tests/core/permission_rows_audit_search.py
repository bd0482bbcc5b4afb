"""Rows of the permission table (tests/core/test_permission_table.py) for one part of the consoles.

Same shape as TABLE there: (kind, url name, method) -> the status for each role, in the order of ROLES
("anon", "owner", "other_amb", "marketer", "auditor", "superuser", "track", "read", "manage", "other_key");
keys are anonymous to pages. BODIES gives the form posted for a (url name, method) that needs one.

The audit console's search, signup page and overrides (console/audit/search.py): admins (auditors and
superusers) only; marketing and ambassadors get 403; anonymous visitors, and keys (anonymous to pages), log
in first. The scene's signup (`signup_id`) is Ana's friend's, qualified: an admin reassigns it to Bob (302 back
to its page); the review acts on the scene's signup held for review.
"""

from typing import Any

#                                                     anon own  othr mkt  aud  su   trk  read mng  othk
ROWS: dict[tuple[str, str, str], tuple[int, ...]] = {
    ("page", "audit-home", "GET"):                  (302, 403, 403, 403, 200, 200, 302, 302, 302, 302),
    ("page", "audit-conversions", "GET"):           (302, 403, 403, 403, 200, 200, 302, 302, 302, 302),
    ("page", "audit-signups-csv", "GET"):           (302, 403, 403, 403, 200, 200, 302, 302, 302, 302),
    ("page", "audit-conversions-csv", "GET"):       (302, 403, 403, 403, 200, 200, 302, 302, 302, 302),
    ("page", "audit-signup", "GET"):                (302, 403, 403, 403, 200, 200, 302, 302, 302, 302),
    ("page", "audit-signup-override", "GET"):       (405, 405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("page", "audit-signup-override", "POST"):      (302, 403, 403, 403, 302, 302, 302, 302, 302, 302),
    ("page", "audit-signup-review", "GET"):         (405, 405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("page", "audit-signup-review", "POST"):        (302, 403, 403, 403, 302, 302, 302, 302, 302, 302),
}  # fmt: skip

BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("audit-signup-override", "POST"): {
        "action": "reassign",
        "ambassador_code": "BOBCODE",
        "reason": "Bob sent the link",
    },
    ("audit-signup-review", "POST"): {"decision": "approve", "reason": "A real reader"},
}
