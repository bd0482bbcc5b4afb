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

The periodic task (`referrals.rollup_analytics`, beat) and `manage.py rollup_analytics` roll up every due
day; a reopened day is rolled up again by the task enqueued after its change's commit, or by the next
periodic run if that message was lost. `rollup_verify` recounts sealed days from the source rows and
repairs any difference (there should be none).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, Min, Q

from ambassadors.models import Program
from core import clock
from referrals.models import Click, DailyClicks, DailySignups, RollupDay, Signup

# A day is rolled up only once it has been over for this long: a click or a signup stamped just before
# midnight whose transaction commits just after it is in its day's rows by then.
GRACE = timedelta(minutes=10)


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[midnight UTC, next midnight) of a day."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def signups_reopen(*, program_id: int, created_at: datetime) -> None:
    """Inside the transaction changing a signup created at `created_at`: that day's signups are read from the
    source rows again, until the roll-up that follows this commit.

    An upsert, whatever the day's state: if a roll-up holds the day's row, this waits for it and reopens the
    day after it commits (the roll-up read the rows without this change); if the row does not exist yet,
    the insert makes a roll-up creating it wait for this commit, so its read sees the change. Today's day
    too: a change committing just after midnight must not be missed by the first roll-up of that day.
    """
    day = utc_day(created_at)
    RollupDay.objects.bulk_create(
        [RollupDay(program_id=program_id, day=day, signups_sealed=False)],
        update_conflicts=True,
        unique_fields=["program", "day"],
        update_fields=["signups_sealed"],
    )
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
        if not marker.clicks_sealed:
            DailyClicks.objects.filter(program_id=program_id, day=day).delete()
            DailyClicks.objects.bulk_create(_clicks_of_day(program_id, day), batch_size=2000)
            marker.clicks_sealed = True
        if not marker.signups_sealed:
            DailySignups.objects.filter(program_id=program_id, day=day).delete()
            DailySignups.objects.bulk_create(_signups_of_day(program_id, day), batch_size=2000)
            marker.signups_sealed = True
        marker.rolled_up_at = now
        marker.save(update_fields=["clicks_sealed", "signups_sealed", "rolled_up_at"])
    return True


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
    repaired: list[tuple[str, date]] = field(default_factory=list)


def rollup_due(
    *,
    programs: Iterable[Program] | None = None,
    now: datetime | None = None,
    on_day: Callable[[], bool] | None = None,
) -> RollupRun:
    """Roll up every due day of the programs (all by default), one transaction per day. `on_day` is called
    after each day and may return False to stop there (an interrupted command): a later run goes on."""
    now = now or clock.now()
    run = RollupRun()
    for program in Program.objects.all() if programs is None else programs:
        run.programs += 1
        for day in due_days(program, now=now):
            if rollup_day(program_id=program.pk, day=day, now=now):
                run.days += 1
            if on_day is not None and on_day() is False:
                return run
    return run


def rollup_verify(*, program: Program, now: datetime | None = None) -> list[date]:
    """Recount every sealed day from the source rows (clicks only where they were not deleted by the
    retention) and repair a day that differs by rolling it up again. The days repaired (there should be none)."""
    repaired = []
    for marker in RollupDay.objects.filter(program_id=program.pk).order_by("day"):
        day = marker.day
        stale_clicks = (
            marker.clicks_sealed
            and not marker.clicks_purged
            and _click_key(_clicks_of_day(program.pk, day))
            != _click_key(DailyClicks.objects.filter(program_id=program.pk, day=day))
        )
        stale_signups = marker.signups_sealed and _signup_key(_signups_of_day(program.pk, day)) != _signup_key(
            DailySignups.objects.filter(program_id=program.pk, day=day)
        )
        if stale_clicks or stale_signups:
            RollupDay.objects.filter(pk=marker.pk).update(
                clicks_sealed=marker.clicks_sealed and not stale_clicks,
                signups_sealed=marker.signups_sealed and not stale_signups,
            )
            rollup_day(program_id=program.pk, day=day, now=now)
            repaired.append(day)
    return repaired


def _click_key(rows: Iterable[DailyClicks]) -> set[tuple[int, int | None, int, int, int]]:
    return {(r.ambassador_id, r.link_id, r.human, r.bots, r.flood) for r in rows if r.human or r.bots or r.flood}


def _signup_key(rows: Iterable[DailySignups]) -> set[tuple[int | None, int, int]]:
    return {(r.ambassador_id, r.signups, r.qualified) for r in rows if r.signups}
