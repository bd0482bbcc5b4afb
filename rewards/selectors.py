"""Reads of the rewards engine for pages and API: the live price, an ambassador's rewards and progress."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ambassadors.models import Ambassador, AmbassadorCounters, Program, ProgramCounters
from rewards.models import Milestone, RewardGrant, RewardTier
from rewards.pricing import next_drop_at, occurrences_due, price_after
from rewards.services import metric_value


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


def ambassador_rewards(ambassador: Ambassador) -> list[dict[str, Any]]:
    grants = RewardGrant.objects.filter(ambassador=ambassador).select_related("tier").order_by("tier_id", "occurrence")
    return [
        {
            "tier": g.tier.name,
            "occurrence": g.occurrence,
            "status": g.status,
            "voucher_code": None if g.status == RewardGrant.Status.REVOKED else g.voucher_code,
        }
        for g in grants
    ]


def ambassador_progress(ambassador: Ambassador) -> dict[str, Any] | None:
    """The next individual reward and how far the ambassador is from it."""
    counters = AmbassadorCounters.objects.filter(ambassador=ambassador).first()
    if counters is None:
        return None
    best: dict[str, Any] | None = None
    for tier in RewardTier.objects.filter(
        program_id=ambassador.program_id, kind=RewardTier.Kind.INDIVIDUAL, is_active=True
    ):
        if tier.threshold is None:
            continue
        value = metric_value(counters, tier.metric)
        due = occurrences_due(value, tier.threshold, tier.repeat_every)
        if due >= 1 and not tier.repeat_every:
            continue  # reached, and it does not repeat
        target = tier.threshold + (tier.repeat_every or 0) * due
        remaining = target - value
        if best is None or remaining < best["remaining_value"]:
            best = {
                "tier": tier.name,
                "metric": tier.metric,
                "current": _number(value),
                "target": _number(target),
                "remaining_value": remaining,
            }
    if best is not None:
        best["remaining"] = _number(best.pop("remaining_value"))
    return best


def _number(value: Decimal) -> str | int:
    return int(value) if value == value.to_integral_value() else f"{value:.2f}"


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
