"""Read models of a program's public face: its page (`/p/<slug>/`) and its embeddable widget.

What an ambassador gets, the live price and the way to its next drop, and the leaderboard when the
program shows it, as frozen dataclasses. A fixed number of queries, however many tiers or leaders.

Both are read on every visit of a busy public page, so they are kept in the cache for at most
`FRESH_FOR` (5 s), and recomputed at once when the program's counters move (a new subscriber): the
price shown is never older than 5 s.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.core.cache import cache

from ambassadors.models import Ambassador, Program, ProgramCounters
from console.selectors import PriceView, _number
from core import clock
from rewards.models import RewardTier
from rewards.selectors import ANONYMOUS_AMBASSADOR, leaderboard, program_price


@dataclass(frozen=True)
class PriceProgress:
    """The live price and the way to its next drop: `done` of `step` subscribers, `remaining` to go."""

    price: PriceView
    has_ladder: bool  # a base price and an active collective tier
    step: int | None
    done: int | None  # None once the floor is reached (no next drop)
    remaining: int | None


@dataclass(frozen=True)
class RewardOffer:
    """What a tier grants, for the template to put in words: `type` is a RewardTier.RewardType value."""

    type: str
    value: int | str | None  # 20 (percent), "5.00" (an amount in the program's currency), None (custom)
    text: str  # the custom reward's own words
    currency: str = ""  # a cash reward's currency ("" for the others: the program's)


@dataclass(frozen=True)
class TierOffer:
    """One active individual tier: reach `threshold` of `metric` (again every `repeat_every`) to get `reward`."""

    name: str
    metric: str  # a RewardTier.Metric value
    threshold: int | str  # a count, or an amount "50.00" for the converted amount
    repeat_every: int | str | None
    reward: RewardOffer
    referee_reward: RewardOffer | None  # double-sided: what the friend gets


@dataclass(frozen=True)
class LeaderLine:
    rank: int
    display_name: str  # the chosen name, "" for an anonymous ambassador (the page says so in its language)
    qualified: int


@dataclass(frozen=True)
class ProgramPage:
    slug: str
    name: str
    description: str
    currency: str
    progress: PriceProgress
    offers: tuple[TierOffer, ...]  # lowest threshold first
    leaders: tuple[LeaderLine, ...] | None  # None when the program keeps its leaderboard private
    is_ambassador: bool  # the visitor already is one (then the page leads to their dashboard)


LEADERS_SHOWN = 10
# The oldest a cached price may be when it is shown.
FRESH_FOR = timedelta(seconds=5)

T = TypeVar("T")


def _recent(program: Program, name: str, compute: Callable[[], T]) -> T:
    """`compute()`, or its cached value when computed less than FRESH_FOR ago with the program's counters as
    they are now (1 query). The age is checked against core.clock, not left to the cache's own expiry."""
    counters = ProgramCounters.objects.filter(program=program).values_list("signups", "qualified", "updated_at").first()
    version = "-".join(str(c.timestamp() if hasattr(c, "timestamp") else c) for c in counters or ())
    key = f"console.program:{name}:{program.pk}:{version}"
    now = clock.now()
    hit = cache.get(key)
    if hit is not None and now - hit[0] < FRESH_FOR:
        return hit[1]
    value = compute()
    cache.set(key, (now, value), timeout=FRESH_FOR.total_seconds())
    return value


def program_progress(program: Program) -> PriceProgress:
    """The price now and the progress to its next drop, at most 5 s old: 1 query, 4 when recomputed."""
    return _recent(program, "progress", lambda: _progress_now(program))


def _progress_now(program: Program) -> PriceProgress:
    """The price now and the progress to its next drop: 3 queries (program_price)."""
    price = PriceView(**program_price(program))
    step, next_at = price.step, price.next_drop_at
    remaining = done = None
    if step and next_at is not None:
        remaining = max(0, next_at - price.subscribers)
        done = max(0, min(step, step - remaining))
    return PriceProgress(
        price=price,
        has_ladder=bool(price.base_price) and bool(step),
        step=step,
        done=done,
        remaining=remaining,
    )


def program_page_data(program: Program, *, user: Any = None, show_leaders: bool = False) -> ProgramPage:
    """Everything `/p/<slug>/` shows, at most 5 s old: 1 query when cached, 6 when recomputed, however many
    tiers or leaders; 1 more for a signed-in visitor.

    `show_leaders`: the policy's answer (`may_read_leaderboard`), public programs' to everyone.
    """
    shared = _recent(program, f"page:{int(show_leaders)}", lambda: _page_now(program, show_leaders=show_leaders))
    is_ambassador = bool(
        user is not None
        and user.is_authenticated
        and Ambassador.objects.filter(program=program, user=user, is_active=True).exists()
    )
    return replace(shared, is_ambassador=is_ambassador)


def _page_now(program: Program, *, show_leaders: bool) -> ProgramPage:
    """The page as anybody sees it (is_ambassador False): 5 queries."""
    tiers = RewardTier.objects.filter(program=program, kind=RewardTier.Kind.INDIVIDUAL, is_active=True).order_by(
        "threshold", "id"
    )
    leaders = None
    if show_leaders:
        leaders = tuple(
            LeaderLine(
                rank=row["rank"],
                display_name="" if row["display_name"] == ANONYMOUS_AMBASSADOR else row["display_name"],
                qualified=row["qualified"],
            )
            for row in leaderboard(program, limit=LEADERS_SHOWN)
        )
    return ProgramPage(
        slug=program.slug,
        name=program.name,
        description=program.description,
        currency=program.currency,
        progress=_progress_now(program),
        offers=tuple(_offer(tier) for tier in tiers if tier.threshold is not None),
        leaders=leaders,
        is_ambassador=False,
    )


def _offer(tier: RewardTier) -> TierOffer:
    assert tier.threshold is not None  # a tier without a threshold is not offered (filtered by the caller)
    return TierOffer(
        name=tier.name,
        metric=tier.metric,
        threshold=_number(tier.threshold),
        repeat_every=None if tier.repeat_every is None else _number(tier.repeat_every),
        reward=_reward(tier.reward_type, tier.reward_value, tier.reward_text, tier.reward_currency),
        referee_reward=_reward(tier.referee_reward_type, tier.referee_reward_value, "")
        if tier.referee_reward_type
        else None,
    )


def _reward(kind: str, value: Decimal | None, text: str, currency: str = "") -> RewardOffer:
    if kind == RewardTier.RewardType.CASH and value is not None:
        return RewardOffer(type=kind, value=f"{value:.2f}", text=text, currency=currency)
    if kind == RewardTier.RewardType.PERCENT_VOUCHER and value is not None:
        return RewardOffer(type=kind, value=_number(value), text=text)
    if value is not None and kind in (RewardTier.RewardType.FIXED_VOUCHER, RewardTier.RewardType.ACCOUNT_CREDIT):
        return RewardOffer(type=kind, value=f"{value:.2f}", text=text)
    return RewardOffer(type=RewardTier.RewardType.CUSTOM, value=None, text=text)


def widget_frame_ancestors(program: Program, *, debug: bool) -> list[str]:
    """Where the widget may be framed: the destination's host and the allowed redirect hosts, over https
    (and http too in development). No declared host: nowhere ('none')."""
    hosts: list[str] = []
    destination = urlsplit(program.destination_url).hostname if program.destination_url else None
    for host in [destination, *(program.allowed_redirect_hosts or [])]:
        host = (host or "").strip().lower()
        if host and host not in hosts and _is_host(host):
            hosts.append(host)
    schemes = ("https", "http") if debug else ("https",)
    return [f"{scheme}://{host}" for host in hosts for scheme in schemes] or ["'none'"]


def _is_host(host: str) -> bool:
    """A bare host name (letters, digits, dots, hyphens, an optional port): nothing that could end the
    directive or add a source expression to the header."""
    return re.fullmatch(r"[a-z0-9.-]+(:[0-9]{1,5})?", host) is not None
