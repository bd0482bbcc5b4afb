"""Rows of the permission table (tests/core/test_permission_table.py) for one part of the consoles.

Same shape as TABLE there: (kind, url name, method) -> the status for each role, in the order of ROLES
("anon", "owner", "other_amb", "marketer", "auditor", "superuser", "track", "read", "manage", "other_key");
keys are anonymous to pages. BODIES gives the form posted for a (url name, method) that needs one.

The analytics (core.policies.may_read_stats on a page): staff read them, marketing and auditors alike;
ambassadors are refused; anonymous visitors and keys go to log in. `staff-analytics-csv` reversed with the
slug alone is the funnel's CSV (console/staff/analytics.py), so the scene needs no `table` kwarg.
"""

from typing import Any

#                                                     anon own  othr mkt  aud  su   trk  read mng  othk
ROWS: dict[tuple[str, str, str], tuple[int, ...]] = {
    ("page", "staff-analytics", "GET"):             (302, 403, 403, 200, 200, 200, 302, 302, 302, 302),
    ("page", "staff-analytics-csv", "GET"):         (302, 403, 403, 200, 200, 200, 302, 302, 302, 302),
}  # fmt: skip
BODIES: dict[tuple[str, str], dict[str, Any]] = {}
