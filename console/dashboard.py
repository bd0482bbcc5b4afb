"""Read model of an ambassador's /dashboard/: one section per program they take part in, as frozen dataclasses.

Its query count does not grow with the number of links, referrals or rewards (a test pins it); each
program adds the fixed cost of its price ladder (console.selectors.program_overview).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Q, Window
from django.db.models.functions import RowNumber

from ambassadors.models import Ambassador, Program
from ambassadors.selectors import ambassadorships_of, programs_listed
from commerce.waitlist import WaitlistLine, waitlist_positions_of_ambassadors
from console.contests import ContestStanding, contests_shown
from console.selectors import ProgramOverview, Progress, _counters_of, _progress, program_overview
from core import clock
from referrals.models import Conversion, ReferralLink, Signup
from referrals.selectors import human_clicks_by_link
from rewards.models import RewardGrant, RewardTier

# The most recent referrals a section lists; the total is shown beside them.
REFERRALS_SHOWN = 50
# A voucher not used yet: the only kind whose expiry date the dashboard shows.
UNUSED = (RewardGrant.Status.UNLOCKED, RewardGrant.Status.ISSUED)


@dataclass(frozen=True)
class LinkLine:
    channel: str  # "" for the main link /r/<code>
    code: str
    clicks: int  # human visits; bots are never counted
    signups: int  # credited through a visit of this link; a typed code counts under the main link
    qualified: int
    conversions: int  # approved purchases of qualified signups

    @property
    def path(self) -> str:
        return f"/r/{self.code}"


@dataclass(frozen=True)
class NextReward:
    tier: str
    reward_type: str
    reward_value: Decimal | None
    reward_text: str
    progress: Progress
    reward_currency: str = ""  # cash tiers: the amount's currency

    @property
    def percent(self) -> int:
        current, target = Decimal(str(self.progress.current)), Decimal(str(self.progress.target))
        return max(0, min(100, int(current * 100 / target))) if target else 0

    @property
    def bar_step(self) -> int:
        return self.percent // 5 * 5  # the stylesheet has widths in steps of 5% (no inline style under the CSP)


@dataclass(frozen=True)
class GrantLine:
    tier: str
    occurrence: int
    status: str
    voucher_code: str | None  # a revoked voucher is no longer shown
    created_at: datetime
    # Until when an unused voucher can be redeemed (None: never expires, or already redeemed or revoked), and
    # whether that moment has passed, by the clock when the page is read (RewardGrant.is_expired_at).
    expires_at: datetime | None = None
    expired: bool = False
    # A cash reward: its amount and currency (no voucher code: it is paid to the bank account by a payout run).
    cash_amount: Decimal | None = None
    cash_currency: str = ""


@dataclass(frozen=True)
class ReferralLine:
    masked_email: str
    created_at: datetime
    status: str
    reason: str  # why it does not count (Signup.Reason), "" when it counts


@dataclass(frozen=True)
class SectionContest:
    """A contest of the program as its ambassador sees it: the standing, and their own place in it."""

    standing: ContestStanding
    my_rank: int | None  # None: not among the lines shown (no score yet, or below them)


@dataclass(frozen=True)
class ProgramSection:
    slug: str
    name: str
    currency: str
    share_message: str  # the program's own words for the share buttons; "" for the default
    code: str
    display_name: str
    link_path: str
    links: tuple[LinkLine, ...]  # the main link first, then channels by name
    next_reward: NextReward | None
    rewards: tuple[GrantLine, ...]
    referrals: tuple[ReferralLine, ...]  # the most recent first, at most REFERRALS_SHOWN
    referrals_total: int
    ladder: ProgramOverview
    contests: tuple[SectionContest, ...]  # running ones first, then those just ended with their winners
    # The ambassador's own place in the program's waitlist (None: no waitlist, or not in line), and how many
    # places each friend who counts moves them up.
    waitlist: WaitlistLine | None = None
    waitlist_places: int = 0
    # The program pays cash rewards (an active individual cash tier): the ambassador is asked for bank details.
    pays_cash: bool = False

    @property
    def rewards_include_cash(self) -> bool:
        """A cash reward among the rows: their second column names a payment as well as voucher codes."""
        return any(grant.cash_amount is not None for grant in self.rewards)

    @property
    def subscribers_to_next_drop(self) -> int | None:
        """How many more subscribers the price waits for to drop again; None at the floor or without a ladder."""
        price = self.ladder.price
        return None if price.next_drop_at is None else max(0, price.next_drop_at - price.subscribers)

    @property
    def ladder_percent(self) -> int:
        price = self.ladder.price
        remaining = self.subscribers_to_next_drop
        if remaining is None or not price.step:
            return 0
        return max(0, min(100, round(100 * (price.step - remaining) / price.step)))

    @property
    def ladder_bar_step(self) -> int:
        return self.ladder_percent // 5 * 5


@dataclass(frozen=True)
class ProgramChoice:
    slug: str
    name: str


def mask_email(email: str) -> str:
    """`ana@example.org` -> `a•••@example.org`: enough for the ambassador to recognise a friend, not to
    harvest their address."""
    local, at, domain = email.partition("@")
    if not at:
        return "•••"
    return f"{local[:1]}•••@{domain}"


def dashboard_sections(user: Any) -> list[ProgramSection]:
    """The signed-in person's sections: 11 queries, plus program_overview's 5 for each program and 1 for each
    contest shown (console.contests); and when a program runs a waitlist, 1 for the person's subscriptions
    and a place in line for each (commerce.waitlist.waitlist_positions_of_ambassadors)."""
    # 1, with each program's waitlist settings (a left join: no query more without a waitlist)
    ambassadors = list(ambassadorships_of(user).select_related("program__waitlist").order_by("program__name", "pk"))
    if not ambassadors:
        return []
    ids = [a.pk for a in ambassadors]
    links = _links_by_ambassador(ambassadors)  # 2-6
    rewards: dict[int, list[GrantLine]] = defaultdict(list)
    now = clock.now()
    for grant in (  # 7
        RewardGrant.objects.filter(ambassador_id__in=ids)
        .select_related("tier")
        .order_by("ambassador_id", "-created_at", "-id")
    ):
        assert grant.ambassador_id is not None
        cash = grant.tier.reward_type == RewardTier.RewardType.CASH
        rewards[grant.ambassador_id].append(
            GrantLine(
                tier=grant.tier.name,
                occurrence=grant.occurrence,
                status=grant.status,
                voucher_code=None if cash or grant.status == RewardGrant.Status.REVOKED else grant.voucher_code,
                created_at=grant.created_at,
                expires_at=grant.expires_at if grant.status in UNUSED and not cash else None,
                expired=not cash and grant.is_expired_at(now),
                cash_amount=grant.tier.reward_value if cash else None,
                cash_currency=grant.tier.reward_currency if cash else "",
            )
        )
    tiers: dict[int, list[RewardTier]] = defaultdict(list)
    for tier in RewardTier.objects.filter(  # 8
        program_id__in={a.program_id for a in ambassadors}, kind=RewardTier.Kind.INDIVIDUAL, is_active=True
    ).order_by("program_id", "threshold", "id"):
        tiers[tier.program_id].append(tier)
    referrals: dict[int, list[ReferralLine]] = defaultdict(list)
    for signup in (  # 9: the most recent of each ambassador, numbered per ambassador by the database
        Signup.objects.filter(ambassador_id__in=ids)
        .annotate(
            rank=Window(
                RowNumber(), partition_by=[F("ambassador_id")], order_by=[F("created_at").desc(), F("id").desc()]
            )
        )
        .filter(rank__lte=REFERRALS_SHOWN)
        .order_by("ambassador_id", "rank")
        .only("ambassador_id", "email", "created_at", "status", "reason")
    ):
        assert signup.ambassador_id is not None
        referrals[signup.ambassador_id].append(
            ReferralLine(
                masked_email=mask_email(signup.email),
                created_at=signup.created_at,
                status=signup.status,
                reason="" if signup.status == Signup.Status.QUALIFIED else signup.reason,
            )
        )
    totals = dict(  # 10
        Signup.objects.filter(ambassador_id__in=ids)
        .values("ambassador_id")
        .annotate(n=Count("id"))
        .values_list("ambassador_id", "n")
    )
    contests = contests_shown({a.program_id for a in ambassadors})  # 11, and 1 per contest
    places_in_line = waitlist_positions_of_ambassadors(ambassadors)
    return [
        ProgramSection(
            slug=a.program.slug,
            name=a.program.name,
            currency=a.program.currency,
            share_message=a.program.share_message,
            code=a.code,
            display_name=a.display_name,
            link_path=f"/r/{a.code}",
            links=tuple(links.get(a.pk, ())),
            next_reward=_next_reward(a, tiers.get(a.program_id, [])),
            rewards=tuple(rewards.get(a.pk, ())),
            referrals=tuple(referrals.get(a.pk, ())),
            referrals_total=totals.get(a.pk, 0),
            ladder=program_overview(a.program),
            contests=tuple(
                SectionContest(standing=standing, my_rank=standing.rank_of(a.pk))
                for standing in contests.get(a.program_id, ())
            ),
            waitlist=places_in_line[a.pk][0] if a.pk in places_in_line else None,
            waitlist_places=places_in_line[a.pk][1] if a.pk in places_in_line else 0,
            pays_cash=any(tier.reward_type == RewardTier.RewardType.CASH for tier in tiers.get(a.program_id, ())),
        )
        for a in ambassadors
    ]


def _links_by_ambassador(ambassadors: list[Ambassador]) -> dict[int, list[LinkLine]]:
    """Each ambassador's main link and channel links with their counts: 5 queries, 4 of them grouped (the
    clicks: 2, human_clicks_by_link).

    A signup carries the link of the click that credited it (none: the main link), copied when recorded.
    """
    ids = [a.pk for a in ambassadors]
    channel_links = list(ReferralLink.objects.filter(ambassador_id__in=ids).order_by("channel"))
    clicks = {(r.ambassador_id, r.link_id): r.clicks for r in human_clicks_by_link(ambassadors)}
    signups = {
        (r["ambassador_id"], r["link_id"]): r
        for r in Signup.objects.filter(ambassador_id__in=ids)
        .values("ambassador_id", "link_id")
        .annotate(total=Count("id"), qualified=Count("id", filter=Q(status=Signup.Status.QUALIFIED)))
        .order_by()
    }
    conversions = {
        (r["signup__ambassador_id"], r["signup__link_id"]): r["n"]
        for r in Conversion.objects.filter(
            signup__ambassador_id__in=ids,
            signup__status=Signup.Status.QUALIFIED,
            status=Conversion.Status.APPROVED,
        )
        .values("signup__ambassador_id", "signup__link_id")
        .annotate(n=Count("id"))
        .order_by()
    }

    def line(ambassador_id: int, link_id: int | None, channel: str, code: str) -> LinkLine:
        counted = signups.get((ambassador_id, link_id), {"total": 0, "qualified": 0})
        return LinkLine(
            channel=channel,
            code=code,
            clicks=clicks.get((ambassador_id, link_id), 0),
            signups=counted["total"],
            qualified=counted["qualified"],
            conversions=conversions.get((ambassador_id, link_id), 0),
        )

    lines: dict[int, list[LinkLine]] = {a.pk: [line(a.pk, None, "", a.code)] for a in ambassadors}
    for link in channel_links:
        lines[link.ambassador_id].append(line(link.ambassador_id, link.pk, link.channel, link.code))
    return lines


def _next_reward(ambassador: Ambassador, tiers: list[RewardTier]) -> NextReward | None:
    """The individual tier with the least left to reach, by console.selectors' rule, with what it gives."""
    counters = _counters_of(ambassador)
    best: tuple[Decimal, RewardTier, Progress] | None = None
    for tier in tiers:
        progress = _progress(counters, [tier])
        if progress is None:
            continue
        remaining = Decimal(str(progress.remaining))
        if best is None or remaining < best[0]:
            best = (remaining, tier, progress)
    if best is None:
        return None
    _, tier, progress = best
    return NextReward(
        tier=tier.name,
        reward_type=tier.reward_type,
        reward_value=tier.reward_value,
        reward_text=tier.reward_text,
        progress=progress,
        reward_currency=tier.reward_currency,
    )


def programs_to_join(user: Any) -> list[ProgramChoice]:
    """Open programs the person is not an ambassador of yet: the dashboard's empty state offers them."""
    mine = ambassadorships_of(user).values("program_id")
    return [
        ProgramChoice(slug=p.slug, name=p.name)
        for p in programs_listed().filter(status=Program.Status.OPEN).exclude(pk__in=mine)
    ]
