"""Rows of the permission table (tests/core/test_permission_table.py) for one part of the site.

Same shape as TABLE there: (kind, url name, method) -> the status for each role, in the order of ROLES
("anon", "owner", "other_amb", "marketer", "auditor", "superuser", "track", "read", "manage", "other_key");
keys are anonymous to pages. BODIES gives the body sent for a (url name, method) that needs one.

Vouchers at checkout (rewards/api_vouchers.py): the shop's `track` key checks and redeems, a `read` key
checks, a `manage` key and marketing do both (core.policies.may_check_voucher, may_redeem_voucher).
"""

from typing import Any

from rewards.models import RewardGrant

# fmt: off
ROWS: dict[tuple[str, str, str], tuple[int, ...]] = {
    #                                          anon own  oth  mkt  aud  su   trk  rd   mng  other
    ("api", "api-voucher", "GET"):            (401, 403, 403, 200, 403, 200, 200, 200, 200, 403),
    ("api", "api-voucher-redeem", "POST"):    (401, 403, 403, 200, 403, 200, 200, 403, 200, 403),
}
# fmt: on
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("api-voucher-redeem", "POST"): {"order_reference": "order-1001"},
}


def scene_kwargs(scene: dict[str, Any]) -> dict[str, Any]:
    """The voucher of Ana's unlocked grant."""
    return {"voucher_code": RewardGrant.objects.get(ambassador=scene["ana"]).voucher_code}
