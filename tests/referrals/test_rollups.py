"""The staff analytics' daily roll-ups (referrals/services/rollups.py): only past days, once, reopened by a
change to one of their signups in the change's own transaction, and never leaving a figure stale.

The hand-computed analytics (tests/console/test_analytics.py) run from the source rows, from the roll-ups
and half and half; here: what happens when a rolled-up day changes."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from console.analytics import Period, human_clicks, program_analytics, signup_days, sources
from core.actors import Actor
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
from referrals.services import signup_override, signup_record, signup_review
from referrals.services.rollups import due_days, due_weeks, rollup_day, rollup_due, rollup_verify, rollup_week
from tests.factories import ProgramFactory, enroll

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
MAY = Period(first=date(2026, 5, 1), last=date(2026, 5, 31))


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 5, day, hour, tzinfo=UTC)


@pytest.fixture
def may(time_machine):
    """Ana and Bob; clicks on 3 May (3 human for Ana, 1 bot, 2 human for Bob); signups: Ana's a1 on 4 May,
    a held one (disposable address) on 5 May, a walk-in on 5 May; today is 10 May."""
    time_machine.move_to(at(1, 9), tick=False)
    program = ProgramFactory(slug="may-club")
    ana, bob = enroll(program, "ana@example.com"), enroll(program, "bob@example.com")
    for who, bot in ((ana, False), (ana, False), (ana, False), (ana, True), (bob, False), (bob, False)):
        Click.objects.create(program=program, ambassador=who, created_at=at(3), is_bot=bot)
    time_machine.move_to(at(4), tick=False)
    a1 = signup_record(program=program, email="a1@example.org", referral_code=ana.code, actor=SYSTEM)[0]
    time_machine.move_to(at(5), tick=False)
    held = signup_record(program=program, email="held@mailinator.com", referral_code=ana.code, actor=SYSTEM)[0]
    signup_record(program=program, email="walk@example.org", actor=SYSTEM)
    assert held.status == Signup.Status.PENDING_REVIEW
    time_machine.move_to(at(10), tick=False)
    return {"program": program, "ana": ana, "bob": bob, "a1": a1, "held": held}


def _day(program, day):
    return next(d for d in signup_days(program, MAY) if d.day == date(2026, 5, day))


def test_only_days_that_are_over_are_rolled_up_and_twice_changes_nothing(may):
    program = may["program"]
    with pytest.raises(ValueError, match="not over"):
        rollup_day(program_id=program.pk, day=date(2026, 5, 10))

    run = rollup_due(programs=[program])

    assert run.days == 9  # 1 to 9 May; today (10 May) is read from the source rows
    assert due_days(program) == []
    assert rollup_due(programs=[program]).days == 0
    clicks = {(r.ambassador_id, r.human, r.bots) for r in DailyClicks.objects.filter(program=program)}
    assert clicks == {(may["ana"].pk, 3, 1), (may["bob"].pk, 2, 0)}
    signups = {
        (r.day.day, r.ambassador_id, r.signups, r.qualified) for r in DailySignups.objects.filter(program=program)
    }
    assert signups == {(4, may["ana"].pk, 1, 1), (5, may["ana"].pk, 1, 0), (5, None, 1, 1)}


def test_a_review_reopens_its_day_in_its_own_transaction_and_the_figures_move_at_once(
    may, django_capture_on_commit_callbacks
):
    program = may["program"]
    rollup_due(programs=[program])
    assert _day(program, 5).qualified == 1

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        signup_review(signup=may["held"], status="qualified", reason="A real reader", actor=SYSTEM)

    # Before any roll-up runs again, the day is read from its rows: the reviewed signup counts already.
    marker = RollupDay.objects.get(program=program, day=date(2026, 5, 5))
    assert (marker.clicks_sealed, marker.signups_sealed) == (True, False)
    assert _day(program, 5).qualified == 2
    assert _day(program, 5).referred_qualified == 1
    overview = program_analytics(program, MAY)
    assert {row.code: row.qualified for row in overview.reach.rows}[may["ana"].code] == 2

    # The roll-up enqueued after the commit seals the day again, with the new figures.
    for callback in callbacks:
        callback()
    marker.refresh_from_db()
    assert marker.signups_sealed
    assert _day(program, 5).qualified == 2
    assert program_analytics(program, MAY) == overview


def test_a_reassignment_moves_the_signup_between_ambassadors_in_the_figures(may, django_capture_on_commit_callbacks):
    program, ana, bob = may["program"], may["ana"], may["bob"]
    rollup_due(programs=[program])

    with django_capture_on_commit_callbacks(execute=True):
        signup_override(signup=may["a1"], ambassador=bob, reason="Bob sent the link", actor=SYSTEM)

    qualified = {row.code: row.qualified for row in program_analytics(program, MAY).reach.rows}
    assert (qualified[ana.code], qualified[bob.code]) == (0, 1)
    rows = {(r.ambassador_id, r.qualified) for r in DailySignups.objects.filter(program=program, day=date(2026, 5, 4))}
    assert rows == {(bob.pk, 1)}


def test_a_change_to_todays_signup_marks_today_open_and_nothing_rolls_today_up(may):
    program = may["program"]
    rollup_due(programs=[program])
    today = signup_record(program=program, email="today@mailinator.com", actor=SYSTEM)[0]

    signup_review(signup=today, status="rejected", reason="A fake", actor=SYSTEM)

    marker = RollupDay.objects.get(program=program, day=date(2026, 5, 10))
    assert not marker.signups_sealed
    assert rollup_due(programs=[program]).days == 0
    assert RollupDay.objects.filter(program=program, signups_sealed=False).count() == 1


def test_the_clicks_of_a_period_are_the_same_from_rows_and_roll_ups(may):
    program = may["program"]
    before = human_clicks(program, MAY)
    rollup_due(programs=[program])
    assert human_clicks(program, MAY) == before == 5


def test_verify_finds_and_repairs_a_roll_up_that_differs_from_the_rows(may):
    program = may["program"]
    rollup_due(programs=[program])
    assert rollup_verify(program=program) == []
    DailySignups.objects.filter(program=program, day=date(2026, 5, 4)).update(qualified=7)
    DailyClicks.objects.filter(program=program, ambassador=may["bob"]).delete()

    assert rollup_verify(program=program) == [date(2026, 5, 3), date(2026, 5, 4)]

    assert rollup_verify(program=program) == []
    assert _day(program, 4).qualified == 1
    assert human_clicks(program, MAY) == 5


def test_the_command_rolls_up_verifies_and_says_what_it_did(may):
    out = StringIO()
    call_command("rollup_analytics", "--verify", stdout=out)
    assert "roll up analytics days: 9/9" in out.getvalue()
    assert "rolled_up=9" in out.getvalue()
    assert "repaired=0" in out.getvalue()
    out = StringIO()
    call_command("rollup_analytics", "--program", "may-club", stdout=out)
    assert "0/0" in out.getvalue()


def test_the_periodic_task_is_scheduled_and_rolls_up(may, settings):
    from referrals.tasks import rollup_analytics

    assert settings.CELERY_BEAT_SCHEDULE["rollup-analytics"]["task"] == "referrals.rollup_analytics"
    assert rollup_analytics.delay().get() == 9
    assert rollup_analytics.delay(program_id=may["program"].pk).get() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_review_committing_while_its_day_is_rolled_up_leaves_the_day_reopened(time_machine):
    """The roll-up holds the day's row lock while it reads; a review committing meanwhile waits to reopen
    the day, and reopens it after the roll-up commits: the roll-up's read, which did not see the review,
    is never taken as the truth."""
    time_machine.move_to(at(5), tick=False)
    program = ProgramFactory(slug="race-club")
    ana = enroll(program, "ana@example.com")
    held = signup_record(program=program, email="held@mailinator.com", referral_code=ana.code, actor=SYSTEM)[0]
    time_machine.move_to(at(10), tick=False)
    day = date(2026, 5, 5)
    RollupDay.objects.create(program=program, day=day)  # what rollup_day creates before it locks

    locked, review_done = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def review() -> None:
        try:
            locked.wait(5)
            signup_review(signup=held, status="qualified", reason="A real reader", actor=SYSTEM)
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)
        finally:
            review_done.set()
            connection.close()

    worker = threading.Thread(target=review)
    worker.start()
    with transaction.atomic():
        # What rollup_day does: lock the day, read its rows, write the roll-up, seal it.
        RollupDay.objects.select_for_update().get(program=program, day=day)
        locked.set()
        assert not review_done.wait(0.5)  # the review waits for the lock to reopen the day
        seen = Signup.objects.filter(program=program, status=Signup.Status.QUALIFIED).count()
        RollupDay.objects.filter(program=program, day=day).update(signups_sealed=True)
    worker.join(10)

    assert failures == []
    assert seen == 0  # the roll-up's read predates the review: sealing it would have been wrong...
    assert Signup.objects.get(pk=held.pk).status == Signup.Status.QUALIFIED
    # ...but the review reopened the day after the roll-up's commit, and the roll-up enqueued by the review
    # sealed it again with the review counted: whatever is sealed agrees with the rows.
    assert rollup_verify(program=program) == []
    assert [(d.day, d.qualified) for d in signup_days(program, MAY)] == [(day, 1)]


def test_a_day_without_anything_is_sealed_empty_and_read_as_nothing(time_machine):
    time_machine.move_to(at(1), tick=False)
    program = ProgramFactory(slug="quiet")
    time_machine.move_to(at(4), tick=False)
    assert rollup_due(programs=[program]).days == 3
    assert not DailySignups.objects.filter(program=program).exists()
    assert signup_days(program, MAY) == ()
    assert due_days(program, now=at(4) + timedelta(days=1)) == [date(2026, 5, 4)]


def test_a_day_is_rolled_up_only_once_it_has_been_over_for_a_few_minutes(may):
    """A click or signup stamped at 23:59:59 may commit just after midnight: its day waits for it."""
    program = may["program"]
    just_after = datetime(2026, 5, 11, 0, 5, tzinfo=UTC)
    assert date(2026, 5, 10) not in due_days(program, now=just_after)
    with pytest.raises(ValueError, match="not over"):
        rollup_day(program_id=program.pk, day=date(2026, 5, 10), now=just_after)
    assert due_days(program, now=just_after + timedelta(minutes=6))[-1] == date(2026, 5, 10)


# --- Weeks -----------------------------------------------------------------------------------------------

FIRST_WEEK, SECOND_WEEK = date(2026, 5, 4), date(2026, 5, 11)  # Mondays; May 1 (a Friday) starts no week


def _sealed_weeks(program):
    return sorted(
        (w.week, w.clicks_sealed, w.signups_sealed)
        for w in RollupWeek.objects.filter(program=program)
        if w.clicks_sealed or w.signups_sealed
    )


def test_a_week_is_summed_once_its_seven_days_are_sealed_and_a_period_reads_it_whole(may, time_machine):
    program, ana, bob = may["program"], may["ana"], may["bob"]
    Click.objects.create(program=program, ambassador=bob, created_at=at(12))  # in the second week
    before = program_analytics(program, MAY)  # nothing rolled up: every figure from the source rows
    assert due_weeks(program) == []  # 10 May: the week of 4 May ends today

    time_machine.move_to(at(20), tick=False)
    run = rollup_due(programs=[program])

    assert (run.days, run.weeks) == (19, 2)
    assert due_weeks(program) == [] and rollup_due(programs=[program]).weeks == 0
    assert _sealed_weeks(program) == [(FIRST_WEEK, True, True), (SECOND_WEEK, True, True)]
    signups = {(r.week, r.ambassador_id, r.signups, r.qualified) for r in WeeklySignups.objects.filter(program=program)}
    assert signups == {(FIRST_WEEK, ana.pk, 2, 1)}  # walk-ins are in the days' totals, not per ambassador
    clicks = {(r.week, r.ambassador_id, r.human) for r in WeeklyClicks.objects.filter(program=program)}
    assert clicks == {(SECOND_WEEK, bob.pk, 1)}  # 3 May's clicks are in the days of a week never summed
    read = sources(program, MAY)
    assert read.signup_weeks == read.click_weeks == (FIRST_WEEK, SECOND_WEEK)
    assert date(2026, 5, 5) not in read.signup_days and date(2026, 5, 3) in read.click_days
    # Weeks, days and source rows (18 May onwards is today's week: its days, then today's rows) add up to
    # the same figures as the source rows alone.
    assert program_analytics(program, MAY) == before
    assert human_clicks(program, MAY) == 6


def test_a_review_reopens_the_week_of_its_day_and_the_next_roll_up_sums_it_again(
    may, time_machine, django_capture_on_commit_callbacks
):
    program, ana = may["program"], may["ana"]
    time_machine.move_to(at(20), tick=False)
    rollup_due(programs=[program])

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        signup_review(signup=may["held"], status="qualified", reason="A real reader", actor=SYSTEM)

    # Reopened in the review's transaction: the week's signups (its clicks stay sealed), and the day's.
    assert _sealed_weeks(program) == [(FIRST_WEEK, True, False), (SECOND_WEEK, True, True)]
    assert sources(program, MAY).signup_weeks == (SECOND_WEEK,)
    overview = program_analytics(program, MAY)
    assert {row.code: row.qualified for row in overview.reach.rows}[ana.code] == 2
    # Summing the week before its day is rolled up again does nothing: a day of it is open.
    assert rollup_week(program_id=program.pk, week=FIRST_WEEK) is False
    assert _sealed_weeks(program)[0] == (FIRST_WEEK, True, False)

    for callback in callbacks:  # the roll-up enqueued after the commit: the day, then its week
        callback()
    assert _sealed_weeks(program)[0] == (FIRST_WEEK, True, True)
    assert {(r.ambassador_id, r.qualified) for r in WeeklySignups.objects.filter(week=FIRST_WEEK)} == {(ana.pk, 2)}
    assert program_analytics(program, MAY) == overview


def test_verify_recounts_the_weeks_from_their_days_and_repairs_them(may, time_machine):
    program, ana = may["program"], may["ana"]
    time_machine.move_to(at(20), tick=False)
    rollup_due(programs=[program])
    good = program_analytics(program, MAY)
    assert rollup_verify(program=program) == []

    WeeklySignups.objects.filter(program=program, week=FIRST_WEEK).update(qualified=9)
    WeeklyClicks.objects.create(program=program, ambassador=ana, week=SECOND_WEEK, human=4)
    assert program_analytics(program, MAY) != good  # what the page would show from a wrong roll-up

    assert rollup_verify(program=program) == [FIRST_WEEK, SECOND_WEEK]
    assert rollup_verify(program=program) == []
    assert program_analytics(program, MAY) == good


def test_a_day_repaired_by_verify_reopens_its_week_which_is_summed_again(may, time_machine):
    program, ana = may["program"], may["ana"]
    time_machine.move_to(at(20), tick=False)
    rollup_due(programs=[program])
    good = program_analytics(program, MAY)
    # A day's rows and its week's both wrong in the same way: the week agrees with its days, the day does
    # not agree with the source rows.
    DailySignups.objects.filter(program=program, day=date(2026, 5, 4)).update(qualified=5)
    WeeklySignups.objects.filter(program=program, week=FIRST_WEEK).update(qualified=5)
    RollupDay.objects.filter(program=program, day=date(2026, 5, 4)).update(qualified=5, referred_qualified=5)

    assert rollup_verify(program=program) == [date(2026, 5, 4)]

    assert {(r.ambassador_id, r.qualified) for r in WeeklySignups.objects.filter(week=FIRST_WEEK)} == {(ana.pk, 1)}
    assert _sealed_weeks(program) == [(FIRST_WEEK, True, True), (SECOND_WEEK, True, True)]
    assert program_analytics(program, MAY) == good


def test_verify_repairs_a_days_totals(may):
    program = may["program"]
    rollup_due(programs=[program])
    RollupDay.objects.filter(program=program, day=date(2026, 5, 3)).update(human_clicks=50)
    RollupDay.objects.filter(program=program, day=date(2026, 5, 5)).update(signups=9)

    assert rollup_verify(program=program) == [date(2026, 5, 3), date(2026, 5, 5)]

    assert human_clicks(program, MAY) == 5
    assert _day(program, 5).signups == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_review_committing_while_its_week_is_summed_leaves_the_week_reopened(time_machine):
    """As for a day, one level up: summing a week holds the week's row lock while it reads its days; a review
    committing meanwhile waits to reopen the week, and reopens it after the sum commits."""
    time_machine.move_to(at(4, 9), tick=False)  # Monday 4 May: the program's first week is a whole one
    program = ProgramFactory(slug="race-week")
    ana = enroll(program, "ana@example.com")
    time_machine.move_to(at(5), tick=False)
    held = signup_record(program=program, email="held@mailinator.com", referral_code=ana.code, actor=SYSTEM)[0]
    time_machine.move_to(at(12), tick=False)
    for day in range(4, 12):
        rollup_day(program_id=program.pk, day=date(2026, 5, day))
    assert RollupWeek.objects.get(program=program, week=FIRST_WEEK).signups_sealed is False

    locked, review_committed = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def review() -> None:
        try:
            locked.wait(5)
            with transaction.atomic():
                # Said first on commit, before the roll-up the review enqueues runs (it waits for the lock too).
                transaction.on_commit(review_committed.set)
                signup_review(signup=held, status="qualified", reason="A real reader", actor=SYSTEM)
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)
        finally:
            connection.close()

    worker = threading.Thread(target=review)
    worker.start()
    with transaction.atomic():
        # What rollup_week does: lock the week, read its days' rows, write the sums, seal it.
        RollupWeek.objects.select_for_update().get(program=program, week=FIRST_WEEK)
        locked.set()
        # The review waits for the week's lock to reopen it (long enough for a review not waiting to commit).
        assert not review_committed.wait(3)
        seen = sum(r.qualified for r in DailySignups.objects.filter(program=program, ambassador=ana))
        RollupWeek.objects.filter(program=program, week=FIRST_WEEK).update(signups_sealed=True)
    worker.join(10)

    assert failures == []
    assert seen == 0  # the sum read before the review: sealing it would have been wrong...
    # ...but the review reopened the week after the sum's commit, and the roll-up enqueued by the review
    # summed it again with the review counted.
    assert rollup_verify(program=program) == []
    assert {(r.ambassador_id, r.qualified) for r in WeeklySignups.objects.filter(program=program)} == {(ana.pk, 1)}
    week = Period(first=FIRST_WEEK, last=date(2026, 5, 10))
    assert sources(program, week).signup_weeks == (FIRST_WEEK,)
    assert {row.code: row.qualified for row in program_analytics(program, week).reach.rows} == {ana.code: 1}
