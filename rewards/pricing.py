"""The tier arithmetic, pure and small enough to prove with property-based tests."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")


def occurrences_due(value: Decimal, threshold: Decimal, repeat_every: Decimal | None) -> int:
    """How many occurrences of a tier a metric value has unlocked.

    3 friends for a voucher, again every 3: values 0-2 -> 0, 3-5 -> 1, 6-8 -> 2...
    """
    if value < threshold:
        return 0
    if not repeat_every:
        return 1
    return 1 + int((value - threshold) // repeat_every)


def price_after(program: Any, tier: Any, milestones: int) -> Decimal | None:
    """The collective price once `milestones` steps are reached: base minus the drops, never below the floor."""
    if program.base_price is None:
        return None
    base = Decimal(program.base_price)
    floor = Decimal(program.floor_price if program.floor_price is not None else 0)
    if tier is None or milestones <= 0:
        return base
    drop = Decimal(tier.drop_value)
    if tier.drop_type == "percent":
        drop = (base * drop / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    return max(floor, base - drop * milestones).quantize(CENT)


def next_drop_at(*, step: int, milestones: int, price: Decimal | None, floor: Decimal | None) -> int | None:
    """The subscriber count of the next drop; None once the floor is reached."""
    if price is not None and floor is not None and price <= floor:
        return None
    return (milestones + 1) * step
