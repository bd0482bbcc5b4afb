"""Rows of the permission table (tests/core/test_permission_table.py) for reading payouts over the API.

Same shape as TABLE there: (kind, url name, method) -> the status for each role, in the order of ROLES
("anon", "owner", "other_amb", "marketer", "auditor", "superuser", "track", "read", "manage", "other_key");
keys are anonymous to pages. BODIES gives the body sent for a (url name, method) that needs one.

The payout runs and their lines (rewards/api_payouts.py): marketing staff, or a `manage` key of the program
(core.policies.may_read_payouts); `track` and `read` keys, auditors and ambassadors are refused, and another
program's key too. Reading only: runs are drafted and marked paid on the staff console.
"""

from datetime import timedelta
from typing import Any

from core import clock
from rewards.models import PayoutRun

# fmt: off
ROWS: dict[tuple[str, str, str], tuple[int, ...]] = {
    #                                          anon own  oth  mkt  aud  su   trk  rd   mng  other
    ("api", "api-payouts", "GET"):            (401, 403, 403, 200, 403, 200, 403, 403, 200, 403),
    ("api", "api-payout", "GET"):             (401, 403, 403, 200, 403, 200, 403, 403, 200, 403),
}
# fmt: on
BODIES: dict[tuple[str, str], dict[str, Any]] = {}


def scene_kwargs(scene: dict[str, Any]) -> dict[str, Any]:
    """A draft payout of the scene's program (no lines: what is read is who may read it)."""
    today = clock.now().date()
    run = PayoutRun.objects.create(
        program=scene["program"], period_start=today - timedelta(days=30), period_end=today, created_at=clock.now()
    )
    return {"run_id": run.pk}
