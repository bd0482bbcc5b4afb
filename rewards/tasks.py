"""Celery tasks of the rewards engine: thin, they take ids, re-read rows and call a service.

Delivered at least once; each is safe to run twice (the services lock and check before they write).
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail

from core.locking import Contention
from core.text import one_line
from rewards import services
from rewards.models import RewardGrant


# Contention: a recalculation aborted by deadlocks on each of its attempts (core.locking) runs again later.
@shared_task(name="rewards.recalculate", acks_late=True, autoretry_for=(Contention,), max_retries=5, retry_backoff=True)
def recalculate(program_id: int, ambassador_ids: list[int] | None) -> None:
    from ambassadors.models import Ambassador

    if ambassador_ids is None:
        ambassador_ids = list(Ambassador.objects.filter(program_id=program_id).values_list("pk", flat=True))
    for ambassador_id in ambassador_ids:
        services.ambassador_recalculate(ambassador_id=ambassador_id)
    services.welcome_grants_withdraw_unreferred(program_id=program_id)
    services.program_recalculate(program_id=program_id)


@shared_task(name="rewards.reconcile", acks_late=True)
def reconcile() -> dict[str, int]:
    return services.reconcile().as_dict()


@shared_task(name="rewards.grant_notify", acks_late=True, autoretry_for=(OSError,), max_retries=5, retry_backoff=True)
def grant_notify(grant_id: int, event: str) -> None:
    grant = (
        RewardGrant.objects.select_related("tier__program", "ambassador", "referee_signup").filter(pk=grant_id).first()
    )
    if grant is None:
        return
    recipient = grant.ambassador.email if grant.ambassador else grant.referee_signup.email  # type: ignore[union-attr]
    program = grant.tier.program
    # Names are checked on input (core.text.plain_text), but rows written before may hold a line break,
    # which in a subject raises BadHeaderError on every retry: the e-mail would never go.
    program_name, tier_name = one_line(program.name), one_line(grant.tier.name)
    if event == "revoked":
        subject = f"{program_name}: a reward was withdrawn"
        body = (
            f"The reward '{grant.tier.name}' (voucher {grant.voucher_code}) was withdrawn because a referral "
            "it counted no longer qualifies."
        )
    else:
        subject = f"{program_name}: you unlocked '{tier_name}'"
        body = f"Thank you! Your voucher code is {grant.voucher_code}."
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [recipient])
