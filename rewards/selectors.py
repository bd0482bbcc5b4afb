"""Reads of the rewards engine for pages and API: the live price, an ambassador's rewards and progress."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import F, Max, Q

from ambassadors.models import Ambassador, Program, ProgramCounters
from referrals.models import Signup
from rewards.models import Milestone, RewardTier
from rewards.pricing import next_drop_at, price_after

# What others see of an ambassador who chose no display name (the API's JSON keeps it in English).
ANONYMOUS_AMBASSADOR = "Anonymous ambassador"


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
    """The program's best ambassadors, honestly: active ambassadors with at least one qualified friend,
    never padded up to `limit`; shown by display name or as "Anonymous ambassador", never by e-mail.

    A tie goes to whoever got there first: the ambassador whose last counted (qualified, credited) friend
    signed up earlier ranks first. One query: the counters with the latest qualified signup per ambassador.
    """
    rows = (
        Ambassador.objects.filter(program=program, is_active=True, counters__qualified__gt=0)
        .annotate(
            counted=F("counters__qualified"),
            reached_at=Max("signups__created_at", filter=Q(signups__status=Signup.Status.QUALIFIED)),
        )
        .order_by("-counted", F("reached_at").asc(nulls_last=True), "pk")
        .values("display_name", "counted")[:limit]
    )
    return [
        {
            "rank": i,
            "display_name": row["display_name"] or ANONYMOUS_AMBASSADOR,
            "qualified": row["counted"],
        }
        for i, row in enumerate(rows, 1)
    ]
