"""Celery tasks of the commerce app: thin, safe to run twice; the rules are in the services they call."""

from __future__ import annotations

import stripe
from celery import shared_task

# --- The embedded dashboard and waitlists ---------------------------------------------------------------


@shared_task(
    name="commerce.waitlist_notify", acks_late=True, autoretry_for=(OSError,), max_retries=5, retry_backoff=True
)
def waitlist_notify() -> int:
    """E-mail each new subscriber of a running waitlist their place in line, once (beat, every minute)."""
    from commerce.waitlist import waitlist_notify_due

    return waitlist_notify_due()


@shared_task(name="commerce.embed_tokens_purge", acks_late=True)
def embed_tokens_purge() -> int:
    """Delete the rows of embed tokens expired for a week (beat, daily)."""
    from commerce.embed import embed_tokens_purge as purge

    return purge()


# --- Stripe: vouchers as promotion codes ------------------------------------------------------------------


@shared_task(
    name="commerce.stripe_promotion_code_create",
    acks_late=True,
    # Stripe unreachable, overloaded or failing on its side (commerce.stripe_promotions.RETRYABLE).
    autoretry_for=(stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError),
    max_retries=8,
    retry_backoff=30,  # 30 s, 1 min, 2 min ... about 2 h in all; then the sweep's next runs
    retry_backoff_max=3600,
    retry_jitter=True,
)
def stripe_promotion_code_create(grant_id: int) -> str:
    """The grant's voucher as a Stripe promotion code: created once, however often delivered or retried."""
    from commerce.stripe_promotions import promotion_code_create

    return promotion_code_create(grant_id=grant_id)


@shared_task(
    name="commerce.stripe_promotion_code_deactivate",
    acks_late=True,
    autoretry_for=(stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError),
    max_retries=8,
    retry_backoff=30,
    retry_backoff_max=3600,
    retry_jitter=True,
)
def stripe_promotion_code_deactivate(grant_id: int) -> str:
    """A revoked, expired or replaced voucher's Stripe promotion code set inactive, once."""
    from commerce.stripe_promotions import promotion_code_deactivate

    return promotion_code_deactivate(grant_id=grant_id)


@shared_task(name="commerce.stripe_promotion_codes_sweep", acks_late=True)
def stripe_promotion_codes_sweep() -> int:
    """Enqueue the promotion codes a lost message or a Stripe outage left uncreated, and the deactivations it
    left undone (beat, every 10 minutes)."""
    from commerce.stripe_promotions import promotion_codes_sweep

    return promotion_codes_sweep()
