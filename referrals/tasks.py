"""Celery tasks of the tracking core."""

from __future__ import annotations

from celery import shared_task

from referrals import notifications
from referrals.services import conversions_approve_due


@shared_task(name="referrals.approve_due_conversions", acks_late=True)
def approve_due_conversions() -> int:
    """Approve conversions whose hold period has passed (beat, every few minutes)."""
    return conversions_approve_due()


@shared_task(
    name="referrals.friend_subscribed_notify",
    acks_late=True,
    autoretry_for=(OSError,),
    max_retries=5,
    retry_backoff=True,
)
def friend_subscribed_notify(signup_id: int) -> None:
    """E-mail the ambassador that a friend subscribed through their link; at most once per signup."""
    notifications.friend_subscribed_send(signup_id=signup_id)


@shared_task(name="referrals.rollup_analytics", acks_late=True)
def rollup_analytics(program_id: int | None = None) -> int:
    """Roll up the days that are over (and those a change reopened) for the staff analytics: beat runs it for
    every program; a change to a past day's signup enqueues it for its program. Safe to run twice."""
    from ambassadors.models import Program
    from referrals.services.rollups import rollup_due

    programs = None if program_id is None else Program.objects.filter(pk=program_id)
    return rollup_due(programs=programs).days
