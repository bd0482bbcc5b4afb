"""Daily roll-ups of clicks and signups for the staff analytics (see RollupDay in referrals/models.py).

A day is rolled up only once it is over (UTC), per program: its clicks per link and ambassador, and its
signups per ambassador (null for walk-ins). Exactness does not rest on the roll-up being fresh:
- readers take a sealed day from the roll-up and every other day from the source rows;
- a change to a signup (review, reassignment, status change) reopens that day's signups in its own
  transaction (`signups_reopen`), so the day is read from the source rows until rolled up again;
- rolling a day up locks its RollupDay row, created and committed beforehand, before it reads anything:
  a change committing meanwhile either is seen by the roll-up's read, or reopens the day after it.
Clicks of a past day never change (they are recorded at the time they happen), so a day's click roll-up
stays sealed, and the retention (`clicks_purge`) may then delete the click rows themselves.

Above the days, ISO weeks (Monday to Sunday, UTC): once a week's seven days are sealed, `rollup_week`
sums their daily rows per ambassador into WeeklyClicks and WeeklySignups, so that a 90-day period reads ~13
rows per ambassador instead of ~90. The same rules hold one level up:
- a week is sealed (per part, clicks or signups) only when its seven days are, and readers take a sealed
  week whole only when the period holds all of it;
- reopening a day's signups reopens its week's signups in the same transaction (`signups_reopen`), and any
  roll-up of a day (a repair by `rollup_verify` too) reopens the part of its week it rolled up;
- rolling a week up locks its RollupWeek row, created and committed beforehand, before it reads the days:
  a reopening committing meanwhile waits for it and reopens the week after it, or is seen by its read (the
  day is no longer sealed: the week is not sealed either).

The periodic task (`referrals.rollup_analytics`, beat) and `manage.py rollup_analytics` roll up every due
day, then every due week; a reopened day (and its week) is rolled up again by the task enqueued after its
change's commit, or by the next periodic run if that message was lost. `rollup_verify` recounts sealed
days from the source rows and sealed weeks from their days, and repairs any difference (there should be
none).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, Min, Q, Sum

from ambassadors.models import Program
from core import clock
from referrals.models import (
    Click,
    DailyClicks,
    DailySignups,
    RollupDay,
    RollupWeek,
    Signup,
    WeeklyClicks,
    WeeklySignups,
)

# A day is rolled up only once it has been over for this long: a click or a signup stamped just before
# midnight whose transaction commits just after it is in its day's rows by then.
GRACE = timedelta(minutes=10)


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[midnight UTC, next midnight) of a day."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def week_of(day: date) -> date:
    """The Monday of the ISO week holding `day`."""
    return day - timedelta(days=day.weekday())


def _week_reopen(program_id: int, day: date, *, clicks: bool = False, signups: bool = False) -> None:
    """Unseal the asked parts of the week holding `day` (an upsert: the row exists afterwards). Called with the
    day's row locked first: days before weeks, the order every roll-up takes its locks in."""
    fields = [name for name, asked in (("clicks_sealed", clicks), ("signups_sealed", signups)) if asked]
    RollupWeek.objects.bulk_create(
        [RollupWeek(program_id=program_id, week=week_of(day), clicks_sealed=False, signups_sealed=False)],
        update_conflicts=True,
        unique_fields=["program", "week"],
        update_fields=fields,
    )


def signups_reopen(*, program_id: int, created_at: datetime) -> None:
    """Inside the transaction changing a signup created at `created_at`: that day's signups, and its week's,
    are read from the source rows again, until the roll-up that follows this commit.

    Upserts, whatever the day's and the week's state: if a roll-up holds the day's (or the week's) row, this
    waits for it and reopens after it commits (the roll-up read the rows without this change); if a row does
    not exist yet, the insert makes a roll-up creating it wait for this commit, so its read sees the change.
    Today's day too: a change committing just after midnight must not be missed by the first roll-up of that
    day.
    """
    day = utc_day(created_at)
    RollupDay.objects.bulk_create(
        [RollupDay(program_id=program_id, day=day, signups_sealed=False)],
        update_conflicts=True,
        unique_fields=["program", "day"],
        update_fields=["signups_sealed"],
    )
    _week_reopen(program_id, day, signups=True)
    if day < utc_day(clock.now()):
        from referrals.tasks import rollup_analytics  # the task module imports the services

        transaction.on_commit(lambda: rollup_analytics.delay(program_id=program_id))


def _clicks_of_day(program_id: int, day: date) -> list[DailyClicks]:
    start, end = day_bounds(day)
    human = Q(is_bot=False, flood=False)
    rows = (
        Click.objects.filter(program_id=program_id, created_at__gte=start, created_at__lt=end)
        .values("ambassador_id", "link_id")
        .annotate(
            human=Count("id", filter=human),
            bots=Count("id", filter=Q(is_bot=True)),
            flood=Count("id", filter=Q(is_bot=False, flood=True)),
        )
        .order_by()
    )
    return [DailyClicks(program_id=program_id, day=day, **row) for row in rows]


def _signups_of_day(program_id: int, day: date) -> list[DailySignups]:
    start, end = day_bounds(day)
    rows = (
        Signup.objects.filter(program_id=program_id, created_at__gte=start, created_at__lt=end)
        .values("ambassador_id")
        .annotate(signups=Count("id"), qualified=Count("id", filter=Q(status=Signup.Status.QUALIFIED)))
        .order_by()
    )
    return [DailySignups(program_id=program_id, day=day, **row) for row in rows]


def rollup_day(*, program_id: int, day: date, now: datetime | None = None) -> bool:
    """Roll up what is not sealed of one past day of one program; True when something was rolled up.
    Safe to run twice and concurrently: the day's row lock serialises two runs, the second finds it sealed."""
    now = now or clock.now()
    if day_bounds(day)[1] + GRACE > now:
        raise ValueError(f"{day} is not over yet (or only just): only past days are rolled up")
    # Created (and committed) before the lock below, so that a change to the day's signups always finds the
    # row to reopen, whether it commits before or after this roll-up.
    RollupDay.objects.get_or_create(program_id=program_id, day=day)
    with transaction.atomic():
        marker = RollupDay.objects.select_for_update().get(program_id=program_id, day=day)
        if marker.clicks_sealed and marker.signups_sealed:
            return False
        # The week's parts summed from this day's rows are no longer true once they are rolled up again (a
        # repair): reopened in this transaction, summed again by the next week roll-up.
        _week_reopen(program_id, day, clicks=not marker.clicks_sealed, signups=not marker.signups_sealed)
        if not marker.clicks_sealed:
            clicks = _clicks_of_day(program_id, day)
            DailyClicks.objects.filter(program_id=program_id, day=day).delete()
            DailyClicks.objects.bulk_create(clicks, batch_size=2000)
            marker.clicks_sealed = True
            marker.human_clicks = sum(row.human for row in clicks)
        if not marker.signups_sealed:
            signups = _signups_of_day(program_id, day)
            DailySignups.objects.filter(program_id=program_id, day=day).delete()
            DailySignups.objects.bulk_create(signups, batch_size=2000)
            marker.signups_sealed = True
            _set_signup_totals(marker, signups)
        marker.rolled_up_at = now
        marker.save(update_fields=["clicks_sealed", "signups_sealed", "rolled_up_at", "human_clicks", *SIGNUP_TOTALS])
    return True


SIGNUP_TOTALS = ("signups", "qualified", "referred", "referred_qualified")


def _signup_totals(rows: Iterable[DailySignups]) -> tuple[int, int, int, int]:
    """A day's totals from its rows: signups, qualified, and those of them referred (with an ambassador)."""
    signups = qualified = referred = referred_qualified = 0
    for row in rows:
        signups += row.signups
        qualified += row.qualified
        if row.ambassador_id is not None:
            referred += row.signups
            referred_qualified += row.qualified
    return signups, qualified, referred, referred_qualified


def _set_signup_totals(marker: RollupDay, rows: Iterable[DailySignups]) -> None:
    for name, value in zip(SIGNUP_TOTALS, _signup_totals(rows), strict=True):
        setattr(marker, name, value)


# --- Weeks ---------------------------------------------------------------------------------------------


def _week_days(week: date) -> list[date]:
    return [week + timedelta(days=n) for n in range(7)]


def _clicks_of_week(program_id: int, week: date) -> list[WeeklyClicks]:
    rows = (
        DailyClicks.objects.filter(program_id=program_id, day__gte=week, day__lt=week + timedelta(days=7))
        .values("ambassador_id")
        .annotate(n=Sum("human"))
        .filter(n__gt=0)
        .order_by()
    )
    return [
        WeeklyClicks(program_id=program_id, week=week, ambassador_id=row["ambassador_id"], human=row["n"])
        for row in rows
    ]


def _signups_of_week(program_id: int, week: date) -> list[WeeklySignups]:
    rows = (
        DailySignups.objects.filter(
            program_id=program_id, day__gte=week, day__lt=week + timedelta(days=7), ambassador__isnull=False
        )
        .values("ambassador_id")
        .annotate(n=Sum("signups"), q=Sum("qualified"))
        .filter(n__gt=0)
        .order_by()
    )
    return [
        WeeklySignups(
            program_id=program_id, week=week, ambassador_id=row["ambassador_id"], signups=row["n"], qualified=row["q"]
        )
        for row in rows
    ]


def rollup_week(*, program_id: int, week: date, now: datetime | None = None) -> bool:
    """Sum the sealed days of one ISO week (`week`, its Monday) into the weekly roll-ups, for each part
    (clicks, signups) whose seven days are sealed and which is not sealed yet; True when something was
    summed. Safe to run twice and concurrently: the week's row lock serialises two runs."""
    if week.weekday() != 0:
        raise ValueError(f"{week} is not a Monday")
    now = now or clock.now()
    # Created (and committed) before the lock below, as rollup_day does for a day.
    RollupWeek.objects.get_or_create(program_id=program_id, week=week)
    with transaction.atomic():
        marker = RollupWeek.objects.select_for_update().get(program_id=program_id, week=week)
        if marker.clicks_sealed and marker.signups_sealed:
            return False
        # Read after the lock: a day reopened by a commit before it is seen here; one reopened after it
        # waits for this commit, then reopens the week too.
        days = list(RollupDay.objects.filter(program_id=program_id, day__in=_week_days(week)))
        clicks_ready = len(days) == 7 and all(d.clicks_sealed for d in days)
        signups_ready = len(days) == 7 and all(d.signups_sealed for d in days)
        done = False
        if clicks_ready and not marker.clicks_sealed:
            rows = _clicks_of_week(program_id, week)
            WeeklyClicks.objects.filter(program_id=program_id, week=week).delete()
            WeeklyClicks.objects.bulk_create(rows, batch_size=2000)
            marker.clicks_sealed = done = True
        if signups_ready and not marker.signups_sealed:
            signup_rows = _signups_of_week(program_id, week)
            WeeklySignups.objects.filter(program_id=program_id, week=week).delete()
            WeeklySignups.objects.bulk_create(signup_rows, batch_size=2000)
            marker.signups_sealed = done = True
        if done:
            marker.rolled_up_at = now
            marker.save(update_fields=["clicks_sealed", "signups_sealed", "rolled_up_at"])
    return done


def due_weeks(program: Program, *, now: datetime | None = None) -> list[date]:
    """The weeks of a program (their Mondays) that are over, start on or after its first day, and are not
    fully summed yet, oldest first. (The week its first day falls in, when that is not a Monday, is never
    summed: its days before the first are not rolled up; a period reads its days.)"""
    yesterday = utc_day((now or clock.now()) - GRACE) - timedelta(days=1)
    first = _first_day(program)
    monday = week_of(first) if first.weekday() == 0 else week_of(first) + timedelta(days=7)
    last = week_of(yesterday + timedelta(days=1)) - timedelta(days=7)  # the last week whose Sunday is over
    if monday > last:
        return []
    sealed = set(
        RollupWeek.objects.filter(
            program_id=program.pk, week__gte=monday, clicks_sealed=True, signups_sealed=True
        ).values_list("week", flat=True)
    )
    weeks = []
    while monday <= last:
        if monday not in sealed:
            weeks.append(monday)
        monday += timedelta(days=7)
    return weeks


def _first_day(program: Program) -> date:
    """The program's first day with anything to roll up (its creation, or an older imported row)."""
    firsts = [program.created_at]
    for model in (Click, Signup):
        first = model.objects.filter(program_id=program.pk).aggregate(first=Min("created_at"))["first"]
        if first is not None:
            firsts.append(first)
    return utc_day(min(firsts))


def due_days(program: Program, *, now: datetime | None = None) -> list[date]:
    """The past days of a program not fully rolled up yet, oldest first."""
    yesterday = utc_day((now or clock.now()) - GRACE) - timedelta(days=1)
    first = _first_day(program)
    if first > yesterday:
        return []
    sealed = set(
        RollupDay.objects.filter(
            program_id=program.pk, day__gte=first, clicks_sealed=True, signups_sealed=True
        ).values_list("day", flat=True)
    )
    return [d for d in (first + timedelta(days=n) for n in range((yesterday - first).days + 1)) if d not in sealed]


@dataclass
class RollupRun:
    programs: int = 0
    days: int = 0
    weeks: int = 0
    repaired: list[tuple[str, date]] = field(default_factory=list)


def rollup_due(
    *,
    programs: Iterable[Program] | None = None,
    now: datetime | None = None,
    on_day: Callable[[], bool] | None = None,
) -> RollupRun:
    """Roll up every due day of the programs (all by default), one transaction per day, then sum every due
    week, one transaction per week. `on_day` is called after each day and may return False to stop there
    (an interrupted command): a later run goes on."""
    now = now or clock.now()
    run = RollupRun()
    for program in Program.objects.all() if programs is None else programs:
        run.programs += 1
        for day in due_days(program, now=now):
            if rollup_day(program_id=program.pk, day=day, now=now):
                run.days += 1
            if on_day is not None and on_day() is False:
                return run
        run.weeks += _rollup_weeks(program, now=now)
    return run


def _rollup_weeks(program: Program, *, now: datetime) -> int:
    return sum(rollup_week(program_id=program.pk, week=week, now=now) for week in due_weeks(program, now=now))


def rollup_verify(*, program: Program, now: datetime | None = None) -> list[date]:
    """Recount every sealed day from the source rows (clicks only where they were not deleted by the
    retention; a day's totals from its rows), and repair a day that differs by rolling it up again; then
    recount every sealed week from its days' rows, and repair a week that differs (or that a repaired day
    reopened) by summing it again. The days and weeks (their Mondays) repaired, in order (there should be
    none)."""
    now = now or clock.now()
    repaired = []
    for marker in RollupDay.objects.filter(program_id=program.pk).order_by("day"):
        day = marker.day
        rolled_clicks = list(DailyClicks.objects.filter(program_id=program.pk, day=day))
        stale_clicks = marker.clicks_sealed and (
            marker.human_clicks != sum(r.human for r in rolled_clicks)
            or (not marker.clicks_purged and _click_key(_clicks_of_day(program.pk, day)) != _click_key(rolled_clicks))
        )
        rolled_signups = list(DailySignups.objects.filter(program_id=program.pk, day=day))
        stale_signups = marker.signups_sealed and (
            _signup_key(_signups_of_day(program.pk, day)) != _signup_key(rolled_signups)
            or tuple(getattr(marker, name) for name in SIGNUP_TOTALS) != _signup_totals(rolled_signups)
        )
        if stale_clicks or stale_signups:
            RollupDay.objects.filter(pk=marker.pk).update(
                clicks_sealed=marker.clicks_sealed and not stale_clicks,
                signups_sealed=marker.signups_sealed and not stale_signups,
            )
            rollup_day(program_id=program.pk, day=day, now=now)
            repaired.append(day)
    weeks = []
    for week in RollupWeek.objects.filter(program_id=program.pk).order_by("week"):
        stale_clicks = week.clicks_sealed and _weekly_click_key(
            _clicks_of_week(program.pk, week.week)
        ) != _weekly_click_key(WeeklyClicks.objects.filter(program_id=program.pk, week=week.week))
        stale_signups = week.signups_sealed and _weekly_signup_key(
            _signups_of_week(program.pk, week.week)
        ) != _weekly_signup_key(WeeklySignups.objects.filter(program_id=program.pk, week=week.week))
        if stale_clicks or stale_signups:
            RollupWeek.objects.filter(pk=week.pk).update(
                clicks_sealed=week.clicks_sealed and not stale_clicks,
                signups_sealed=week.signups_sealed and not stale_signups,
            )
            weeks.append(week.week)
    # The weeks found stale, and those a repaired day reopened, summed again.
    _rollup_weeks(program, now=now)
    return sorted(set(repaired) | set(weeks))


def _click_key(rows: Iterable[DailyClicks]) -> set[tuple[int, int | None, int, int, int]]:
    return {(r.ambassador_id, r.link_id, r.human, r.bots, r.flood) for r in rows if r.human or r.bots or r.flood}


def _signup_key(rows: Iterable[DailySignups]) -> set[tuple[int | None, int, int]]:
    return {(r.ambassador_id, r.signups, r.qualified) for r in rows if r.signups}


def _weekly_click_key(rows: Iterable[WeeklyClicks]) -> set[tuple[int, int]]:
    return {(r.ambassador_id, r.human) for r in rows if r.human}


def _weekly_signup_key(rows: Iterable[WeeklySignups]) -> set[tuple[int, int, int]]:
    return {(r.ambassador_id, r.signups, r.qualified) for r in rows if r.signups}
