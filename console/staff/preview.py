"""What a reward tier would do, shown before it is saved: a collective tier's price ladder step by step down to
the floor, or how many ambassadors an individual tier would reward today.

The rules are the rewards engine's own, called here, never restated: the price after n drops is
`rewards.pricing.price_after`, the occurrences an ambassador's counters make due are
`rewards.services.recalculation.tier_due`. This module only lays their answers out for the staff console.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from ambassadors.models import AmbassadorCounters, Program, ProgramCounters
from rewards.models import RewardTier
from rewards.pricing import price_after
from rewards.services.recalculation import tier_due

# Lines of the ladder drawn at most: a drop of 0.01 on 100.00 has 10,000 steps; the rest is summarised.
MAX_LADDER_ROWS = 40
# Beyond this many drops a price that has not reached its floor never will (the drop rounds to 0.00).
NEVER = 2**40


@dataclass(frozen=True)
class LadderStep:
    drops: int  # drops reached so far: 0 is the base price, before any
    subscribers: int  # the qualified subscriber count at which this price starts
    price: Decimal  # the price once `drops` drops are reached
    drop: Decimal  # what this step took off the price before it (0 for the base)
    bar: int  # the price as a share of the base price, in percent rounded to 5 (for the bar's width class)
    at_floor: bool

    @property
    def cut_short(self) -> bool:
        """The floor stopped this drop part way: it took off less than the others."""
        return self.at_floor and self.drops > 0


@dataclass(frozen=True)
class LadderPreview:
    currency: str
    base_price: Decimal
    floor_price: Decimal
    step: int
    steps: tuple[LadderStep, ...]
    # Drops until the price reaches its floor; None when it never does (a percent drop rounding to 0.00).
    drops_to_floor: int | None
    hidden_steps: int  # steps between the last line drawn and the floor, not drawn
    subscribers_today: int
    drops_today: int  # drops the program's count reaches today: saved now, the price falls this far at once
    price_today: Decimal

    @property
    def floor_at(self) -> int | None:
        """The subscriber count at which the floor is reached."""
        return None if self.drops_to_floor is None else self.drops_to_floor * self.step


@dataclass(frozen=True)
class UnlockPreview:
    metric: str
    threshold: Decimal
    repeat_every: Decimal | None
    ambassadors: int  # active ambassadors of the program, all counted
    unlocking: int  # how many of them the tier would reward today (at least once)
    occurrences: int  # the rewards that makes, repeats counted


def price_ladder(
    *,
    base_price: Decimal,
    floor_price: Decimal,
    step: int,
    drop_type: str,
    drop_value: Decimal,
    currency: str = "EUR",
    subscribers_today: int = 0,
    max_rows: int = MAX_LADDER_ROWS,
) -> LadderPreview:
    """The ladder of a collective tier from the base price down to the floor, one line per drop."""
    program = Program(base_price=base_price, floor_price=floor_price, currency=currency)
    tier = RewardTier(kind=RewardTier.Kind.COLLECTIVE, step=step, drop_type=drop_type, drop_value=drop_value)

    def price(drops: int) -> Decimal:
        value = price_after(program, tier, drops)
        assert value is not None  # a program with a base price always has one
        return value

    floor = Decimal(floor_price)
    to_floor = _drops_to_floor(price, floor)
    # A price that never reaches its floor never moves at all (its drop rounds to 0.00): one line says so.
    last = to_floor if to_floor is not None else 0
    shown = min(last, max_rows)
    base = price(0)
    steps = []
    previous = base
    for drops in range(shown + 1):
        current = price(drops)
        steps.append(
            LadderStep(
                drops=drops,
                subscribers=drops * step,
                price=current,
                drop=previous - current,
                bar=_bar(current, base),
                at_floor=current <= floor,
            )
        )
        previous = current
    drops_today = min(max(subscribers_today, 0) // step, last)
    return LadderPreview(
        currency=currency,
        base_price=base,
        floor_price=floor,
        step=step,
        steps=tuple(steps),
        drops_to_floor=to_floor,
        hidden_steps=(to_floor - shown) if to_floor is not None else 0,
        subscribers_today=subscribers_today,
        drops_today=drops_today,
        price_today=price(drops_today),
    )


def _drops_to_floor(price: Callable[[int], Decimal], floor: Decimal) -> int | None:
    """The fewest drops that bring the price to the floor, by bisection on the (never rising) price."""
    if price(0) <= floor:
        return 0
    if price(NEVER) > floor:
        return None
    low, high = 0, NEVER  # price(low) > floor >= price(high)
    while high - low > 1:
        middle = (low + high) // 2
        if price(middle) <= floor:
            high = middle
        else:
            low = middle
    return high


def _bar(price: Decimal, base: Decimal) -> int:
    if base <= 0:
        return 0
    fives = int((price / base * 20).to_integral_value())  # the price in percent of the base, in fives
    return min(max(fives * 5, 0), 100)


def unlock_preview(
    *, metric: str, threshold: Decimal, repeat_every: Decimal | None, counters: Iterable[AmbassadorCounters]
) -> UnlockPreview:
    """How many of these ambassadors' counters an individual tier would reward today, by tier_due."""
    tier = RewardTier(
        kind=RewardTier.Kind.INDIVIDUAL, metric=metric, threshold=threshold, repeat_every=repeat_every or None
    )
    ambassadors = unlocking = occurrences = 0
    for line in counters:
        ambassadors += 1
        due = tier_due(tier, line)
        if due:
            unlocking += 1
            occurrences += due
    return UnlockPreview(
        metric=metric,
        threshold=threshold,
        repeat_every=repeat_every or None,
        ambassadors=ambassadors,
        unlocking=unlocking,
        occurrences=occurrences,
    )


def tier_preview(program: Program, fields: dict[str, object]) -> LadderPreview | UnlockPreview | None:
    """The preview of a tier configured as `fields` (checked already by rewards.services.tier_check) in
    `program`: 1 query (the program's subscribers, or its active ambassadors' counters)."""
    if fields.get("kind") == RewardTier.Kind.COLLECTIVE:
        if program.base_price is None or program.floor_price is None:
            return None
        qualified = ProgramCounters.objects.filter(program=program).values_list("qualified", flat=True).first()
        return price_ladder(
            base_price=program.base_price,
            floor_price=program.floor_price,
            step=int(str(fields["step"])),
            drop_type=str(fields["drop_type"]),
            drop_value=Decimal(str(fields["drop_value"])),
            currency=program.currency,
            subscribers_today=qualified or 0,
        )
    repeat = fields.get("repeat_every")
    counters = (
        AmbassadorCounters.objects.filter(ambassador__program=program, ambassador__is_active=True)
        .only("qualified", "conversions", "converted_amount")
        .order_by()
        .iterator(chunk_size=2000)
    )
    return unlock_preview(
        metric=str(fields.get("metric") or RewardTier.Metric.QUALIFIED_SIGNUPS),
        threshold=Decimal(str(fields["threshold"])),
        repeat_every=Decimal(str(repeat)) if repeat is not None else None,
        counters=counters,
    )
