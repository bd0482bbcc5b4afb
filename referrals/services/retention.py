"""Click retention: clicks older than their program's retention (Program.click_retention_months, 13 by
default) are rolled up into daily counts per link (DailyClicks, the analytics' own roll-up) and deleted.

What stays: every count. The analytics and the dashboards read every rolled-up day from its roll-up
already (console/analytics.py, referrals.selectors.human_clicks_by_link), purged or not. A click that
credited a signup stays too, as that signup's attribution record (the audit console explains the signup
with it), stripped of what could single a visitor out: its IP hash, visitor id and referer.

Days are purged oldest first, one at a time: a day is first rolled up (if it was not), then marked purged
(from then on it is counted from its roll-up only), then its clicks are deleted in batches. Stopped at any
point, the data stays consistent and a later run goes on where it stopped; run twice, it does nothing more.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import connection, transaction

from ambassadors.models import Program
from core import clock
from core.actors import Actor
from core.audit import audit_record
from referrals.models import Click, RollupDay, Signup
from referrals.services.rollups import _first_day, day_bounds, rollup_day, utc_day

BATCH = 5000


def months_before(moment: datetime, months: int) -> datetime:
    """The same moment `months` calendar months earlier (31 March less one month: 28 or 29 February)."""
    year, month = divmod(moment.month - 1 - months, 12)
    year, month = moment.year + year, month + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def retention_cutoff(program: Program, *, now: datetime | None = None) -> date:
    """The first day kept: the days before it are purged."""
    return utc_day(months_before(now or clock.now(), program.click_retention_months))


@dataclass
class PurgeRun:
    days: int = 0
    deleted: int = 0
    kept: int = 0  # clicks kept as a signup's attribution record, stripped
    by_program: dict[str, tuple[int, int]] = field(default_factory=dict)


def days_to_purge(program: Program, *, now: datetime | None = None) -> list[date]:
    cutoff = retention_cutoff(program, now=now)
    first = _first_day(program)
    if first >= cutoff:
        return []
    purged = set(
        RollupDay.objects.filter(program=program, day__lt=cutoff, clicks_purged=True).values_list("day", flat=True)
    )
    # A day marked purged may still hold rows a stopped run did not delete: it is gone through again.
    partly = {d for d in purged if _has_unreferenced_clicks(program.pk, d)}
    return [d for d in (first + timedelta(days=n) for n in range((cutoff - first).days)) if d not in purged - partly]


def _has_unreferenced_clicks(program_id: int, day: date) -> bool:
    start, end = day_bounds(day)
    return (
        Click.objects.filter(program_id=program_id, created_at__gte=start, created_at__lt=end)
        .exclude(pk__in=Signup.objects.filter(program_id=program_id, click__isnull=False).values("click_id"))
        .exists()
    )


def _purge_day(program_id: int, day: date, *, now: datetime, batch: int) -> tuple[int, int]:
    """(deleted, kept) for one day; rolled up and marked purged before anything is deleted."""
    rollup_day(program_id=program_id, day=day, now=now)  # nothing to do when the day was rolled up already
    RollupDay.objects.filter(program_id=program_id, day=day).update(clicks_purged=True)
    start, end = day_bounds(day)
    clicks, signups = Click._meta.db_table, Signup._meta.db_table
    moment = connection.ops.adapt_datetimefield_value
    params = {"program": program_id, "start": moment(start), "end": moment(end), "batch": batch}
    day_rows = "c.program_id = %(program)s AND c.created_at >= %(start)s AND c.created_at < %(end)s"
    referenced = f"EXISTS (SELECT 1 FROM {signups} s WHERE s.click_id = c.id)"  # noqa: S608 (table name)
    deleted = 0
    with connection.cursor() as cursor:
        while True:
            with transaction.atomic():
                cursor.execute(
                    f"DELETE FROM {clicks} WHERE id IN (SELECT c.id FROM {clicks} c "  # noqa: S608 (table names)
                    f"WHERE {day_rows} AND NOT {referenced} LIMIT %(batch)s)",
                    params,
                )
                done = cursor.rowcount
            deleted += done
            if done < batch:
                break
        with transaction.atomic():
            cursor.execute(
                f"UPDATE {clicks} SET ip_hash = '', visitor_id = '', referer_host = '' WHERE id IN ("  # noqa: S608
                f"SELECT c.id FROM {clicks} c WHERE {day_rows} AND {referenced})",
                params,
            )
            kept = cursor.rowcount
    return deleted, kept


def clicks_purge(
    *,
    programs: Iterable[Program] | None = None,
    now: datetime | None = None,
    actor: Actor | None = None,
    batch: int = BATCH,
    on_day: Callable[[], bool] | None = None,
) -> PurgeRun:
    """Purge the clicks past each program's retention (every program by default). One audit event per program
    that had something purged (`clicks.purged`: the days and how many rows). `on_day` is called after each
    day and may return False to stop there: a later run goes on."""
    now = now or clock.now()
    actor = actor or Actor.system("click retention")
    run = PurgeRun()
    for program in Program.objects.order_by("pk") if programs is None else programs:
        days = days_to_purge(program, now=now)
        deleted = kept = 0
        stopped = False
        for day in days:
            day_deleted, day_kept = _purge_day(program.pk, day, now=now, batch=batch)
            deleted, kept = deleted + day_deleted, kept + day_kept
            run.days += 1
            if on_day is not None and on_day() is False:
                stopped = True
                break
        if days:
            run.deleted, run.kept = run.deleted + deleted, run.kept + kept
            run.by_program[program.slug] = (deleted, kept)
            audit_record(
                actor=actor,
                action="clicks.purged",
                object_type="program",
                object_id=program.pk,
                program_id=program.pk,
                after={
                    "retention_months": program.click_retention_months,
                    "through": days[-1].isoformat(),
                    "deleted": deleted,
                    "kept_as_attribution": kept,
                },
            )
        if stopped:
            break
    return run
