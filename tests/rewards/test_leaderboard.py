"""The leaderboard is honest: real, active ambassadors with qualified friends only, never padded; a tie goes
to whoever got there first; others are seen by display name or as "Anonymous ambassador", never by e-mail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from ambassadors.services import ambassador_update
from core.actors import Actor
from referrals.services import signup_record
from rewards.selectors import leaderboard
from tests.factories import enroll

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def friend_signs_up(time_machine, program, ambassador, n: int, at: datetime) -> None:
    time_machine.move_to(at, tick=False)
    signup_record(program=program, email=f"friend{n}@example.org", referral_code=ambassador.code, actor=SYSTEM)


def test_a_tie_goes_to_the_ambassador_whose_last_counted_friend_came_first(program, time_machine):
    time_machine.move_to(START, tick=False)
    # Bob enrolled first: the old order (by enrolment) would put him ahead. Ana reaches 2 before him.
    bob = enroll(program, "bob@example.com", display_name="Bob")
    time_machine.move_to(START + timedelta(minutes=1), tick=False)
    ana = enroll(program, "ana@example.com", display_name="Ana")
    friend_signs_up(time_machine, program, bob, 1, START + timedelta(hours=1))
    friend_signs_up(time_machine, program, ana, 2, START + timedelta(hours=2))
    friend_signs_up(time_machine, program, ana, 3, START + timedelta(hours=3))
    friend_signs_up(time_machine, program, bob, 4, START + timedelta(hours=4))

    rows = leaderboard(program)

    assert rows == [
        {"rank": 1, "display_name": "Ana", "qualified": 2},
        {"rank": 2, "display_name": "Bob", "qualified": 2},
    ]


def test_a_held_friend_does_not_move_the_tie_break(program, time_machine):
    time_machine.move_to(START, tick=False)
    ana = enroll(program, "ana@example.com", display_name="Ana")
    time_machine.move_to(START + timedelta(minutes=1), tick=False)
    bob = enroll(program, "bob@example.com", display_name="Bob")
    friend_signs_up(time_machine, program, ana, 1, START + timedelta(hours=2))
    friend_signs_up(time_machine, program, bob, 2, START + timedelta(hours=1))
    # Bob's later friend is held for review (a disposable address): it neither counts nor dates his rank.
    time_machine.move_to(START + timedelta(hours=5), tick=False)
    signup_record(program=program, email="held@mailinator.com", referral_code=bob.code, actor=SYSTEM)

    assert [row["display_name"] for row in leaderboard(program)] == ["Bob", "Ana"]


def test_only_real_active_ambassadors_with_qualified_friends_are_listed(program, time_machine):
    time_machine.move_to(START, tick=False)
    ana = enroll(program, "ana@example.com", display_name="Ana")
    gone = enroll(program, "gone@example.com", display_name="Gone")
    enroll(program, "idle@example.com", display_name="Idle")
    friend_signs_up(time_machine, program, ana, 1, START + timedelta(hours=1))
    friend_signs_up(time_machine, program, gone, 2, START + timedelta(hours=2))
    ambassador_update(ambassador=gone, actor=SYSTEM, is_active=False)

    rows = leaderboard(program, limit=10)

    assert rows == [{"rank": 1, "display_name": "Ana", "qualified": 1}]  # no padding up to the limit


def test_no_name_shows_as_anonymous_never_as_the_email(program, time_machine):
    time_machine.move_to(START, tick=False)
    shy = enroll(program, "shy.person@example.com", display_name="")
    friend_signs_up(time_machine, program, shy, 1, START + timedelta(hours=1))

    rows = leaderboard(program)

    assert rows == [{"rank": 1, "display_name": "Anonymous ambassador", "qualified": 1}]
    assert "shy" not in str(rows)


def test_the_leaderboard_query_count_does_not_grow_with_the_leaders(program, time_machine, django_assert_num_queries):
    time_machine.move_to(START, tick=False)
    for n in range(6):
        friend_signs_up(time_machine, program, enroll(program, f"a{n}@example.com", display_name=f"A{n}"), n, START)

    with django_assert_num_queries(1):
        assert len(leaderboard(program)) == 6


def test_a_script_as_display_name_is_shown_as_text_on_the_program_page(program, time_machine):
    time_machine.move_to(START, tick=False)
    program.leaderboard_public = True
    program.save(update_fields=["leaderboard_public"])
    mallory = enroll(program, "mallory@example.com", display_name="<script>alert(1)</script>")
    friend_signs_up(time_machine, program, mallory, 1, START + timedelta(hours=1))

    html = Client().get(f"/p/{program.slug}/").content.decode()
    api = Client().get(f"/api/v1/programs/{program.slug}/leaderboard").json()

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert api == {"results": [{"rank": 1, "display_name": "<script>alert(1)</script>", "qualified": 1}]}
