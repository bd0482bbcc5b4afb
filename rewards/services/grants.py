"""Grants: unlocking, revoking or flagging, reinstating and redeeming vouchers, each audited and e-mailed."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from ambassadors.models import Ambassador
from core import clock
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, InvalidInput, NotFound
from core.locking import transaction_retry
from core.models import AuditEvent
from core.text import plain_text
from referrals.models import Signup
from rewards.models import RewardGrant, RewardTier
from rewards.signals import grant_issued, grant_revoked

logger = logging.getLogger(__name__)


VOUCHER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


SYSTEM = Actor.system("rewards")


def voucher_code_generate() -> str:
    """16 characters from 31 (about 79 bits): unguessable, and still readable over the phone."""
    raw = "".join(secrets.choice(VOUCHER_ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def voucher_expiry(tier: RewardTier, unlocked_at: datetime) -> datetime | None:
    """When a voucher of `tier` unlocked at `unlocked_at` expires: its valid days later, or never (None)."""
    days = tier.voucher_valid_days
    return unlocked_at + timedelta(days=days) if days else None


def grant_create(
    *,
    tier: RewardTier,
    occurrence: int,
    ambassador: Ambassador | None = None,
    referee_signup: Signup | None = None,
) -> RewardGrant | None:
    now = clock.now()
    try:
        with transaction.atomic():
            grant = RewardGrant.objects.create(
                tier=tier,
                ambassador=ambassador,
                referee_signup=referee_signup,
                occurrence=occurrence,
                voucher_code=voucher_code_generate(),
                created_at=now,
                expires_at=voucher_expiry(tier, now),
            )
            _grant_audit(grant, "reward.unlocked", reason=f"{tier.name}, occurrence {occurrence}")
    except IntegrityError:
        # Already granted by a concurrent run: the unique constraint kept it to one.
        return None
    _notify(grant.pk, "unlocked")
    return grant


def grant_reinstate(grant: RewardGrant) -> bool:
    """A withdrawn grant whose reason is back: revoked -> unlocked with a fresh voucher, or a flagged redeemed
    one unflagged. One conditional update each, like grant_withdraw; returns whether a row changed."""
    before = _grant_snapshot(grant)
    flagged = RewardGrant.objects.filter(pk=grant.pk, status=RewardGrant.Status.REDEEMED, flagged=True)
    if flagged.update(flagged=False):
        # Flagged when its reason went away; the reason is back, so staff have nothing left to decide.
        before.update(status=RewardGrant.Status.REDEEMED, flagged=True)
        grant.status, grant.flagged = RewardGrant.Status.REDEEMED, False
        _grant_audit(
            grant, "reward.unflagged", before=before, reason="Reached again: the redeemed voucher is earned after all."
        )
        return True
    code = voucher_code_generate()  # the revoked code stays dead
    # A fresh voucher, valid for the tier's days from now (not from the first unlock, which it may be past).
    expires_at = voucher_expiry(grant.tier, clock.now())
    revoked = RewardGrant.objects.filter(pk=grant.pk, status=RewardGrant.Status.REVOKED)
    if revoked.update(status=RewardGrant.Status.UNLOCKED, revoked_at=None, voucher_code=code, expires_at=expires_at):
        before.update(status=RewardGrant.Status.REVOKED)
        grant.status, grant.revoked_at, grant.voucher_code = RewardGrant.Status.UNLOCKED, None, code
        grant.expires_at = expires_at
        _grant_audit(grant, "reward.unlocked", before=before, reason="Reached again after a revocation.")
        _notify(grant.pk, "unlocked")
        return True
    return False


def grant_withdraw(grant: RewardGrant, *, reason: str) -> str:
    """Design 3: not yet redeemed -> revoked; redeemed -> flagged for staff. Returns what happened:
    "revoked", "flagged" or "unchanged".

    Decided by one conditional UPDATE on the row as it is when written, never by the caller's earlier read:
    the shop's checkout (grant_redeem, a conditional update too) may redeem the voucher in between. If it
    committed first, the revocation matches no row and the redeemed voucher is flagged instead; if the
    revocation committed first, the redemption matches no row and is refused. Audited and e-mailed only
    when a row changed, so two withdrawals racing e-mail once.
    """
    before = _grant_snapshot(grant)
    now = timezone.now()
    for status in (RewardGrant.Status.UNLOCKED, RewardGrant.Status.ISSUED):
        if RewardGrant.objects.filter(pk=grant.pk, status=status).update(
            status=RewardGrant.Status.REVOKED, revoked_at=now
        ):
            before.update(status=status)
            grant.status, grant.revoked_at = RewardGrant.Status.REVOKED, now
            _grant_audit(grant, "reward.revoked", before=before, reason=reason)
            _notify(grant.pk, "revoked")
            return "revoked"
    if RewardGrant.objects.filter(pk=grant.pk, status=RewardGrant.Status.REDEEMED, flagged=False).update(flagged=True):
        before.update(status=RewardGrant.Status.REDEEMED, flagged=False)
        grant.status, grant.flagged = RewardGrant.Status.REDEEMED, True
        _grant_audit(grant, "reward.flagged", before=before, reason=reason)
        return "flagged"
    return "unchanged"


def _grant_audit(
    grant: RewardGrant,
    action: str,
    *,
    before: dict[str, Any] | None = None,
    reason: str = "",
    actor: Actor = SYSTEM,
    after_extra: dict[str, Any] | None = None,
) -> None:
    audit_record(
        actor=actor,
        action=action,
        object_type="reward_grant",
        object_id=grant.pk,
        program_id=grant.tier.program_id,
        before=before,
        after={**_grant_snapshot(grant), **(after_extra or {})},
        reason=reason,
    )


def _grant_snapshot(grant: RewardGrant) -> dict[str, Any]:
    return {
        "tier": grant.tier_id,
        "ambassador": grant.ambassador_id,
        "referee_signup": grant.referee_signup_id,
        "occurrence": grant.occurrence,
        "status": grant.status,
        "flagged": grant.flagged,
    }


def _notify(grant_id: int, event: str) -> None:
    if event == "unlocked":
        # After commit, the layers above (commerce: the voucher as a Stripe promotion code) hear of it.
        transaction.on_commit(lambda: grant_issued.send_robust(sender=RewardGrant, grant_id=grant_id))
    elif event == "revoked":
        # commerce: the voucher's Stripe promotion code, if any, is set inactive.
        transaction.on_commit(lambda: grant_revoked.send_robust(sender=RewardGrant, grant_id=grant_id))

    def send() -> None:
        from rewards.tasks import grant_notify

        try:
            grant_notify.delay(grant_id, event)
        except Exception:
            logger.warning("e-mail for grant %s not enqueued", grant_id)

    transaction.on_commit(send)


def welcome_grants_withdraw_unreferred(*, program_id: int) -> int:
    """Revoke the welcome vouchers of referees whom no ambassador referred any more (an override to nobody).

    No ambassador's recalculation sees them, since the signup has no ambassador now. Returns how many.
    """
    revoked = 0
    candidates = (
        RewardGrant.objects.filter(
            tier__program_id=program_id,
            tier__is_active=True,  # an inactive tier takes nothing back (recalculation.py)
            referee_signup__isnull=False,
            referee_signup__ambassador__isnull=True,
        )
        .exclude(status=RewardGrant.Status.REVOKED)
        .exclude(status=RewardGrant.Status.REDEEMED, flagged=True)
        .select_related("tier")
    )
    for grant in list(candidates):
        if _welcome_grant_withdraw(grant) == "revoked":
            revoked += 1
    return revoked


@transaction_retry()
def _welcome_grant_withdraw(grant: RewardGrant) -> str:
    with transaction.atomic():
        # No lock needed: grant_withdraw's conditional update lets one of two sweepers withdraw (and e-mail).
        return grant_withdraw(grant, reason="The referee is no longer referred by an ambassador.")


CASH_NOT_REDEEMABLE = (
    "This code belongs to a cash reward, paid to the ambassador's bank account: it is not a voucher and cannot be "
    "redeemed."
)


def grant_is_cash(grant: RewardGrant) -> bool:
    """Whether the grant is an ambassador's cash reward (paid by a payout run, rewards.services.payouts), not a
    voucher. A referee's welcome grant of a cash tier is the tier's welcome voucher: never cash."""
    return grant.ambassador_id is not None and grant.tier.reward_type == RewardTier.RewardType.CASH


@transaction_retry()
def grant_redeem(*, grant: RewardGrant, actor: Actor) -> RewardGrant:
    """Mark a voucher as used (staff do, from the admin). A conditional update: a voucher revoked
    meanwhile (grant_withdraw) is refused, whatever the caller read. The shop's checkout uses
    grant_redeem_for_order, which records the order too. A cash reward is paid, never redeemed: refused."""
    # The tier as stored, not as the caller's copy says: a tier's reward type is what decides.
    if RewardGrant.objects.filter(
        pk=grant.pk, ambassador__isnull=False, tier__reward_type=RewardTier.RewardType.CASH
    ).exists():
        raise Conflict(CASH_NOT_REDEEMABLE)
    with transaction.atomic():
        changed = RewardGrant.objects.filter(
            pk=grant.pk, status__in=[RewardGrant.Status.UNLOCKED, RewardGrant.Status.ISSUED]
        ).update(status=RewardGrant.Status.REDEEMED, redeemed_at=timezone.now())
        if not changed:
            raise InvalidInput("Only an unlocked or issued voucher can be redeemed.", field="status")
        grant.refresh_from_db()
        _grant_audit(grant, "reward.redeemed", actor=actor)
    return grant


def voucher_key(code: str) -> str | None:
    """The stored spelling of a voucher code as a customer typed it (spaces around it, any case), or None
    when it cannot be one (too long, or not the letters, digits and dashes codes are made of): no query is
    sent for such a code, whatever it holds."""
    key = code.strip().upper()
    if not key or len(key) > RewardGrant._meta.get_field("voucher_code").max_length:  # type: ignore[operator]
        return None
    if not all(c.isascii() and (c.isalnum() or c == "-") for c in key):
        return None
    return key


def grant_revocation_reason(grant: RewardGrant) -> str:
    """Why a revoked grant was revoked, as its audit event says ("" if none does)."""
    event = (
        AuditEvent.objects.filter(object_type="reward_grant", object_id=str(grant.pk), action="reward.revoked")
        .order_by("-created_at", "-id")
        .only("reason")
        .first()
    )
    return event.reason if event is not None else ""


@transaction_retry()
def grant_redeem_for_order(*, grant: RewardGrant, order_reference: str, actor: Actor) -> tuple[RewardGrant, bool]:
    """The shop redeems a voucher for an order at checkout. Returns (the grant, whether this call redeemed it).

    Idempotent on the order: the same order again returns the same redemption, changed nothing. A voucher is
    redeemed at most once, however many checkouts race: the grant's row is locked (step 5 of the lock order,
    core.locking) before its status is read, so the second order waits for the first to commit and is then
    refused with Conflict naming when, and by which order, it was redeemed. A revoked voucher is refused with
    Conflict and its reason, an expired one (RewardGrant.is_expired_at, by the clock) with its expiry date;
    the order that redeemed it before it expired still gets its redemption back. grant_withdraw's conditional
    update waits on the same lock, then flags the redeemed voucher instead of revoking it. A cash reward's code
    is no voucher: refused with Conflict (CASH_NOT_REDEEMABLE), whatever its status.
    """
    order_reference = plain_text(order_reference, field="order_reference", max_length=128, required=True)
    with transaction.atomic():
        locked = (
            RewardGrant.objects.select_for_update(no_key=True, of=("self",))
            .select_related("tier")
            .filter(pk=grant.pk)
            .first()
        )
        if locked is None:  # its ambassador was deleted meanwhile
            raise NotFound("No voucher with this code in this program.")
        if grant_is_cash(locked):
            # Paid to a bank account by a payout run: redeeming it at a checkout would pay it twice.
            raise Conflict(CASH_NOT_REDEEMABLE)
        if locked.status == RewardGrant.Status.REDEEMED:
            if locked.redeemed_order == order_reference:
                return locked, False
            raise Conflict(_redeemed_already(locked))
        if locked.status == RewardGrant.Status.REVOKED:
            raise Conflict(_revoked_message(locked))
        if locked.is_expired_at(clock.now()):
            raise Conflict(expired_message(locked))
        before = _grant_snapshot(locked)
        locked.status = RewardGrant.Status.REDEEMED
        locked.redeemed_at = timezone.now()
        locked.redeemed_order = order_reference
        locked.save(update_fields=["status", "redeemed_at", "redeemed_order"])
        _grant_audit(
            locked,
            "reward.redeemed",
            before=before,
            actor=actor,
            reason=f"Order {order_reference}",
            after_extra={"redeemed_order": order_reference},
        )
    return locked, True


def _when(moment: Any) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "an unknown date"


def _redeemed_already(grant: RewardGrant) -> str:
    by = f"by another order ({grant.redeemed_order})" if grant.redeemed_order else "by staff, without an order"
    return f"This voucher was already redeemed on {_when(grant.redeemed_at)} {by}; a voucher is redeemed once."


def expired_message(grant: RewardGrant) -> str:
    return f"This voucher expired on {_when(grant.expires_at)}."


def _revoked_message(grant: RewardGrant) -> str:
    reason = grant_revocation_reason(grant)
    message = f"This voucher was revoked on {_when(grant.revoked_at)} and can no longer be redeemed."
    return f"{message} Reason: {reason}" if reason else message
