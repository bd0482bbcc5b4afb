"""Rows of the permission table (tests/core/test_permission_table.py) for one part of the consoles.

Same shape as TABLE there: (kind, url name, method) -> the status for each role, in the order of ROLES
("anon", "owner", "other_amb", "marketer", "auditor", "superuser", "track", "read", "manage", "other_key");
keys are anonymous to pages. BODIES gives the form posted for a (url name, method) that needs one.

The staff console's programs, tiers and contests: marketing staff (and superusers) only; anonymous callers
(and keys, anonymous to pages) log in first; ambassadors and auditors without marketing get 403. A POST
that succeeds redirects (302); the preview answers its page (200) and saves nothing.
"""

from typing import Any

#                                                           anon own  othr mkt  aud  su   trk  read mng  othk
ROWS: dict[tuple[str, str, str], tuple[int, ...]] = {
    ("page", "staff-home", "GET"):                          (302, 403, 403, 200, 403, 200, 302, 302, 302, 302),
    ("page", "staff-program-create", "GET"):                (302, 403, 403, 200, 403, 200, 302, 302, 302, 302),
    ("page", "staff-program-create", "POST"):               (302, 403, 403, 302, 403, 302, 302, 302, 302, 302),
    ("page", "staff-program", "GET"):                       (302, 403, 403, 200, 403, 200, 302, 302, 302, 302),
    ("page", "staff-program", "POST"):                      (302, 403, 403, 302, 403, 302, 302, 302, 302, 302),
    ("page", "staff-tier-create", "GET"):                   (302, 403, 403, 200, 403, 200, 302, 302, 302, 302),
    ("page", "staff-tier-create", "POST"):                  (302, 403, 403, 302, 403, 302, 302, 302, 302, 302),
    ("page", "staff-tier", "GET"):                          (302, 403, 403, 200, 403, 200, 302, 302, 302, 302),
    ("page", "staff-tier", "POST"):                         (302, 403, 403, 302, 403, 302, 302, 302, 302, 302),
    # The preview answers a POST only (the form's values): GET is not allowed, whoever asks.
    ("page", "staff-tier-preview", "GET"):                  (405, 405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("page", "staff-tier-preview", "POST"):                 (302, 403, 403, 200, 403, 200, 302, 302, 302, 302),
    ("page", "staff-contest-create", "GET"):                (302, 403, 403, 200, 403, 200, 302, 302, 302, 302),
    ("page", "staff-contest-create", "POST"):               (302, 403, 403, 302, 403, 302, 302, 302, 302, 302),
    ("page", "staff-contest", "GET"):                       (302, 403, 403, 200, 403, 200, 302, 302, 302, 302),
    ("page", "staff-contest", "POST"):                      (302, 403, 403, 302, 403, 302, 302, 302, 302, 302),
}  # fmt: skip

_VOUCHER = {"name": "Two friends", "kind": "individual", "metric": "qualified_signups", "threshold": "2",
            "reward_type": "percent_voucher", "reward_value": "20", "is_active": "on"}  # fmt: skip
_CONTEST = {"name": "Monthly prize", "prize_text": "Raspberries", "starts_at": "2020-01-01T00:00",
            "ends_at": "2099-01-01T00:00", "winners_count": "1", "metric": "qualified_signups"}  # fmt: skip

BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("staff-program-create", "POST"): {
        "slug": "new-one",
        "name": "New",
        "currency": "EUR",
        "attribution_window_days": "30",
        "attribution_model": "last_click",
        "hold_period_days": "14",
        "velocity_limit": "5",
        "influencer_min_clicks": "50",
        "influencer_max_rate": "2",
        "ambassador_min_qualified": "3",
        "ambassador_min_rate": "10",
    },  # fmt: skip
    # Pausing: the scene's program is open.
    ("staff-program", "POST"): {"status": "paused"},
    ("staff-tier-create", "POST"): _VOUCHER,
    # The scene's tier ("One friend", at 1 qualified signup, a 20% voucher) made a 25% voucher.
    ("staff-tier", "POST"): _VOUCHER | {"name": "One friend", "threshold": "1", "reward_value": "25"},
    ("staff-tier-preview", "POST"): _VOUCHER,
    ("staff-contest-create", "POST"): _CONTEST | {"name": "Another prize"},
    ("staff-contest", "POST"): _CONTEST,
}
