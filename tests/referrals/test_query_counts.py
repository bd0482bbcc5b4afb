"""Query counts pinned on the hot paths: the redirect, and a page of the signups list."""

from __future__ import annotations

import pytest

from core.actors import Actor
from referrals.services import link_create, signup_record
from tests.factories import enroll
from tests.referrals.helpers import browser, redirect_queries

pytestmark = pytest.mark.django_db


def test_the_redirect_costs_two_queries(program, ambassador, django_assert_num_queries):
    referee = browser()

    # The live link by folded code, with its ambassador and program, and the INSERT of the click.
    # No health check, session, user or counter update: clicks are counted from the click rows.
    with django_assert_num_queries(redirect_queries()):
        response = referee.get(f"/r/{ambassador.code}")

    assert response.status_code == 302


def test_the_redirect_of_a_returning_visitor_costs_the_same(program, ambassador, django_assert_num_queries):
    referee = browser()
    referee.get(f"/r/{ambassador.code}")

    with django_assert_num_queries(redirect_queries()):
        referee.get(f"/r/{ambassador.code}")


def test_a_channel_link_costs_the_same(program, ambassador, django_assert_num_queries):
    link = link_create(ambassador=ambassador, channel="newsletter")

    # The same lookup finds channel links (the second branch of its UNION).
    with django_assert_num_queries(redirect_queries()):
        browser().get(f"/r/{link.code}")


def test_an_unknown_code_costs_one_lookup_and_writes_nothing(program, django_assert_num_queries):
    # 1. neither an ambassador's code nor a channel link; then the 404 page, which reads nothing.
    with django_assert_num_queries(1):
        assert browser().get("/r/NOSUCH").status_code == 404


def test_a_malformed_code_costs_no_query(program, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert browser().get("/r/%00").status_code == 404


@pytest.mark.parametrize("rows", [3, 30])
def test_the_signups_list_page_does_not_grow_with_the_rows(program, reader, rows, django_assert_num_queries):
    ambassadors = [enroll(program, f"amb{i}@example.com") for i in range(3)]
    system = Actor.system("test")
    for i in range(rows):
        code = ambassadors[i % 3].code if i % 4 else None
        signup_record(program=program, email=f"friend{i}@example.org", referral_code=code, actor=system)
    url = f"/api/v1/programs/{program.slug}/signups/"
    reader.get(url)  # the key's last_used_at is written at most once a minute: take that write out of the count

    # 1. the API key by hash, with its program
    # 2. the program by slug
    # 3. the page of signups with their ambassadors (select_related): one query however many rows
    #    (cursor paging: no COUNT)
    with django_assert_num_queries(3):
        response = reader.get(url)

    assert response.status_code == 200
    assert len(response.json()["results"]) == rows
    assert sum(1 for r in response.json()["results"] if r["ambassador"]) == rows - len(range(0, rows, 4))


def test_the_signups_list_filters_by_ambassador_without_extra_queries(
    program, ambassador, reader, django_assert_num_queries
):
    system = Actor.system("test")
    signup_record(program=program, email="a@example.org", referral_code=ambassador.code, actor=system)
    signup_record(program=program, email="b@example.org", actor=system)
    url = f"/api/v1/programs/{program.slug}/signups/"
    reader.get(url)

    with django_assert_num_queries(3):
        response = reader.get(url, {"ambassador": ambassador.code.lower()})

    assert [r["email"] for r in response.json()["results"]] == ["a@example.org"]
    assert [r["email"] for r in reader.get(url, {"ambassador": "none"}).json()["results"]] == ["b@example.org"]
