"""Celery tasks of the tracking core."""

from __future__ import annotations

from celery import shared_task

from referrals.services import conversions_approve_due


@shared_task(name="referrals.approve_due_conversions", acks_late=True)
def approve_due_conversions() -> int:
    """Approve conversions whose hold period has passed (beat, every few minutes)."""
    return conversions_approve_due()
