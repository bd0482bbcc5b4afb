"""Read model of contests for the screens: a contest's standing (the live ranking while it runs, the
recorded winners once frozen) and the time left, as frozen dataclasses. The program page, the dashboard
and the standing API all read it; `templates/components/contest.html` renders one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.translation import gettext

from ambassadors.models import Program
from core import clock
from rewards.models import Contest
from rewards.services import contest_ranking

# How long the winners of a contest stay on the program page and the dashboard after it ends.
WINNERS_SHOWN_FOR = timedelta(days=7)


@dataclass(frozen=True)
class StandingLine:
    rank: int
    display_name: str  # the ambassador's chosen name, or "Anonymous ambassador" in the active language
    anonymous: bool
    score: int
    is_winner: bool  # within the contest's number of winners (recorded ones once frozen)


@dataclass(frozen=True)
class ContestStanding:
    id: int
    name: str
    prize_text: str
    metric: str  # qualified_signups or approved_conversions
    status: str  # scheduled, running or ended
    starts_at: datetime
    ends_at: datetime
    as_of: datetime  # the moment the standing was read: the time left is counted from it
    winners_count: int
    frozen: bool  # the ranking is final: `lines` are the recorded winners
    lines: tuple[StandingLine, ...]
    # Whose each line is, in the order of `lines`: lets the dashboard find its ambassador's own place. Kept
    # out of StandingLine, which the public standing API serializes whole: ids are never shown to others.
    ambassador_ids: tuple[int, ...] = ()

    def rank_of(self, ambassador_id: int) -> int | None:
        """The ambassador's rank among `lines`, None when they are not among them."""
        for line, owner in zip(self.lines, self.ambassador_ids, strict=True):
            if owner == ambassador_id:
                return line.rank
        return None

    @property
    def time_left(self) -> timedelta:
        return max(self.ends_at - self.as_of, timedelta(0))

    @property
    def seconds_left(self) -> int:
        return int(self.time_left.total_seconds())


def contest_standing(contest: Contest, *, limit: int = 10) -> ContestStanding:
    """One contest's standing: 1 query, however many ambassadors and events.

    While it runs, the best `limit` by the contest's ranking (rewards.services.contest_ranking: real, active
    ambassadors, only what happened inside the period, ties to who got there first); once frozen, the
    winners recorded by the freeze, which nothing changes afterwards.
    """
    now = clock.now()
    if contest.frozen_at is not None:
        winners = list(contest.winners.select_related("ambassador").order_by("rank")[:limit])
        lines = tuple(_line(w.rank, w.ambassador.display_name, w.score, True) for w in winners)
        owners = tuple(w.ambassador_id for w in winners)
    else:
        ranking = contest_ranking(contest, limit=limit)
        lines = tuple(_line(r.rank, r.display_name, r.score, r.rank <= contest.winners_count) for r in ranking)
        owners = tuple(r.ambassador_id for r in ranking)
    return ContestStanding(
        id=contest.pk,
        name=contest.name,
        prize_text=contest.prize_text,
        metric=contest.metric,
        status=contest.status_at(now),
        starts_at=contest.starts_at,
        ends_at=contest.ends_at,
        as_of=now,
        winners_count=contest.winners_count,
        frozen=contest.frozen_at is not None,
        lines=lines,
        ambassador_ids=owners,
    )


def program_contests(program: Program, *, limit: int = 10) -> list[ContestStanding]:
    """The contests a program's page and its ambassadors' dashboard show: those running now, then those
    ended in the last WINNERS_SHOWN_FOR with their winners. 1 query, plus 1 per contest shown."""
    return contests_shown([program.pk], limit=limit).get(program.pk, [])


def contests_shown(program_ids: Iterable[int], *, limit: int = 10) -> dict[int, list[ContestStanding]]:
    """program_contests for several programs at once (the dashboard's): 1 query, plus 1 per contest shown."""
    now = clock.now()
    contests = Contest.objects.filter(
        program_id__in=list(program_ids), starts_at__lte=now, ends_at__gt=now - WINNERS_SHOWN_FOR
    )
    # Running first (those ending soonest on top), then the ended ones, most recent first.
    ordered = sorted(contests, key=lambda c: (c.ends_at <= now, c.ends_at if c.ends_at > now else now - c.ends_at))
    shown: dict[int, list[ContestStanding]] = defaultdict(list)
    for contest in ordered:
        shown[contest.program_id].append(contest_standing(contest, limit=limit))
    return dict(shown)


def _line(rank: int, name: str, score: int, is_winner: bool) -> StandingLine:
    return StandingLine(
        rank=rank,
        display_name=name or gettext("Anonymous ambassador"),
        anonymous=not name,
        score=score,
        is_winner=is_winner,
    )
