"""/dashboard/ shows an ambassador of a waitlist program their own place in line and how many are ahead, from
the same query as every other place; in a fixed number of queries however long the line."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from commerce.waitlist import waitlist_configure, waitlist_position
from core.actors import Actor
from referrals.models import Signup
from referrals.services import signup_record
from tests.factories import ProgramFactory, enroll

pytestmark = pytest.mark.django_db

STAFF = Actor.system("staff")


def _signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _section(page: Any, slug: str) -> str:
    html = page.content.decode()
    match = re.search(rf'<section class="card program-section" id="program-{slug}".*?</section>', html, re.S)
    assert match, f"no section for {slug}"
    return match.group(0)


def _line_of(program: Any, *, before: int, ana_email: str = "ana@example.com", places: int = 2) -> Any:
    """`before` people subscribe, then Ana (who is also the program's ambassador), then one more."""
    waitlist_configure(program=program, actor=STAFF, enabled=True, places_per_referral=places)
    for i in range(before):
        signup_record(program=program, email=f"early{i}-{program.slug}@example.org", actor=STAFF)
    ana = enroll(program, ana_email, display_name="Ana")
    signup_record(program=program, email=ana_email, actor=STAFF)
    signup_record(program=program, email=f"late-{program.slug}@example.org", actor=STAFF)
    return ana


def test_an_ambassador_sees_their_place_and_how_many_are_ahead(program):
    ana = _line_of(program, before=4)

    page = _signed_in(ana.user).get("/dashboard/")

    assert page.status_code == 200
    text = _text(_section(page, program.slug))
    assert "Your place in line" in text
    assert "You are number 5 in line, of 6." in text
    assert "4 people are ahead of you." in text
    assert "moves you up 2 places" in text
    assert f'id="waitlist-position-{program.slug}"' in page.content.decode()


def test_a_friend_who_counts_moves_the_ambassador_up_on_the_dashboard(program):
    ana = _line_of(program, before=4)
    signup_record(program=program, email="friend@example.org", referral_code=ana.code, actor=STAFF)

    text = _text(_section(_signed_in(ana.user).get("/dashboard/"), program.slug))

    # Fifth, two places up: her score ties the third subscriber's, who came first; so fourth of seven, as
    # everyone else reading the line sees it.
    signup = Signup.objects.get(program=program, email="ana@example.com")
    assert waitlist_position(signup).position == 4
    assert "You are number 4 in line, of 7." in text
    assert "3 people are ahead of you." in text


def test_no_waitlist_or_no_subscription_shows_no_place(program):
    ana = enroll(program, "ana@example.com")
    other = ProgramFactory(slug="with-line")
    bob = enroll(other, "bob@example.com")
    waitlist_configure(program=other, actor=STAFF, enabled=True, places_per_referral=2)

    ana_page = _signed_in(ana.user).get("/dashboard/")
    bob_page = _signed_in(bob.user).get("/dashboard/")  # an ambassador who never subscribed

    assert "Your place in line" not in ana_page.content.decode()
    assert "Your place in line" not in bob_page.content.decode()


def test_a_paused_waitlist_shows_no_place(program):
    ana = _line_of(program, before=1)
    waitlist_configure(program=program, actor=STAFF, enabled=False, places_per_referral=2)

    assert "Your place in line" not in _signed_in(ana.user).get("/dashboard/").content.decode()


def test_the_place_renders_in_french(program):
    ana = _line_of(program, before=1)

    page = _signed_in(ana.user).get("/dashboard/", HTTP_ACCEPT_LANGUAGE="fr")

    assert page.status_code == 200 and '<html lang="fr">' in page.content.decode()
    assert 'data-position="2"' in _section(page, program.slug)


def _queries(user: Any) -> int:
    client = _signed_in(user)
    client.get("/dashboard/")  # warm: the session and the first request's one-off reads
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/dashboard/").status_code == 200
    return len(queries)


def test_the_place_costs_the_same_queries_in_a_short_or_a_long_line(db):
    short = ProgramFactory(slug="short-line")
    long = ProgramFactory(slug="long-line")
    ana_short = _line_of(short, before=1, ana_email="ana@short.example")
    ana_long = _line_of(long, before=40, ana_email="ana@long.example")
    for i in range(5):
        signup_record(program=long, email=f"friend{i}@example.org", referral_code=ana_long.code, actor=STAFF)
    no_line = ProgramFactory(slug="no-line")
    ana_none = enroll(no_line, "ana@none.example")

    with_line, without = _queries(ana_short.user), _queries(ana_none.user)

    assert _queries(ana_long.user) == with_line
    # Without a waitlist, nothing more than before (the settings come with the ambassadorships: the pinned
    # count of tests/console/test_dashboard.py holds). With one: the ambassador's subscription, then the
    # place (commerce.waitlist._line_cursor: its savepoint here, inside the test's transaction; the
    # transaction's settings; the query; the savepoint's release).
    assert with_line - without == 5, with_line - without
