"""Rows of the permission table (tests/core/test_permission_table.py) for one part of the site.

Same shape as TABLE there: (kind, url name, method) -> the status for each role, in the order of ROLES
("anon", "owner", "other_amb", "marketer", "auditor", "superuser", "track", "read", "manage", "other_key");
keys are anonymous to pages. BODIES gives the body sent for a (url name, method) that needs one.

The staff console's webhooks (console/staff/webhooks.py): marketing staff (and superusers) only; anonymous
callers (and keys, anonymous to pages) log in first; ambassadors and auditors get 403. A POST that succeeds
redirects (302). The endpoint and its delivery come from permission_rows_api_webhooks.scene_kwargs.
"""

from typing import Any

#                                                           anon own  othr mkt  aud  su   trk  read mng  othk
ROWS: dict[tuple[str, str, str], tuple[int, ...]] = {
    ("page", "staff-webhooks", "GET"):                      (302, 403, 403, 200, 403, 200, 302, 302, 302, 302),
    ("page", "staff-webhooks", "POST"):                     (302, 403, 403, 302, 403, 302, 302, 302, 302, 302),
    ("page", "staff-webhook", "GET"):                       (302, 403, 403, 200, 403, 200, 302, 302, 302, 302),
    ("page", "staff-webhook", "POST"):                      (302, 403, 403, 302, 403, 302, 302, 302, 302, 302),
    # Resending answers a POST only: GET is not allowed, whoever asks.
    ("page", "staff-webhook-resend", "GET"):                (405, 405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("page", "staff-webhook-resend", "POST"):               (302, 403, 403, 302, 403, 302, 302, 302, 302, 302),
}  # fmt: skip

BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("staff-webhooks", "POST"): {"url": "https://93.184.215.14/another-hook", "event_types": ["contest.ended"]},
    ("staff-webhook", "POST"): {"is_active": "false"},
}
