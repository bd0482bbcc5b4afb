"""Reads of the rewards engine for pages and API: the live price, an ambassador's rewards and progress."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ambassadors.models import AmbassadorCounters, Program, ProgramCounters
from rewards.models import Milestone, RewardTier
from rewards.pricing import next_drop_at, price_after


def collective_tier(program: Program) -> RewardTier | None:
    return RewardTier.objects.filter(program=program, kind=RewardTier.Kind.COLLECTIVE, is_active=True).first()


def program_price(program: Program) -> dict[str, Any]:
    """The Godin ladder: the price follows from the milestones reached, which are never taken back."""
    tier = collective_tier(program)
    counters = ProgramCounters.objects.filter(program=program).first()
    subscribers = counters.qualified if counters else 0
    reached = Milestone.objects.filter(tier=tier).count() if tier else 0
    current = price_after(program, tier, reached)
    step = tier.step if tier else None
    return {
        "currency": program.currency,
        "base_price": _money(program.base_price),
        "current_price": _money(current),
        "floor_price": _money(program.floor_price),
        "subscribers": subscribers,
        "step": step,
        "next_drop_at": next_drop_at(step=step, milestones=reached, price=current, floor=program.floor_price)
        if step
        else None,
        "milestones_reached": reached,
    }


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{Decimal(value):.2f}"


def leaderboard(program: Program, limit: int = 20) -> list[dict[str, Any]]:
    rows = (
        AmbassadorCounters.objects.filter(ambassador__program=program, ambassador__is_active=True, qualified__gt=0)
        .select_related("ambassador")
        .order_by("-qualified", "ambassador__created_at")[:limit]
    )
    return [
        {
            "rank": i,
            "display_name": c.ambassador.display_name or "Anonymous ambassador",
            "qualified": c.qualified,
        }
        for i, c in enumerate(rows, 1)
    ]
