"""Reads of the tracking core shared by the pages, the API and the admin."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

from django.db.models import Count, Q, QuerySet, Sum

from ambassadors.models import Ambassador, Program
from ambassadors.normalise import code_key, is_well_formed_code
from config import db
from referrals.models import Click, Conversion, DailyClicks, ReferralLink, RollupDay, Signup


class ReferralTarget(NamedTuple):
    """Where a live `/r/<code>` leads: what the redirect needs, read in one statement."""

    ambassador_id: int
    program_id: int
    link_id: int | None  # the channel link, when the code is one
    code: str  # the ambassador's own code, passed on as `ref`
    program_slug: str
    destination_url: str
    allowed_redirect_hosts: tuple[str, ...]
    first_click: bool
    attribution_window_days: int
    attribution_cookie: bool  # False: a cookieless program, the redirect sets no cookie


# A code is an ambassador's own or one of their channel links (codes are unique across both tables).
# Paused and closed programs and inactive ambassadors lead nowhere. LIMIT 1 stops at the first branch
# that finds the code, so the common case, an ambassador's own code, costs one index probe.
LINK_RESOLVE_SQL = (
    "SELECT a.id AS ambassador_id, a.program_id, NULL AS link_id, a.code, p.slug, p.destination_url, "
    "p.allowed_redirect_hosts, p.attribution_model, p.attribution_window_days, p.attribution_cookie "
    "FROM ambassadors_ambassador a JOIN ambassadors_program p ON p.id = a.program_id "
    "WHERE a.code_key = %s AND a.is_active AND p.status = %s "
    "UNION ALL "
    "SELECT a.id, a.program_id, l.id, a.code, p.slug, p.destination_url, p.allowed_redirect_hosts, "
    "p.attribution_model, p.attribution_window_days, p.attribution_cookie "
    "FROM referrals_referrallink l JOIN ambassadors_ambassador a ON a.id = l.ambassador_id "
    "JOIN ambassadors_program p ON p.id = a.program_id "
    "WHERE l.code_key = %s AND a.is_active AND p.status = %s "
    "LIMIT 1"
)


def link_resolve_params(raw_code: str) -> tuple[str, ...] | None:
    """The parameters of LINK_RESOLVE_SQL for /r/<raw_code>, or None when the code cannot exist."""
    if not is_well_formed_code(raw_code) or len(raw_code) > 64:
        return None
    key, status = code_key(raw_code), Program.Status.OPEN.value
    return key, status, key, status


def referral_target(row: tuple[Any, ...]) -> ReferralTarget:
    """A row of LINK_RESOLVE_SQL as a ReferralTarget."""
    ambassador_id, program_id, link_id, code, slug, destination, hosts, model, window_days, cookie = row[:10]
    if isinstance(hosts, str):  # JSON comes back as text, as Django's JSONField reads it
        hosts = json.loads(hosts)
    return ReferralTarget(
        ambassador_id=ambassador_id,
        program_id=program_id,
        link_id=link_id,
        code=code,
        program_slug=slug,
        destination_url=destination,
        allowed_redirect_hosts=tuple(h for h in hosts or () if isinstance(h, str)),
        first_click=model == Program.AttributionModel.FIRST_CLICK,
        attribution_window_days=window_days,
        attribution_cookie=bool(cookie),  # SQLite answers 0 or 1
    )


def link_resolve(raw_code: str) -> ReferralTarget | None:
    """Where /r/<code> leads, or None when the link leads nowhere (unknown, paused, closed, inactive).

    The redirect itself resolves and records in one statement: see `click_record`.
    """
    params = link_resolve_params(raw_code)
    row = db.fetch_one(LINK_RESOLVE_SQL, params) if params else None
    return referral_target(row) if row else None


def ambassador_for_code(program: Program, raw_code: str, *, include_links: bool = False) -> Ambassador | None:
    """The ambassador a code names in this program, or None: the one place a code is resolved (but for the
    redirect's own statement, LINK_RESOLVE_SQL). Look-alikes fold; `include_links` also accepts the code
    of one of their channel links, as a referee typing it would. Active or not: callers decide."""
    if not is_well_formed_code(raw_code) or len(raw_code.strip()) > 64:
        return None
    key = code_key(raw_code)
    ambassador = Ambassador.objects.select_related("program", "counters").filter(program=program, code_key=key).first()
    if ambassador is None and include_links:
        link = (
            ReferralLink.objects.select_related("ambassador__program", "ambassador__counters")
            .filter(code_key=key, ambassador__program=program)
            .first()
        )
        ambassador = link.ambassador if link is not None else None
    return ambassador


def signups_for_program(program: Program) -> QuerySet[Signup]:
    return Signup.objects.filter(program=program).select_related("ambassador", "click")


def conversion_for(program: Program, external_id: str) -> Conversion | None:
    return Conversion.objects.filter(program=program, external_id=external_id).select_related("signup").first()


class LinkClicks(NamedTuple):
    ambassador_id: int
    link_id: int | None  # None: the main link, /r/<ambassador code>
    channel: str | None
    code: str | None  # the link's code; None for the main link
    clicks: int


def rolled_up_click_days(program_ids: Iterable[int]) -> dict[int, list[tuple[date, date]]]:
    """The days whose clicks are rolled up (referrals.services.rollups), per program, as ranges of consecutive
    days [first, last]: 1 query. Usually one range per program, from its first day to yesterday."""
    ranges: dict[int, list[tuple[date, date]]] = defaultdict(list)
    rows = (
        RollupDay.objects.filter(program_id__in=list(program_ids), clicks_sealed=True)
        .order_by("program_id", "day")
        .values_list("program_id", "day")
    )
    for program_id, day in rows:
        spans = ranges[program_id]
        if spans and spans[-1][1] + timedelta(days=1) == day:
            spans[-1] = (spans[-1][0], day)
        else:
            spans.append((day, day))
    return dict(ranges)


def human_clicks_by_link(ambassadors: Sequence[Ambassador]) -> list[LinkClicks]:
    """Human clicks (bots and flood left out) of each ambassador per link, all time: 2 queries. The days rolled
    up are counted from their daily roll-ups (which the click retention leaves when it deletes old clicks),
    the others (today, mostly) from the click rows: a count costs the same after a year as after a day."""
    ids = [a.pk for a in ambassadors]
    rolled = rolled_up_click_days({a.program_id for a in ambassadors})
    # No day before year 1: the roll-ups are still asked (the query count stays the same) and give nothing.
    rolled_days, raw_days = Q(day__lt=date(1, 1, 1)), Q(pk__in=[])
    for program_id in {a.program_id for a in ambassadors}:
        # The click rows outside the rolled-up ranges, as ranges of time (today's, mostly): what an index on
        # (program, created_at) finds without reading the ambassador's older clicks.
        outside, since = Q(), None
        for first, last in rolled.get(program_id, []):
            rolled_days |= Q(program_id=program_id, day__gte=first, day__lte=last)
            start = datetime.combine(first, time.min, tzinfo=UTC)
            outside = (outside | Q(created_at__gte=since, created_at__lt=start)) if since else Q(created_at__lt=start)
            since = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
        raw_days |= Q(program_id=program_id) & ((outside | Q(created_at__gte=since)) if since else Q())
    columns = ("ambassador_id", "link_id", "link__channel", "link__code")
    rolled = (
        DailyClicks.objects.filter(rolled_days, ambassador_id__in=ids)
        .values(*columns)
        .annotate(n=Sum("human"))
        .order_by()
        .values_list(*columns, "n")
    )
    raw = (
        Click.objects.filter(raw_days, ambassador_id__in=ids, is_bot=False, flood=False)
        .values(*columns)
        .annotate(n=Count("id"))
        .order_by()
        .values_list(*columns, "n")
    )
    counts: dict[tuple[int, int | None, str | None, str | None], int] = defaultdict(int)
    for ambassador_id, link_id, channel, code, n in rolled.union(raw, all=True):
        counts[(ambassador_id, link_id, channel, code)] += int(n or 0)
    return [LinkClicks(*key, clicks=n) for key, n in counts.items() if n]
