"""Vouchers as Stripe promotion codes: when a grant with a percent or fixed-amount voucher is issued in a
program that wants it, a coupon (what it takes off) and a promotion code (the voucher's own code, usable
once) are created through the program's Stripe API key. The checkout that uses it redeems the voucher
(commerce.stripe_events).

rewards sends `grant_issued` after commit; `grant_issued_received` enqueues the task
(commerce.tasks.stripe_promotion_code_create), which calls `promotion_code_create`. Each Stripe request
carries an idempotency key made of the grant's id and voucher code, and each id Stripe answers is stored
as soon as it is known: a task delivered twice, or retried after a failure, creates one coupon and one
code. A failure never touches the grant; the task retries with backoff, and the periodic sweep picks up
what a lost message or a long outage left behind.

The other way: when a grant is revoked (rewards sends `grant_revoked` after commit), its voucher expires, or
a reinstated grant gets a fresh code, the old promotion code is set `active=false` in Stripe
(`promotion_code_deactivate`, task commerce.tasks.stripe_promotion_code_deactivate), with an idempotency key
of the grant's id, the code and "revoke", and `deactivated_at` kept on the row. Same retries, same sweep: a
revocation never waits for Stripe, and a lost message is repaired by the sweep's next run.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import stripe
from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q

from commerce.models import StripeAccount, StripePromotionCode
from commerce.stripe_events import minor_from_amount
from core import clock
from core.actors import Actor
from core.audit import audit_record
from rewards.models import RewardGrant, RewardTier

logger = logging.getLogger(__name__)

# Errors worth trying again: Stripe unreachable, overloaded, or failing on its side. Anything else (a
# refused key, a code already taken) is recorded on the row and left for staff.
RETRYABLE = (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError)
VOUCHER_TYPES = (RewardTier.RewardType.PERCENT_VOUCHER, RewardTier.RewardType.FIXED_VOUCHER)
SWEEP_WINDOW = timedelta(days=7)  # older grants were swept by earlier runs; past it, staff decide
SWEEP_MAX_ATTEMPTS = 20
ACTOR = Actor.task("commerce.stripe_promotion_code_create")
DEACTIVATE_ACTOR = Actor.task("commerce.stripe_promotion_code_deactivate")


def stripe_client(api_key: str) -> stripe.StripeClient:
    """A client of the Stripe API at STRIPE_API_BASE, without the library's own retries (Celery's do)."""
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": settings.STRIPE_API_BASE},
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=settings.STRIPE_API_TIMEOUT),
    )


def _voucher(grant: RewardGrant) -> tuple[str, Any] | None:
    """(reward type, value) of the grant's voucher, or None when it gives no voucher Stripe can apply."""
    tier = grant.tier
    if grant.ambassador_id is not None:
        reward_type, value = tier.reward_type, tier.reward_value
    else:
        reward_type, value = tier.referee_reward_type, tier.referee_reward_value
    if reward_type not in VOUCHER_TYPES or value is None or value <= 0:
        return None
    return reward_type, value


def _coupon_params(grant: RewardGrant, reward_type: str, value: Any) -> dict[str, Any]:
    program = grant.tier.program
    params: dict[str, Any] = {
        "duration": "once",
        "max_redemptions": 1,
        "name": grant.tier.name[:40],
        "metadata": {"parrain_grant": str(grant.pk), "parrain_program": program.slug},
    }
    if reward_type == RewardTier.RewardType.PERCENT_VOUCHER:
        params["percent_off"] = f"{value.normalize():f}"  # "20", never "2E+1"
    else:
        params["amount_off"] = minor_from_amount(value, program.currency)
        params["currency"] = program.currency.lower()
    if grant.expires_at is not None:
        params["redeem_by"] = int(grant.expires_at.timestamp())
    return params


def _idempotency_key(grant: RewardGrant, what: str) -> str:
    # The grant's id and its voucher code: a reinstated grant (a fresh code) is a new promotion code.
    return f"parrain-grant-{grant.pk}-{grant.voucher_code}-{what}"


def promotion_code_create(*, grant_id: int) -> str:
    """Create the grant's coupon and promotion code in Stripe if its program wants them and they do not exist
    yet. Returns what happened ("created", "exists", or why nothing was done). Raises RETRYABLE errors for the
    task to retry; other Stripe errors are recorded on the row and returned."""
    grant = RewardGrant.objects.select_related("tier__program").filter(pk=grant_id).first()
    if grant is None:
        return "no such grant"
    if grant.status not in (RewardGrant.Status.UNLOCKED, RewardGrant.Status.ISSUED):
        return "the voucher is not redeemable"
    if grant.is_expired_at(clock.now()):
        return "the voucher expired"
    program = grant.tier.program
    account = StripeAccount.objects.filter(program=program, promotion_codes_enabled=True).exclude(api_key="").first()
    if account is None:
        return "promotion codes are off for this program"
    voucher = _voucher(grant)
    if voucher is None:
        return "not a voucher Stripe can apply"
    row, _ = StripePromotionCode.objects.get_or_create(
        grant=grant, voucher_code=grant.voucher_code, defaults={"program": program, "created_at": clock.now()}
    )
    if row.promotion_code_id:
        return "exists"
    StripePromotionCode.objects.filter(pk=row.pk).update(attempts=F("attempts") + 1)
    client = stripe_client(account.api_key)
    try:
        if not row.coupon_id:
            coupon = client.v1.coupons.create(
                params=_coupon_params(grant, *voucher),  # type: ignore[arg-type]
                options={"idempotency_key": _idempotency_key(grant, "coupon")},
            )
            # Kept at once: a retry after the promotion code failed reuses this coupon.
            StripePromotionCode.objects.filter(pk=row.pk).update(coupon_id=coupon.id)
            row.coupon_id = coupon.id
        params: dict[str, Any] = {
            "code": grant.voucher_code,
            "promotion": {"type": "coupon", "coupon": row.coupon_id},
            "max_redemptions": 1,
            "metadata": {"parrain_grant": str(grant.pk), "parrain_program": program.slug},
        }
        if grant.expires_at is not None:
            params["expires_at"] = int(grant.expires_at.timestamp())
        promotion_code = client.v1.promotion_codes.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": _idempotency_key(grant, "promotion-code")},
        )
    except stripe.StripeError as exc:
        error = f"{type(exc).__name__}: {exc.user_message or exc}"[:500]
        StripePromotionCode.objects.filter(pk=row.pk).update(last_error=error)
        if isinstance(exc, RETRYABLE):
            raise
        logger.warning("stripe: promotion code of grant %s refused: %s", grant.pk, error)
        return f"refused: {error}"
    finished = StripePromotionCode.objects.filter(pk=row.pk, promotion_code_id="").update(
        promotion_code_id=promotion_code.id, completed_at=clock.now(), last_error=""
    )
    if not finished:  # a second delivery running alongside finished first (the same code, by idempotency)
        return "exists"
    audit_record(
        actor=ACTOR,
        action="reward.promotion_code_created",
        object_type="reward_grant",
        object_id=grant.pk,
        program_id=program.pk,
        after={"stripe_coupon": row.coupon_id, "stripe_promotion_code": promotion_code.id},
        reason="The voucher is a Stripe promotion code.",
    )
    return "created"


def _enqueue(grant_id: int) -> None:
    from commerce.tasks import stripe_promotion_code_create

    try:
        stripe_promotion_code_create.delay(grant_id)
    except Exception:
        logger.warning("stripe promotion code of grant %s not enqueued: the sweep will", grant_id, exc_info=True)


def grant_issued_received(sender: Any, grant_id: int, **kwargs: Any) -> None:
    """Receiver of rewards.signals.grant_issued (after commit): enqueue the promotion code when the grant's
    program turns vouchers into promotion codes; one indexed query otherwise."""
    if StripeAccount.objects.filter(program__tiers__grants__pk=grant_id, promotion_codes_enabled=True).exists():
        _enqueue(grant_id)


def promotion_codes_missing(*, limit: int = 500) -> list[int]:
    """Grants of the last SWEEP_WINDOW, redeemable, in programs with promotion codes on, whose current voucher
    code has no promotion code yet (and has not failed SWEEP_MAX_ATTEMPTS times)."""
    done_or_given_up = StripePromotionCode.objects.filter(
        grant=OuterRef("pk"), voucher_code=OuterRef("voucher_code")
    ).filter(Q(completed_at__isnull=False) | Q(attempts__gte=SWEEP_MAX_ATTEMPTS))
    voucher = Q(ambassador__isnull=False, tier__reward_type__in=VOUCHER_TYPES) | Q(
        ambassador__isnull=True, tier__referee_reward_type__in=VOUCHER_TYPES
    )
    programs = StripeAccount.objects.filter(promotion_codes_enabled=True).exclude(api_key="").values("program_id")
    return list(
        RewardGrant.objects.filter(
            voucher,
            tier__program_id__in=programs,
            status__in=[RewardGrant.Status.UNLOCKED, RewardGrant.Status.ISSUED],
            created_at__gte=clock.now() - SWEEP_WINDOW,
        )
        .exclude(Exists(done_or_given_up))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def _still_redeemable(grant: RewardGrant, row: StripePromotionCode, now: Any) -> bool:
    """Whether the row's code is the grant's live voucher: not revoked, not expired, not replaced."""
    if row.voucher_code != grant.voucher_code:
        return False  # a reinstated grant got a fresh code; the old one stays dead
    if grant.status == RewardGrant.Status.REVOKED:
        return False
    return not grant.is_expired_at(now)


def promotion_code_deactivate(*, grant_id: int) -> str:
    """Set `active=false` in Stripe on the grant's promotion codes that no longer name a redeemable voucher
    (the grant revoked, its voucher expired, or replaced by a fresh code), each once. Returns what happened
    ("deactivated", "nothing to deactivate", or why nothing was done). Raises RETRYABLE errors for the task to
    retry; other Stripe errors are recorded on the row and returned. A redeemed voucher's code is left alone:
    it was used, and its single redemption is spent."""
    grant = RewardGrant.objects.select_related("tier__program").filter(pk=grant_id).first()
    if grant is None:
        return "no such grant"
    now = clock.now()
    rows = [
        row
        for row in StripePromotionCode.objects.filter(grant=grant, deactivated_at__isnull=True).exclude(
            promotion_code_id=""
        )
        if not _still_redeemable(grant, row, now)
    ]
    if not rows:
        return "nothing to deactivate"
    program = grant.tier.program
    # Whether staff still want new codes does not matter: a code already in Stripe must stop working.
    account = StripeAccount.objects.filter(program=program).exclude(api_key="").first()
    if account is None:
        return "no Stripe API key for this program"
    client = stripe_client(account.api_key)
    done = []
    for row in rows:
        StripePromotionCode.objects.filter(pk=row.pk).update(deactivation_attempts=F("deactivation_attempts") + 1)
        try:
            client.v1.promotion_codes.update(
                row.promotion_code_id,
                params={"active": False},
                # The grant's id and the code: the same request however often the task runs.
                options={"idempotency_key": f"parrain-grant-{grant.pk}-{row.voucher_code}-revoke"},
            )
        except stripe.StripeError as exc:
            error = f"{type(exc).__name__}: {exc.user_message or exc}"[:500]
            StripePromotionCode.objects.filter(pk=row.pk).update(last_error=error)
            if isinstance(exc, RETRYABLE):
                raise
            logger.warning("stripe: deactivating the promotion code of grant %s refused: %s", grant.pk, error)
            return f"refused: {error}"
        # Conditional: of two deliveries finishing together, one records it (and audits it).
        if StripePromotionCode.objects.filter(pk=row.pk, deactivated_at__isnull=True).update(
            deactivated_at=clock.now(), last_error=""
        ):
            audit_record(
                actor=DEACTIVATE_ACTOR,
                action="reward.promotion_code_deactivated",
                object_type="reward_grant",
                object_id=grant.pk,
                program_id=program.pk,
                before={"stripe_promotion_code": row.promotion_code_id, "active": True},
                after={"stripe_promotion_code": row.promotion_code_id, "active": False},
                reason=_deactivation_reason(grant, row, now),
            )
            done.append(row.promotion_code_id)
    return "deactivated" if done else "nothing to deactivate"


def _deactivation_reason(grant: RewardGrant, row: StripePromotionCode, now: Any) -> str:
    if row.voucher_code != grant.voucher_code:
        return "The voucher was replaced by a fresh code."
    if grant.status == RewardGrant.Status.REVOKED:
        return "The grant was revoked."
    return "The voucher expired."


def _enqueue_deactivation(grant_id: int) -> None:
    from commerce.tasks import stripe_promotion_code_deactivate

    try:
        stripe_promotion_code_deactivate.delay(grant_id)
    except Exception:
        logger.warning(
            "deactivation of grant %s's promotion code not enqueued: the sweep will", grant_id, exc_info=True
        )


def grant_revoked_received(sender: Any, grant_id: int, **kwargs: Any) -> None:
    """Receiver of rewards.signals.grant_revoked (after commit): enqueue the deactivation when the grant has a
    promotion code Stripe still has active; one indexed query otherwise."""
    if (
        StripePromotionCode.objects.filter(grant_id=grant_id, deactivated_at__isnull=True)
        .exclude(promotion_code_id="")
        .exists()
    ):
        _enqueue_deactivation(grant_id)


def promotion_codes_to_deactivate(*, limit: int = 500) -> list[int]:
    """Grants with a promotion code still active in Stripe that names no redeemable voucher any more: revoked,
    expired (unlocked or issued past its date), or replaced by a fresh code; unless given up on after
    SWEEP_MAX_ATTEMPTS, or the program has no API key."""
    now = clock.now()
    dead = (
        Q(grant__status=RewardGrant.Status.REVOKED)
        | Q(
            grant__status__in=[RewardGrant.Status.UNLOCKED, RewardGrant.Status.ISSUED],
            grant__expires_at__lte=now,
        )
        | ~Q(voucher_code=F("grant__voucher_code"))
    )
    programs = StripeAccount.objects.exclude(api_key="").values("program_id")
    return list(
        StripePromotionCode.objects.filter(
            dead, deactivated_at__isnull=True, deactivation_attempts__lt=SWEEP_MAX_ATTEMPTS, program_id__in=programs
        )
        .exclude(promotion_code_id="")
        .order_by("grant_id")
        .values_list("grant_id", flat=True)
        .distinct()[:limit]
    )


def promotion_codes_sweep() -> int:
    """Enqueue every missing promotion code (promotion_codes_missing) and every deactivation a lost message
    or an outage left undone (promotion_codes_to_deactivate); returns how many tasks."""
    missing = promotion_codes_missing()
    for grant_id in missing:
        _enqueue(grant_id)
    to_deactivate = promotion_codes_to_deactivate()
    for grant_id in to_deactivate:
        _enqueue_deactivation(grant_id)
    return len(missing) + len(to_deactivate)
