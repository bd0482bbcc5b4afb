"""Celery tasks of the rewards engine: thin, they take ids, re-read rows and call a service.

Delivered at least once; each is safe to run twice (the services lock and check before they write).
"""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task

from core import clock
from core.locking import Contention
from rewards import notifications, services


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


# The coalesced form of `recalculate` (rewards.pending): the ambassadors are read from the program's mark.
@shared_task(
    name="rewards.recalculate_pending", acks_late=True, autoretry_for=(Contention,), max_retries=5, retry_backoff=True
)
def recalculate_pending(program_id: int) -> int:
    return services.pending_recalculate(program_id=program_id)


@shared_task(name="rewards.fold_counts", acks_late=True, autoretry_for=(Contention,), max_retries=5, retry_backoff=True)
def fold_counts() -> int:
    """Every 30 s (CELERY_BEAT_SCHEDULE): fold the signups whose own recalculation message was lost into
    their program's counters, and record the milestones they reach; recalculate the ambassadors still
    marked pending (rewards.pending). Safe to run any number of times."""
    return services.program_counts_fold_pending()


@shared_task(name="rewards.reconcile", acks_late=True)
def reconcile() -> dict[str, int]:
    return services.reconcile().as_dict()


@shared_task(name="rewards.grant_notify", acks_late=True, autoretry_for=(OSError,), max_retries=5, retry_backoff=True)
def grant_notify(grant_id: int, event: str) -> None:
    # At most once per grant, event and voucher code, however often delivered (core.notifications).
    # OSError covers smtplib's errors: the failed send released its claim, and the retry sends it.
    notifications.grant_email_send(grant_id=grant_id, event=event)


@shared_task(name="rewards.price_drop_announce", acks_late=True)
def price_drop_announce(milestone_id: int) -> int:
    """Fan out "the price dropped" in batches, one task each. Running twice enqueues the batches twice,
    and the marker lets each recipient get one e-mail."""
    batches = 0
    for ambassador_ids, signup_ids in notifications.price_drop_batches(milestone_id=milestone_id):
        price_drop_send.delay(milestone_id, ambassador_ids, signup_ids)
        batches += 1
    return batches


@shared_task(
    name="rewards.price_drop_send", acks_late=True, autoretry_for=(OSError,), max_retries=5, retry_backoff=True
)
def price_drop_send(milestone_id: int, ambassador_ids: list[int], signup_ids: list[int]) -> int:
    return notifications.price_drop_send(
        milestone_id=milestone_id, ambassador_ids=ambassador_ids, signup_ids=signup_ids
    )


@shared_task(name="rewards.freeze_ended_contests", acks_late=True)
def freeze_ended_contests() -> int:
    """Every minute (CELERY_BEAT_SCHEDULE): freeze the contests that ended; each is frozen once whatever
    the number of runs. Winners whose e-mail was lost with a broker outage are asked for again."""
    frozen = services.contests_freeze_ended()
    now = clock.now()
    for winner_id in services.contest_winners_unnotified(
        frozen_after=now - timedelta(days=1), frozen_before=now - timedelta(minutes=5)
    ):
        contest_winner_notify.delay(winner_id)
    return frozen


@shared_task(
    name="rewards.contest_winner_notify", acks_late=True, autoretry_for=(OSError,), max_retries=5, retry_backoff=True
)
def contest_winner_notify(winner_id: int) -> None:
    services.contest_winner_notify(winner_id=winner_id)
