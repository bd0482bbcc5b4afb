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


@shared_task(name="referrals.ensure_click_partitions", acks_late=True)
def ensure_click_partitions() -> list[str]:
    """PostgreSQL: the click table's monthly partitions, CLICK_PARTITIONS_AHEAD months ahead (beat, daily).
    Idempotent; nothing on SQLite. Returns the partitions it created."""
    from referrals.services.partitions import click_partitions_ensure

    return click_partitions_ensure().created


@shared_task(name="referrals.rotate_ip_pepper", acks_late=True)
def rotate_ip_pepper() -> bool:
    """A new pepper for the IP hashes and the old ones deleted (beat, monthly; `manage.py rotate_ip_pepper`).
    Safe to run twice: a pepper younger than a day is kept."""
    from core.actors import Actor
    from referrals.services.peppers import ip_pepper_rotate

    return ip_pepper_rotate(actor=Actor.task("referrals.rotate_ip_pepper")).created is not None


@shared_task(name="referrals.purge_old_clicks", acks_late=True)
def purge_old_clicks() -> int:
    """Roll up and delete the clicks past each program's retention (beat, daily; `manage.py purge_clicks`).
    Safe to run twice: what was purged is not purged again."""
    from core.actors import Actor
    from referrals.services.retention import clicks_purge

    return clicks_purge(actor=Actor.task("referrals.purge_old_clicks")).deleted
