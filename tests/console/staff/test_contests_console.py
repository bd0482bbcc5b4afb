"""Contests in the staff console: created and changed through the services, followed here (the ranking
as it stands, the time left) and, once frozen, their winners; an ended contest no longer changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from core.actors import Actor
from core.models import AuditEvent
from referrals.services import signup_record
from rewards.models import Contest
from rewards.services import contest_create, contest_freeze
from tests.factories import ProgramFactory, enroll

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")
MARCH_1 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
STARTS = datetime(2026, 3, 10, tzinfo=UTC)
ENDS = datetime(2026, 4, 10, tzinfo=UTC)
FORM = {"name": "March prize", "prize_text": "A crate of strawberries", "starts_at": "2026-03-10T00:00",
        "ends_at": "2026-04-10T00:00", "winners_count": "2", "metric": "qualified_signups"}  # fmt: skip


def at(moment: datetime) -> Any:
    return time_machine.travel(moment, tick=False)


@pytest.fixture
def staff(marketer) -> Client:
    client = Client()
    client.force_login(marketer)
    return client


def url(name: str, program: Any, **kwargs: Any) -> str:
    return reverse(name, kwargs={"slug": program.slug, **kwargs})


def errors_of(response: Any) -> dict[str, list[str]]:
    return {name: list(errors) for name, errors in response.context["form"].errors.items()}


def march_prize(program: Any) -> Contest:
    with at(MARCH_1):
        return contest_create(
            program=program, actor=SYSTEM, name="March prize", prize_text="Strawberries", starts_at=STARTS,
            ends_at=ENDS, winners_count=2,
        )  # fmt: skip


def friends(program: Any, ambassador: Any, count: int, first: int) -> None:
    for n in range(first, first + count):
        signup_record(program=program, email=f"friend{n}@example.org", referral_code=ambassador.code, actor=SYSTEM)


def test_a_marketer_creates_a_contest_and_lands_on_it(staff, program):
    with at(MARCH_1):
        response = staff.post(url("staff-contest-create", program), FORM)

    contest = Contest.objects.get(program=program)
    assert response.status_code == 302
    assert response["Location"] == url("staff-contest", program, contest_id=contest.pk)
    assert (contest.starts_at, contest.ends_at, contest.winners_count) == (STARTS, ENDS, 2)
    assert AuditEvent.objects.filter(action="contest.created", object_id=str(contest.pk)).exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ends_at": "2026-03-01T00:00"}, "ends_at"),  # before it starts
        ({"winners_count": "0"}, "winners_count"),
        ({"winners_count": "500"}, "winners_count"),
        ({"prize_text": ""}, "prize_text"),
        ({"starts_at": "not a date"}, "starts_at"),
        ({"metric": "clicks"}, "metric"),
    ],
)
def test_a_contest_the_api_would_refuse_is_refused_with_the_field_to_fix(staff, program, changes, field):
    with at(MARCH_1):
        response = staff.post(url("staff-contest-create", program), FORM | changes)

    assert response.status_code == 400
    assert field in errors_of(response), errors_of(response)
    assert not Contest.objects.exists()


def test_the_contest_page_follows_the_ranking_and_the_time_left(staff, program):
    contest = march_prize(program)
    ana, bob = enroll(program, "ana@example.com", display_name="Ana"), enroll(program, "bob@example.com")
    with at(datetime(2026, 3, 12, tzinfo=UTC)):
        friends(program, ana, 1, 0)
        friends(program, bob, 2, 10)

    with at(datetime(2026, 3, 20, tzinfo=UTC)):
        response = staff.get(url("staff-contest", program, contest_id=contest.pk))

    assert response.status_code == 200
    standing = response.context["standing"]
    assert [(line.display_name, line.score) for line in standing.lines] == [("Anonymous ambassador", 2), ("Ana", 1)]
    assert standing.status == "running"
    html = response.content.decode()
    assert "3\xa0weeks" in html  # 21 days left
    assert "Winning for now" in html
    assert response.context["editable"] is True


def test_a_running_contest_can_be_changed_through_the_service(staff, program):
    contest = march_prize(program)

    with at(datetime(2026, 3, 20, tzinfo=UTC)):
        response = staff.post(url("staff-contest", program, contest_id=contest.pk), FORM | {"prize_text": "Two crates"})

    assert response.status_code == 302
    contest.refresh_from_db()
    assert contest.prize_text == "Two crates"
    assert AuditEvent.objects.filter(action="contest.updated", object_id=str(contest.pk)).exists()


def test_a_frozen_contest_shows_its_winners_and_no_longer_changes(staff, program):
    contest = march_prize(program)
    ana = enroll(program, "ana@example.com", display_name="Ana")
    with at(datetime(2026, 3, 12, tzinfo=UTC)):
        friends(program, ana, 2, 0)
    with at(ENDS + timedelta(minutes=1)):
        contest_freeze(contest_id=contest.pk)
    later = ENDS + timedelta(days=1)

    with at(later):
        page = staff.get(url("staff-contest", program, contest_id=contest.pk))
        refused = staff.post(url("staff-contest", program, contest_id=contest.pk), FORM | {"prize_text": "More"})

    assert page.status_code == 200
    assert page.context["standing"].frozen
    assert [(line.display_name, line.score) for line in page.context["standing"].lines] == [("Ana", 2)]
    html = page.content.decode()
    assert "Winners" in html and "Ended, winners recorded" in html
    assert page.context["editable"] is False and "Save the contest" not in html
    assert refused.status_code == 400
    assert "its ranking is final" in refused.content.decode()
    contest.refresh_from_db()
    assert contest.prize_text == "Strawberries"


def test_the_program_page_lists_its_contests_and_links_to_each(staff, program):
    contest = march_prize(program)

    with at(datetime(2026, 3, 20, tzinfo=UTC)):
        html = staff.get(url("staff-program", program)).content.decode()

    assert url("staff-contest", program, contest_id=contest.pk) in html
    assert "Running" in html


def test_a_contest_of_another_program_is_a_404(staff, program):
    contest = march_prize(ProgramFactory(slug="other"))

    assert staff.get(url("staff-contest", program, contest_id=contest.pk)).status_code == 404


def test_auditors_cannot_manage_contests(client, program, auditor):
    contest = march_prize(program)
    client.force_login(auditor)

    assert client.get(url("staff-contest", program, contest_id=contest.pk)).status_code == 403
    assert client.post(url("staff-contest-create", program), FORM).status_code == 403


def test_the_contest_page_asks_the_same_number_of_queries_whatever_its_ranking(
    staff, program, django_assert_num_queries
):
    contest = march_prize(program)
    ambassadors = [enroll(program, f"amb{n}@example.com") for n in range(12)]
    page = url("staff-contest", program, contest_id=contest.pk)

    def scored(first: int, last: int) -> None:
        with at(datetime(2026, 3, 12, tzinfo=UTC)):
            for n in range(first, last):
                friends(program, ambassadors[n], 1, 100 + n)

    scored(0, 2)
    # Session, user, groups (the policy), the program, the contest, its ranking.
    with at(datetime(2026, 3, 20, tzinfo=UTC)), django_assert_num_queries(6):
        assert len(staff.get(page).context["standing"].lines) == 2
    scored(2, 12)
    with at(datetime(2026, 3, 20, tzinfo=UTC)), django_assert_num_queries(6):
        assert len(staff.get(page).context["standing"].lines) == 12
