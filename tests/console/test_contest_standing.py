"""The contest read model the program page and the dashboard show: the live ranking and the time left,
the frozen winners after the end, at a query cost that does not grow with the ambassadors or events; and
the component that renders it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.template.loader import render_to_string
from django.utils import translation

from ambassadors.models import Program
from console.contests import contest_standing, program_contests
from core.actors import Actor
from rewards.models import Contest
from rewards.services import contest_create, contest_freeze
from tests.factories import enroll
from tests.rewards.conftest import subscribe

pytestmark = pytest.mark.django_db

STAFF = Actor.system("tests")
STARTS = datetime(2026, 3, 10, tzinfo=UTC)
ENDS = datetime(2026, 4, 10, tzinfo=UTC)
DURING = datetime(2026, 3, 20, 12, tzinfo=UTC)


def at(moment: datetime) -> Any:
    return time_machine.travel(moment, tick=False)


def contest(program: Program, name: str = "March prize", **fields: Any) -> Contest:
    with at(datetime(2026, 3, 1, tzinfo=UTC)):
        values = {"prize_text": "Strawberries", "starts_at": STARTS, "ends_at": ENDS, "winners_count": 2} | fields
        return contest_create(program=program, actor=STAFF, name=name, **values)


def activity(program: Program, ambassadors: int, friends_each: int) -> None:
    with at(datetime(2026, 3, 12, tzinfo=UTC)) as clock:
        for n in range(ambassadors):
            ambassador = enroll(program, f"amb{n}@example.com", display_name=f"Amb {n}" if n % 2 else "")
            for _ in range(friends_each + n % 3):
                clock.shift(timedelta(minutes=1))
                subscribe(program, ambassador)


def test_the_standing_ranks_names_and_counts_down(program):
    march = contest(program)
    activity(program, ambassadors=3, friends_each=1)

    with at(DURING):
        standing = contest_standing(march)

    assert standing.status == "running" and not standing.frozen
    assert standing.time_left == ENDS - DURING
    assert [(line.rank, line.display_name, line.score, line.is_winner) for line in standing.lines] == [
        (1, "Anonymous ambassador", 3, True),  # amb2: 3 friends
        (2, "Amb 1", 2, True),
        (3, "Anonymous ambassador", 1, False),
    ]
    assert standing.lines[0].anonymous and not standing.lines[1].anonymous


@pytest.mark.parametrize("ambassadors", [2, 12])
def test_the_standing_costs_one_query_however_many_ambassadors(program, django_assert_num_queries, ambassadors):
    march = contest(program)
    activity(program, ambassadors=ambassadors, friends_each=2)

    with at(DURING), django_assert_num_queries(1):  # the ranking: one grouped query
        standing = contest_standing(march, limit=10)

    assert len(standing.lines) == min(ambassadors, 10)


def test_a_frozen_standing_is_the_recorded_winners_in_one_query(program, django_assert_num_queries):
    march = contest(program)
    activity(program, ambassadors=4, friends_each=1)
    with at(ENDS + timedelta(minutes=1)):
        contest_freeze(contest_id=march.pk)
        march.refresh_from_db()
        with at(ENDS + timedelta(days=1)):
            subscribe(program, program.ambassadors.get(email="amb0@example.com"))  # after the end: no effect

        with django_assert_num_queries(1):  # the winners with their ambassadors
            standing = contest_standing(march)

    assert standing.frozen and standing.status == "ended" and standing.time_left == timedelta(0)
    assert [(line.rank, line.score) for line in standing.lines] == [(1, 3), (2, 2)]


def test_the_program_shows_running_contests_then_recent_winners(program, django_assert_num_queries):
    march = contest(program)
    april = contest(program, "April prize", starts_at=datetime(2026, 4, 1, tzinfo=UTC),
                    ends_at=datetime(2026, 5, 1, tzinfo=UTC))  # fmt: skip
    contest(program, "Summer prize", starts_at=datetime(2026, 6, 1, tzinfo=UTC),
            ends_at=datetime(2026, 7, 1, tzinfo=UTC))  # fmt: skip  # not started: not shown
    with at(ENDS + timedelta(minutes=1)):
        contest_freeze(contest_id=march.pk)

    with at(datetime(2026, 4, 12, tzinfo=UTC)), django_assert_num_queries(3):  # the contests, one per contest
        shown = program_contests(program)
    with at(datetime(2026, 4, 20, tzinfo=UTC)):
        later = program_contests(program)

    assert [s.id for s in shown] == [april.pk, march.pk]
    assert [s.id for s in later] == [april.pk], "winners are shown for a week"


def test_the_component_shows_names_as_text_and_the_time_left(program):
    march = contest(program, name="<b>March</b>", prize_text="<i>Jam</i>")
    with at(datetime(2026, 3, 12, tzinfo=UTC)):
        subscribe(program, enroll(program, "eve@example.com", display_name="<script>alert(1)</script>"))

    with at(datetime(2026, 4, 7, tzinfo=UTC)):
        standing = contest_standing(march)
        html = render_to_string("components/contest.html", {"contest": standing})
        with translation.override("fr"):
            french = render_to_string("components/contest.html", {"contest": standing})

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;March&lt;/b&gt;" in html and "&lt;i&gt;Jam&lt;/i&gt;" in html
    assert "Time left: 3\xa0days" in html
    assert "3\xa0jours" in french  # Django's own French for the duration


def test_the_component_names_a_contest_with_no_score_yet(program):
    march = contest(program)

    with at(DURING):
        html = render_to_string("components/contest.html", {"contest": contest_standing(march)})

    assert "No one has scored yet" in html
