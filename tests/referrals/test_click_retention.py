"""Click retention (referrals/services/retention.py): clicks past their program's retention are rolled up
per link and day, then deleted; every count stays what it was, and a click that credited a signup stays as
its attribution record, stripped of what could single out the visitor."""

from __future__ import annotations

from datetime import UTC, date, datetime
from io import StringIO

import pytest
from django.core.management import call_command

from console.analytics import Period, human_clicks
from console.selectors import ambassador_card
from core.actors import Actor
from core.models import AuditEvent
from referrals.models import Click, DailyClicks, RollupDay, Signup
from referrals.selectors import human_clicks_by_link
from referrals.services import link_create, signup_record
from referrals.services.retention import clicks_purge, days_to_purge, months_before, retention_cutoff
from tests.factories import ProgramFactory, enroll

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
ALL_TIME = Period(first=date(2025, 1, 1), last=date(2026, 12, 31))


def at(year: int, month: int, day: int, hour: int = 12) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


@pytest.fixture
def old_clicks(time_machine):
    """Ana's clicks: on 3 and 4 January 2025 (old), 5 human through her main link, 2 through her newsletter
    link, 1 bot, 1 flood; on 1 December 2025 (recent), 2 human. One old click credited a signup. Today is
    10 January 2026, the retention 13 months: the clicks before 10 December 2024... and the program keeps
    6 months, so January 2025 is past it."""
    time_machine.move_to(at(2025, 1, 1), tick=False)
    program = ProgramFactory(slug="keeps-six", click_retention_months=6)
    ana = enroll(program, "ana@example.com")
    newsletter = link_create(ambassador=ana, channel="newsletter")

    def click(moment: datetime, *, link=None, bot=False, flood=False, visitor="v-1") -> Click:
        return Click.objects.create(
            program=program, ambassador=ana, link=link, created_at=moment, is_bot=bot, flood=flood,
            visitor_id=visitor, ip_hash="a" * 64, referer_host="news.example.com",
        )  # fmt: skip

    credited = click(at(2025, 1, 3), visitor="v-credited")
    for _ in range(4):
        click(at(2025, 1, 3))
    click(at(2025, 1, 4), link=newsletter)
    click(at(2025, 1, 4), link=newsletter)
    click(at(2025, 1, 4), bot=True)
    click(at(2025, 1, 4), flood=True)
    click(at(2025, 12, 1))
    click(at(2025, 12, 1))
    time_machine.move_to(at(2025, 1, 3, 13), tick=False)
    signup = signup_record(program=program, email="friend@example.org", click_id=str(credited.pk), actor=SYSTEM)[0]
    assert signup.click_id == credited.pk
    time_machine.move_to(at(2026, 1, 10), tick=False)
    return {"program": program, "ana": ana, "newsletter": newsletter, "credited": credited, "signup": signup}


def _counts(ambassador):
    return (
        sorted((r.link_id or 0, r.clicks) for r in human_clicks_by_link([ambassador])),
        ambassador_card(ambassador).stats.clicks,
        human_clicks(ambassador.program, ALL_TIME),
    )


def test_old_clicks_are_rolled_up_and_deleted_and_every_count_stays(old_clicks):
    program, ana = old_clicks["program"], old_clicks["ana"]
    before = _counts(ana)
    assert before == (sorted([(0, 7), (old_clicks["newsletter"].pk, 2)]), 9, 9)
    assert retention_cutoff(program) == date(2025, 7, 10)

    run = clicks_purge(programs=[program])

    assert (run.deleted, run.kept) == (8, 1)  # 9 old clicks, the credited one kept
    assert Click.objects.filter(program=program).count() == 3  # the credited one and the 2 recent ones
    purged = DailyClicks.objects.filter(program=program, day__lt=date(2025, 7, 10))
    # The rolled-up counts are those of the clicks deleted, and of the one kept.
    assert sum(r.human + r.bots + r.flood for r in purged) == run.deleted + run.kept
    assert _counts(ana) == before
    kept = Click.objects.get(pk=old_clicks["credited"].pk)
    assert (kept.ip_hash, kept.visitor_id, kept.referer_host) == ("", "", "")
    assert Signup.objects.get(pk=old_clicks["signup"].pk).click_id == kept.pk
    (event,) = AuditEvent.objects.filter(action="clicks.purged")
    assert event.after == {"retention_months": 6, "through": "2025-07-09", "deleted": 8, "kept_as_attribution": 1}


def test_a_second_run_purges_nothing_and_records_nothing(old_clicks):
    program = old_clicks["program"]
    clicks_purge(programs=[program])

    run = clicks_purge(programs=[program])

    assert (run.days, run.deleted) == (0, 0)
    assert days_to_purge(program) == []
    assert AuditEvent.objects.filter(action="clicks.purged").count() == 1


def test_a_run_stopped_after_one_day_goes_on_where_it_stopped(old_clicks):
    program, ana = old_clicks["program"], old_clicks["ana"]
    before = _counts(ana)

    first = clicks_purge(programs=[program], on_day=lambda: False)

    assert first.days == 1
    assert _counts(ana) == before
    rest = clicks_purge(programs=[program])
    assert first.deleted + rest.deleted == 8
    assert _counts(ana) == before


def test_a_day_marked_purged_before_its_rows_are_deleted_counts_once(old_clicks):
    """What a run stopped inside a day leaves: the day is counted from its roll-up only, the rows left
    are not counted again, and the next run deletes them."""
    program, ana = old_clicks["program"], old_clicks["ana"]
    before = _counts(ana)
    call_command("rollup_analytics", stdout=StringIO())
    RollupDay.objects.filter(program=program, day=date(2025, 1, 3)).update(clicks_purged=True)

    assert _counts(ana) == before
    assert date(2025, 1, 3) in days_to_purge(program)
    clicks_purge(programs=[program])
    assert _counts(ana) == before


def test_recent_clicks_and_programs_keeping_longer_are_left_alone(old_clicks, time_machine):
    program = old_clicks["program"]
    program.click_retention_months = 13
    program.save(update_fields=["click_retention_months"])

    assert clicks_purge(programs=[program]).deleted == 0
    assert Click.objects.filter(program=program).count() == 11

    time_machine.move_to(at(2026, 2, 5), tick=False)  # 13 months after 4 January 2025
    assert clicks_purge(programs=[program]).deleted == 8


def test_the_command_says_what_is_due_then_purges(old_clicks):
    out = StringIO()
    call_command("purge_clicks", "--dry-run", stdout=out)
    assert "keeps-six: keeps 6 months (from 2025-07-10); due: 190 days (2025-01-01 to 2025-07-09)" in out.getvalue()
    assert Click.objects.count() == 11

    out = StringIO()
    call_command("purge_clicks", "--program", "keeps-six", stdout=out)
    assert "purge clicks past retention: 190/190" in out.getvalue()
    assert "deleted=8" in out.getvalue()
    assert Click.objects.count() == 3


def test_the_daily_task_is_scheduled_and_purges(old_clicks, settings):
    from referrals.tasks import purge_old_clicks

    assert settings.CELERY_BEAT_SCHEDULE["purge-old-clicks"]["task"] == "referrals.purge_old_clicks"
    assert purge_old_clicks.delay().get() == 8
    assert purge_old_clicks.delay().get() == 0


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (at(2026, 3, 31), 1, at(2026, 2, 28)),
        (at(2024, 3, 31), 1, at(2024, 2, 29)),
        (at(2026, 1, 15), 13, at(2024, 12, 15)),
        (at(2026, 12, 4), 12, at(2025, 12, 4)),
    ],
)
def test_months_before_counts_calendar_months_and_clamps_the_day(moment, months, expected):
    assert months_before(moment, months) == expected


@pytest.mark.parametrize("command", ["purge_clicks", "rollup_analytics"])
def test_an_unknown_program_is_a_clear_error_and_changes_nothing(old_clicks, command):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No program with the slug 'nope'"):
        call_command(command, "--program", "nope", stdout=StringIO())
    assert Click.objects.count() == 11
    assert not RollupDay.objects.exists()
