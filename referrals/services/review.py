"""Changing a recorded signup's credit or status: admin overrides and fraud review, recounted and audited."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction

from ambassadors.models import Ambassador
from ambassadors.services import counters_add
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, InvalidInput
from core.locking import transaction_retry
from referrals.models import Conversion, Signup
from referrals.services.rollups import signups_reopen
from referrals.services.signups import counts_announce, signup_snapshot

# What an override or a review may change on a signup; its keys (program, e-mail, external id) stay.
CHANGEABLE_FIELDS = ["ambassador", "method", "status", "reason", "reason_detail"]


def _contribution(signup: Signup) -> tuple[int, Decimal]:
    """Approved conversions (count, amount) this signup brings its ambassador while it qualifies."""
    if signup.status != Signup.Status.QUALIFIED or signup.ambassador_id is None:
        return 0, Decimal("0")
    approved = list(signup.conversions.filter(status=Conversion.Status.APPROVED).values_list("amount", flat=True))
    return len(approved), sum(approved, Decimal("0"))


# The whole transaction of every change below (override, review, status change), retried on a deadlock.
@transaction_retry()
def _signup_change(
    *,
    signup: Signup,
    actor: Actor,
    action: str,
    reason: str,
    apply: Any,
) -> Signup:
    """Apply a change to a locked signup, moving counters from its old contribution to its new one."""
    if not reason or not reason.strip():
        raise InvalidInput("A reason is required.", field="reason")
    with transaction.atomic():
        # Lock order (core.locking): the signup, then the program's counters, then the ambassadors'.
        # The signup's lock keeps two admins deciding at once from both moving the counters, and a
        # refund or an approval of its conversions from counting against the contribution read below.
        # FOR NO KEY UPDATE, of the signup alone: a recalculation's welcome voucher referring to this
        # signup checks its key at COMMIT, and must not wait for us while we wait for its counters.
        locked = (
            Signup.objects.select_for_update(no_key=True, of=("self",)).select_related("ambassador").get(pk=signup.pk)
        )
        before = signup_snapshot(locked)
        old_ambassador, old_qualified = locked.ambassador_id, int(locked.status == Signup.Status.QUALIFIED)
        old_conv, old_amount = _contribution(locked)
        apply(locked)
        locked.save(update_fields=CHANGEABLE_FIELDS)  # never a key column: the lock stays NO KEY UPDATE
        locked.refresh_from_db()
        # The copy of the signup's credit its purchases carry (for the analytics), in step: after the signup's
        # lock and before the counters', as core.locking orders them.
        Conversion.objects.filter(signup=locked).update(
            signup_ambassador_id=locked.ambassador_id, signup_status=locked.status
        )
        new_qualified = int(locked.status == Signup.Status.QUALIFIED)
        new_conv, new_amount = _contribution(locked)
        moves: list[tuple[int | None, dict[str, Any]]] = [
            (old_ambassador, {"signups": -1, "qualified": -old_qualified, "conversions": -old_conv,
                              "amount": -old_amount}),
            (locked.ambassador_id, {"signups": 1, "qualified": new_qualified, "conversions": new_conv,
                                    "amount": new_amount}),
        ]  # fmt: skip
        # Nobody first (the program's counters only), then the ambassadors by ascending id: two overrides
        # swapping signups between the same two ambassadors take their counters in the same order.
        for ambassador_id, delta in sorted(moves, key=lambda move: (move[0] is not None, move[0] or 0)):
            counters_add(program_id=locked.program_id, ambassador_id=ambassador_id, **delta)
        audit_record(
            actor=actor,
            action=action,
            object_type="signup",
            object_id=locked.pk,
            program_id=locked.program_id,
            before=before,
            after=signup_snapshot(locked),
            reason=reason.strip(),
        )
        # The staff analytics read this signup's day from its rows again until it is rolled up anew.
        signups_reopen(program_id=locked.program_id, created_at=locked.created_at)
        counts_announce(locked.program_id, old_ambassador, locked.ambassador_id)
    return locked


def signup_override(*, signup: Signup, ambassador: Ambassador | None, reason: str, actor: Actor) -> Signup:
    """An admin reassigns (or unassigns) a signup; the reason is mandatory; both ambassadors recount."""
    if ambassador is not None and ambassador.program_id != signup.program_id:
        raise InvalidInput("That ambassador belongs to another program.", field="ambassador_code")

    def apply(locked: Signup) -> None:
        locked.ambassador = ambassador
        locked.method = Signup.Method.MANUAL if ambassador else Signup.Method.NONE
        if ambassador is not None and locked.reason == Signup.Reason.SELF_REFERRAL:
            # A self-referral no longer applies once someone else is credited.
            locked.status, locked.reason, locked.reason_detail = Signup.Status.QUALIFIED, "", ""

    return _signup_change(signup=signup, actor=actor, action="signup.overridden", reason=reason, apply=apply)


def signup_review(*, signup: Signup, status: str, reason: str, actor: Actor) -> Signup:
    """Fraud review: qualify or reject a signup held in `pending_review`, with a reason.

    A signup that is not waiting for review (already qualified, rejected, or reviewed by someone else a
    moment ago) is a Conflict (409): the reviewer decided on a state that is no longer there.
    """
    if status not in (Signup.Status.QUALIFIED, Signup.Status.REJECTED):
        raise InvalidInput("A review qualifies or rejects.", field="status")

    def apply(locked: Signup) -> None:
        # Checked on the locked row: of two reviewers deciding at once, the second finds it decided.
        if locked.status != Signup.Status.PENDING_REVIEW:
            raise Conflict("This signup is not waiting for review.", field="status")
        locked.status = status
        locked.reason = Signup.Reason.REVIEWED
        locked.reason_detail = reason.strip()[:255]

    return _signup_change(signup=signup, actor=actor, action="signup.reviewed", reason=reason, apply=apply)


def signup_status_change(*, signup: Signup, status: str, reason: str, actor: Actor) -> Signup:
    """An admin's later decision on any signup: reject a counted one found fraudulent, or qualify a
    rejected one on appeal (design 3: its rewards follow). The review queue uses signup_review."""
    if status not in (Signup.Status.QUALIFIED, Signup.Status.REJECTED):
        raise InvalidInput("A decision qualifies or rejects.", field="status")

    def apply(locked: Signup) -> None:
        locked.status = status
        locked.reason = Signup.Reason.REVIEWED
        locked.reason_detail = reason.strip()[:255]

    return _signup_change(signup=signup, actor=actor, action="signup.status_changed", reason=reason, apply=apply)
