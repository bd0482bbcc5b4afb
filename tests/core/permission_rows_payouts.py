"""Rows of the permission table (tests/core/test_permission_table.py) for paying cash rewards.

Same shape as TABLE there: (kind, url name, method) -> the status for each role, in the order of ROLES
("anon", "owner", "other_amb", "marketer", "auditor", "superuser", "track", "read", "manage", "other_key");
keys are anonymous to pages. BODIES gives the body sent for a (url name, method) that needs one.

The staff pages are marketing's (rewards.services.payouts.may_manage_payouts): they see the runs, draft one,
change the settings and mark a run paid; auditors read the audit trail of it, not the console. In the scene
nothing is owed, so drafting answers the form again with its error (400); the SEPA file of the scene's draft
answers with a redirect to its page (a draft has no file yet). The bank details page
is each ambassador's own: Ana and Bob have theirs, staff with no ambassadorship in the program get a 404.
"""

from datetime import timedelta
from typing import Any

from core import clock
from rewards.models import PayoutRun

# fmt: off
ROWS: dict[tuple[str, str, str], tuple[int, ...]] = {
    #                                                     anon own  oth  mkt  aud  su   trk  rd   mng  other
    ("page", "staff-payouts", "GET"):                    (302, 403, 403, 200, 403, 200, 302, 302, 302, 302),
    ("page", "staff-payouts", "POST"):                   (302, 403, 403, 400, 403, 400, 302, 302, 302, 302),
    ("page", "staff-payout-settings", "GET"):            (405, 405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("page", "staff-payout-settings", "POST"):           (302, 403, 403, 302, 403, 302, 302, 302, 302, 302),
    ("page", "staff-payout-run", "GET"):                 (302, 403, 403, 200, 403, 200, 302, 302, 302, 302),
    ("page", "staff-payout-run", "POST"):                (302, 403, 403, 302, 403, 302, 302, 302, 302, 302),
    ("page", "staff-payout-run-csv", "GET"):             (302, 403, 403, 200, 403, 200, 302, 302, 302, 302),
    ("page", "staff-payout-run-sepa", "GET"):            (302, 403, 403, 302, 403, 302, 302, 302, 302, 302),
    ("page", "dashboard-payout-details", "GET"):         (302, 200, 200, 404, 404, 404, 302, 302, 302, 302),
    ("page", "dashboard-payout-details", "POST"):        (302, 302, 302, 404, 404, 404, 302, 302, 302, 302),
}
# fmt: on
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("staff-payouts", "POST"): {"period_start": "2000-01-01", "period_end": "2099-12-31"},
    ("staff-payout-settings", "POST"): {
        "hold_days": "10",
        "debtor_name": "Shop",
        "debtor_iban": "GB82WEST12345698765432",
    },
    ("staff-payout-run", "POST"): {"confirm": "on", "reason": "Transfer of the month"},
    ("dashboard-payout-details", "POST"): {"account_holder": "Ana Example", "iban": "DE89370400440532013000"},
}


def scene_kwargs(scene: dict[str, Any]) -> dict[str, Any]:
    """An empty draft payout of the scene's program. Made directly: the scene holds one grant only (the redeem
    action's test reads it with .get()), so nothing is owed, and drafting from the page answers its form error."""
    today = clock.now().date()
    run = PayoutRun.objects.create(
        program=scene["program"], period_start=today - timedelta(days=30), period_end=today, created_at=clock.now()
    )
    return {"run_id": run.pk}
