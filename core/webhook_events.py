"""Which audited changes the outside world hears of, and what it is told (design section 7).

Every change that matters writes its audit event (core.audit) in its own transaction; `audit_record`
asks `webhook_events` here which webhook events that change announces and writes each to the outbox
(core.outbox) in the same transaction. Nothing is lost when the broker is down, and nothing is announced
that was rolled back.

The payload is stable and documented (README, "Webhooks"):

    {"type": "reward.unlocked", "timestamp": "2026-12-04T13:00:00.000000+00:00",
     "data": {"object": "reward_grant", "id": "12", "program_id": 3, ...the change's audited fields}}

`data` carries ids, codes, statuses and amounts (as strings), never an e-mail address or a name: what the
program owner's own systems already hold. The audited snapshot of each object says which fields come.
"""

from __future__ import annotations

from typing import Any

from core.models import AuditEvent

# The events an endpoint may subscribe to, in the order the API and the console list them.
WEBHOOK_EVENTS: tuple[str, ...] = (
    "signup.attributed",
    "signup.rejected",
    "conversion.approved",
    "conversion.reversed",
    "reward.unlocked",
    "reward.revoked",
    "reward.redeemed",
    "milestone.reached",
    "contest.ended",
)

# Audit actions that are, one to one, the webhook event of the same name.
_SAME_NAME = frozenset(
    {
        "conversion.approved",
        "conversion.reversed",
        "reward.unlocked",
        "reward.revoked",
        "reward.redeemed",
        "milestone.reached",
        "contest.ended",
    }
)
# Audit actions that record or change a signup's status or ambassador (referrals.services).
_SIGNUP_ACTIONS = frozenset({"signup.recorded", "signup.reviewed", "signup.overridden", "signup.status_changed"})


def _signup_events(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """A signup is attributed when it becomes qualified with an ambassador (or changes ambassador while
    qualified), rejected when it becomes rejected."""
    before = before or {}
    status, ambassador = after.get("status"), after.get("ambassador")
    if status == "qualified" and ambassador:
        if before.get("status") != "qualified" or before.get("ambassador") != ambassador:
            return ["signup.attributed"]
        return []
    if status == "rejected" and before.get("status") != "rejected":
        return ["signup.rejected"]
    return []


def webhook_events(*, action: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """The webhook events an audited change announces: none for most."""
    if action in _SAME_NAME:
        return [action]
    if action in _SIGNUP_ACTIONS and after is not None:
        return _signup_events(before, after)
    return []


# The fields of a conversion a receiver needs to know which order changed: as recorded (referrals.services).
_CONVERSION_FIELDS = ("external_id", "amount", "currency", "signup", "ambassador")


def _conversion_recorded(object_id: Any) -> dict[str, Any]:
    """A conversion's approval or reversal audits its status only: the order it is comes from the audit
    event that recorded it (one indexed query; core reads its own trail, not the referrals app)."""
    recorded = (
        AuditEvent.objects.filter(object_type="conversion", object_id=str(object_id), action="conversion.recorded")
        .values_list("after", flat=True)
        .first()
    )
    return {name: recorded[name] for name in _CONVERSION_FIELDS if name in recorded} if recorded else {}


def webhook_data(
    *, object_type: str, object_id: Any, program_id: int | None, after: dict[str, Any] | None
) -> dict[str, Any]:
    """The `data` of the payload: which object, of which program, and its audited fields."""
    data = dict(after or {})
    if object_type == "conversion":
        data = _conversion_recorded(object_id) | data
    return {**data, "object": object_type, "id": str(object_id), "program_id": program_id}
