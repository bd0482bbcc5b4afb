"""Rewards listens to referrals and ambassadors: counts changed, or an ambassador was (de)activated, so
recalculate once the data is committed."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from ambassadors.signals import ambassador_changed
from referrals.signals import counts_changed


@receiver(counts_changed)
@receiver(ambassador_changed)
def enqueue_recalculation(sender: Any, *, program_id: int, ambassador_ids: list[int], **kwargs: Any) -> None:
    from rewards.services import recalculation_enqueue

    recalculation_enqueue(program_id=program_id, ambassador_ids=ambassador_ids)
