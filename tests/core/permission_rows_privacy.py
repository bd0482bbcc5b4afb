"""Rows of the permission table (tests/core/test_permission_table.py) for the privacy pages (GDPR).

Same shape as TABLE there, roles in the order of ROLES ("anon", "owner", "other_amb", "marketer", "auditor",
"superuser", "track", "read", "manage", "other_key"); keys are anonymous to pages.

"Your data" (core.policies.may_export_person / may_erase_person on one's own account): every signed-in
person sees and downloads their own data. The erasure asks them to type their address: Ana (the owner)
types hers and is erased (302 home); Bob posts Ana's address, which is not his, and gets the page again
(200, nothing erased); staff accounts are erased by another admin, never from this page (403).
The audit console's people pages: admins only (auditors, superusers); marketing and ambassadors 403.
Exports and erasures are POSTs only: 405 to any GET.
"""

from typing import Any

ROWS: dict[tuple[str, str, str], tuple[int, ...]] = {
    #                                               anon own  othr mkt  aud  su   trk  read mng  othk
    ("page", "privacy", "GET"):                    (302, 200, 200, 200, 200, 200, 302, 302, 302, 302),
    ("page", "privacy-export", "GET"):             (405, 405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("page", "privacy-export", "POST"):            (302, 200, 200, 200, 200, 200, 302, 302, 302, 302),
    ("page", "privacy-erase", "GET"):              (405, 405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("page", "privacy-erase", "POST"):             (302, 302, 200, 403, 403, 403, 302, 302, 302, 302),
    ("page", "audit-people", "GET"):               (302, 403, 403, 403, 200, 200, 302, 302, 302, 302),
    ("page", "audit-people", "POST"):              (302, 403, 403, 403, 200, 200, 302, 302, 302, 302),
    ("page", "audit-people-export", "GET"):        (405, 405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("page", "audit-people-export", "POST"):       (302, 403, 403, 403, 200, 200, 302, 302, 302, 302),
    ("page", "audit-people-erase", "GET"):         (405, 405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("page", "audit-people-erase", "POST"):        (302, 403, 403, 403, 302, 302, 302, 302, 302, 302),
}  # fmt: skip

FRIEND = "friend@example.org"  # the scene's referee of Ana: a person known by e-mail only

BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("privacy-erase", "POST"): {"confirm": "ana@example.com"},
    ("audit-people", "POST"): {"email": FRIEND},
    ("audit-people-export", "POST"): {"export-email": FRIEND, "export-reason": "Access request of 4 December"},
    ("audit-people-erase", "POST"): {"erase-email": FRIEND, "erase-reason": "Erasure request of 4 December"},
}
