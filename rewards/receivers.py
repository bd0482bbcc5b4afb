"""Rewards listens to referrals: counts changed, so recalculate once the data is committed."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from referrals.signals import counts_changed


@receiver(counts_changed)
def enqueue_recalculation(sender: Any, *, program_id: int, ambassador_ids: list[int], **kwargs: Any) -> None:
    from rewards.services import recalculation_enqueue

    recalculation_enqueue(program_id=program_id, ambassador_ids=ambassador_ids)
