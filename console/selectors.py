"""Read models of the screens: what the dashboard, the staff console and the audit console show, across
apps, as plain frozen dataclasses. Each function costs a fixed number of queries, however many rows.

This is the top layer: it reads every domain app, and none of them imports it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Count, Q

from ambassadors.models import Ambassador, AmbassadorCounters, Program, ProgramCounters
from ambassadors.selectors import ambassadorships_of
from core.models import AuditEvent
from referrals.models import Conversion, Signup
from referrals.selectors import human_clicks_by_link
from rewards.models import Milestone, RewardGrant, RewardTier
from rewards.pricing import occurrences_due
from rewards.selectors import program_price
from rewards.services import metric_value

# --- An ambassador's card: the dashboard, /api/v1/me and the ambassador's detail ---------------------


@dataclass(frozen=True)
class ProgramRef:
    slug: str
    name: str


@dataclass(frozen=True)
class AmbassadorStats:
    clicks: int  # human visits through any of their links; bots are never counted
    signups: int  # every signup credited to them, held for review or rejected included
    qualified: int
    conversions: int  # approved purchases of qualified signups


@dataclass(frozen=True)
class RewardLine:
    tier: str
    occurrence: int
    status: str
    voucher_code: str | None  # a revoked voucher is no longer shown


@dataclass(frozen=True)
class Progress:
    """The individual reward nearest to being unlocked; counts are ints, amounts "12.50" strings."""

    tier: str
    metric: str
    current: int | str
    target: int | str
    remaining: int | str


@dataclass(frozen=True)
class ChannelLine:
    channel: str  # "main" for the ambassador's own code
    code: str
    clicks: int


@dataclass(frozen=True)
class AmbassadorCard:
    email: str
    code: str
    display_name: str
    link_path: str
    program: ProgramRef
    stats: AmbassadorStats
    rewards: tuple[RewardLine, ...]
    progress: Progress | None
    channels: tuple[ChannelLine, ...]  # most clicked first


def my_programs(user: Any) -> list[AmbassadorCard]:
    """The signed-in person's ambassadorships, one card each: 7 queries, however many programs."""
    return ambassador_cards(list(ambassadorships_of(user)))


def ambassador_card(ambassador: Ambassador) -> AmbassadorCard:
    """One ambassador's card (6 queries), the ambassador read with its program and counters."""
    return ambassador_cards([ambassador])[0]


def ambassador_cards(ambassadors: Sequence[Ambassador]) -> list[AmbassadorCard]:
    """Cards of ambassadors read with their program and counters (`ambassadorships_of` and
    `ambassador_for_code` read them so): 6 queries, whatever their number."""
    if not ambassadors:
        return []
    ids = [a.pk for a in ambassadors]
    channels = _channels_by_ambassador(ambassadors)
    signups = {
        row["ambassador_id"]: row
        for row in Signup.objects.filter(ambassador_id__in=ids)
        .values("ambassador_id")
        .annotate(total=Count("id"), qualified=Count("id", filter=Q(status=Signup.Status.QUALIFIED)))
    }
    conversions = dict(
        Conversion.objects.filter(
            signup__ambassador_id__in=ids, signup__status=Signup.Status.QUALIFIED, status=Conversion.Status.APPROVED
        )
        .values("signup__ambassador_id")
        .annotate(n=Count("id"))
        .values_list("signup__ambassador_id", "n")
    )
    rewards: dict[int, list[RewardLine]] = defaultdict(list)
    for grant in (
        RewardGrant.objects.filter(ambassador_id__in=ids)
        .select_related("tier")
        .order_by("ambassador_id", "tier_id", "occurrence")
    ):
        assert grant.ambassador_id is not None  # filtered on it: welcome grants of referees are not here
        rewards[grant.ambassador_id].append(
            RewardLine(
                tier=grant.tier.name,
                occurrence=grant.occurrence,
                status=grant.status,
                voucher_code=None if grant.status == RewardGrant.Status.REVOKED else grant.voucher_code,
            )
        )
    tiers: dict[int, list[RewardTier]] = defaultdict(list)
    for tier in RewardTier.objects.filter(
        program_id__in={a.program_id for a in ambassadors}, kind=RewardTier.Kind.INDIVIDUAL, is_active=True
    ).order_by("program_id", "threshold", "id"):
        tiers[tier.program_id].append(tier)

    cards = []
    for a in ambassadors:
        counted = signups.get(a.pk, {"total": 0, "qualified": 0})
        lines = channels.get(a.pk, [])
        cards.append(
            AmbassadorCard(
                email=a.email,
                code=a.code,
                display_name=a.display_name,
                link_path=f"/r/{a.code}",
                program=ProgramRef(slug=a.program.slug, name=a.program.name),
                stats=AmbassadorStats(
                    clicks=sum(line.clicks for line in lines),
                    signups=counted["total"],
                    qualified=counted["qualified"],
                    conversions=conversions.get(a.pk, 0),
                ),
                rewards=tuple(rewards.get(a.pk, ())),
                progress=_progress(_counters_of(a), tiers.get(a.program_id, [])),
                channels=tuple(lines),
            )
        )
    return cards


def _channels_by_ambassador(ambassadors: Sequence[Ambassador]) -> dict[int, list[ChannelLine]]:
    """Human clicks per link of each ambassador, most clicked first: 2 queries (human_clicks_by_link)."""
    code_of = {a.pk: a.code for a in ambassadors}
    lines: dict[int, list[ChannelLine]] = defaultdict(list)
    for row in sorted(human_clicks_by_link(ambassadors), key=lambda r: (r.ambassador_id, -r.clicks, r.code or "")):
        lines[row.ambassador_id].append(
            ChannelLine(channel=row.channel or "main", code=row.code or code_of[row.ambassador_id], clicks=row.clicks)
        )
    return lines


def _counters_of(ambassador: Ambassador) -> AmbassadorCounters | None:
    try:
        return ambassador.counters
    except ObjectDoesNotExist:
        return None


def _progress(counters: AmbassadorCounters | None, tiers: list[RewardTier]) -> Progress | None:
    """The individual tier with the least left to reach: a reached tier that does not repeat is done."""
    if counters is None:
        return None
    best: tuple[Decimal, Progress] | None = None
    for tier in tiers:
        if tier.threshold is None:
            continue
        value = metric_value(counters, tier.metric)
        due = occurrences_due(value, tier.threshold, tier.repeat_every)
        if due >= 1 and not tier.repeat_every:
            continue  # reached, and it does not repeat
        target = tier.threshold + (tier.repeat_every or 0) * due
        remaining = target - value
        if best is None or remaining < best[0]:
            best = (
                remaining,
                Progress(
                    tier=tier.name,
                    metric=tier.metric,
                    current=_number(value),
                    target=_number(target),
                    remaining=_number(remaining),
                ),
            )
    return best[1] if best is not None else None


def _number(value: Decimal) -> int | str:
    return int(value) if value == value.to_integral_value() else f"{value:.2f}"


# --- A program's overview: the staff console ---------------------------------------------------------


@dataclass(frozen=True)
class PriceView:
    currency: str
    base_price: str | None
    current_price: str | None
    floor_price: str | None
    subscribers: int
    step: int | None
    next_drop_at: int | None
    milestones_reached: int


@dataclass(frozen=True)
class MilestoneLine:
    occurrence: int
    count_at: int
    price_after: str | None
    reached_at: datetime


@dataclass(frozen=True)
class ProgramOverview:
    slug: str
    name: str
    status: str
    price: PriceView
    signups: int  # every subscriber, held for review and rejected included
    qualified: int  # those the collective ladder counts
    milestones: tuple[MilestoneLine, ...]  # in the order they were reached


def program_overview(program: Program) -> ProgramOverview:
    """Price, counters and milestones of a program: 5 queries, however many milestones."""
    counters = ProgramCounters.objects.filter(program=program).first()
    milestones = Milestone.objects.filter(program=program).order_by("reached_at", "occurrence")
    return ProgramOverview(
        slug=program.slug,
        name=program.name,
        status=program.status,
        price=PriceView(**program_price(program)),
        signups=counters.signups if counters else 0,
        qualified=counters.qualified if counters else 0,
        milestones=tuple(
            MilestoneLine(
                occurrence=m.occurrence,
                count_at=m.count_at,
                price_after=None if m.price_after is None else f"{m.price_after:.2f}",
                reached_at=m.reached_at,
            )
            for m in milestones
        ),
    )


# --- Why a signup is credited to whom: the audit console ---------------------------------------------


@dataclass(frozen=True)
class AmbassadorRef:
    code: str
    display_name: str


@dataclass(frozen=True)
class ClickRef:
    id: str
    created_at: datetime
    channel: str  # "main" for the ambassador's own code
    referer_host: str
    user_agent_family: str
    is_bot: bool


@dataclass(frozen=True)
class AuditLine:
    created_at: datetime
    action: str
    actor_type: str
    actor_label: str
    reason: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True)
class AttributionExplanation:
    signup_id: int
    email: str
    created_at: datetime
    status: str
    reason: str  # why it is held or rejected, "" when it counts
    reason_detail: str
    method: str  # code, cookie, api, manual or none
    ambassador: AmbassadorRef | None
    click: ClickRef | None  # the visit that credited it, when a click did
    events: tuple[AuditLine, ...]  # every decision about it, oldest first


def attribution_explain(signup: Signup) -> AttributionExplanation:
    """How a signup came to be credited as it is, and every audited decision since: 2 queries."""
    signup = Signup.objects.select_related("ambassador", "click__link").get(pk=signup.pk)
    events = AuditEvent.objects.filter(object_type="signup", object_id=str(signup.pk)).order_by("created_at", "id")
    click = signup.click
    return AttributionExplanation(
        signup_id=signup.pk,
        email=signup.email,
        created_at=signup.created_at,
        status=signup.status,
        reason=signup.reason,
        reason_detail=signup.reason_detail,
        method=signup.method,
        ambassador=AmbassadorRef(code=signup.ambassador.code, display_name=signup.ambassador.display_name)
        if signup.ambassador is not None
        else None,
        click=ClickRef(
            id=str(click.id),
            created_at=click.created_at,
            channel=click.link.channel if click.link is not None else "main",
            referer_host=click.referer_host,
            user_agent_family=click.user_agent_family,
            is_bot=click.is_bot,
        )
        if click is not None
        else None,
        events=tuple(
            AuditLine(
                created_at=e.created_at,
                action=e.action,
                actor_type=e.actor_type,
                actor_label=e.actor_label,
                reason=e.reason,
                before=e.before,
                after=e.after,
            )
            for e in events
        ),
    )
