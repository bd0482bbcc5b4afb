"""A flood of clicks from one address: `/r/<code>` never blocks a visitor, but past
CLICK_FLOOD_PER_MINUTE the clicks are flagged and credit nobody, while other visitors' clicks still do.
Counted in Redis (the production cache) when REDIS_URL is set; a Redis that is down costs no redirect."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from core.actors import Actor
from referrals import client as referral_client
from referrals.models import Click, Signup
from referrals.services import signup_record
from tests.conftest import bearer
from tests.referrals.helpers import CHROME, location_query, redirect_queries
from tests.referrals.ratelimit_helpers import redis_cache, use_shared_cache
from tests.referrals.test_wsgi_fast_path import call

FLOODER = "203.0.113.66"
PERSON = "198.51.100.20"
LIMIT = 5


@pytest.fixture(autouse=True)
def _shared_cache(settings):
    use_shared_cache(settings)
    settings.CLICK_FLOOD_PER_MINUTE = LIMIT
    # The count runs over fixed minutes: start each test at the beginning of one, so that it never
    # straddles two (time still passes).
    with time_machine.travel(timezone.now().replace(second=1, microsecond=0), tick=True):
        yield


def click(code: str, ip: str = FLOODER, browser: Client | None = None) -> tuple[Any, str]:
    """One click through /r/<code> by a client that keeps no cookies (a script), unless a browser is given."""
    response = (browser or Client(HTTP_USER_AGENT=CHROME, REMOTE_ADDR=ip)).get(f"/r/{code}")
    assert response.status_code == 302, response.status_code
    return response, location_query(response)["click_id"][0]


@pytest.mark.django_db
def test_a_flood_of_clicks_is_all_redirected_and_the_ones_past_the_rate_are_flagged(ambassador):
    answers = [click(ambassador.code) for _ in range(LIMIT + 3)]

    flagged = {str(c.pk) for c in Click.objects.filter(flood=True)}
    assert flagged == {click_id for _, click_id in answers[LIMIT:]}
    assert Click.objects.filter(ambassador=ambassador).count() == LIMIT + 3
    # A flagged click leaves no referral cookie behind (it would credit nobody anyway).
    assert all(referral_client.referral_cookie_name(ambassador.program_id) in r.cookies for r, _ in answers[:LIMIT])
    assert not any(referral_client.referral_cookie_name(ambassador.program_id) in r.cookies for r, _ in answers[LIMIT:])


@pytest.mark.django_db
def test_a_signup_after_a_flagged_click_credits_nobody_while_a_normal_visitor_still_credits(program, ambassador, bob):
    for _ in range(LIMIT):
        click(ambassador.code)
    _response, flagged_id = click(ambassador.code)
    assert Click.objects.get(pk=flagged_id).flood

    # The flagged click's id passed along by the shop's integration, by the form, or in a cookie.
    api = APIClient()
    by_api = api.post(
        f"/api/v1/programs/{program.slug}/signups",
        {"email": "flood-api@example.org", "click_id": flagged_id},
        format="json",
        REMOTE_ADDR=FLOODER,
        **bearer(_track_key(program)),
    )
    assert by_api.status_code == 201 and by_api.json()["ambassador"] is None
    form = Client(HTTP_USER_AGENT=CHROME, REMOTE_ADDR=FLOODER)
    assert (
        form.post(
            f"/p/{program.slug}/subscribe", {"email": "flood-form@example.org", "click_id": flagged_id}
        ).status_code
        == 200
    )
    by_cookie = signup_record(
        program=program, email="flood-cookie@example.org", actor=Actor.visitor(), cookie_click_id=flagged_id
    )[0]
    assert Signup.objects.get(email="flood-form@example.org").ambassador is None
    assert by_cookie.ambassador is None
    assert Signup.objects.filter(ambassador=ambassador).exclude(email="ana@example.com").count() == 0

    # Meanwhile a person elsewhere follows Bob's link and subscribes from the same browser: Bob is credited.
    person = Client(HTTP_USER_AGENT=CHROME, REMOTE_ADDR=PERSON)
    _response, person_click = click(bob.code, browser=person)
    assert not Click.objects.get(pk=person_click).flood
    assert person.post(f"/p/{program.slug}/subscribe", {"email": "person@example.org"}).status_code == 200
    assert Signup.objects.get(email="person@example.org").ambassador == bob


def _track_key(program) -> str:
    from ambassadors.services import api_key_create

    return api_key_create(actor=Actor.system("tests"), program=program, scopes=["track"])[1]


@pytest.mark.django_db
def test_under_first_click_a_flagged_earlier_click_of_the_visitor_is_skipped(program, ambassador, bob):
    program.attribution_model = program.AttributionModel.FIRST_CLICK
    program.save(update_fields=["attribution_model"])
    visitor = "visitor-flooded"
    Click.objects.create(
        program=program, ambassador=ambassador, created_at=timezone.now() - timedelta(hours=1),
        visitor_id=visitor, flood=True,
    )  # fmt: skip
    later = Click.objects.create(program=program, ambassador=bob, created_at=timezone.now(), visitor_id=visitor)

    signup = signup_record(program=program, email="late@example.org", actor=Actor.visitor(), click_id=str(later.pk))[0]

    assert signup.ambassador == bob


@pytest.mark.django_db
def test_the_count_is_per_address_and_link_and_starts_again_after_the_minute(ambassador, bob):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for _ in range(LIMIT):
            click(ambassador.code)
        _response, past = click(ambassador.code)
        _response, other_link = click(bob.code)
        _response, other_address = click(ambassador.code, ip=PERSON)
        traveller.shift(timedelta(seconds=61))
        _response, next_minute = click(ambassador.code)

    assert Click.objects.get(pk=past).flood
    assert not Click.objects.get(pk=other_link).flood
    assert not Click.objects.get(pk=other_address).flood
    assert not Click.objects.get(pk=next_minute).flood


@pytest.mark.django_db(transaction=True)  # the fast path ends the request's connection
def test_the_fast_path_flags_the_flood_in_its_one_statement(ambassador, django_assert_num_queries):
    for _ in range(LIMIT):
        assert call(f"/r/{ambassador.code}", REMOTE_ADDR=FLOODER)[0] == 302

    with django_assert_num_queries(redirect_queries()):
        status, headers, _body = call(f"/r/{ambassador.code}", REMOTE_ADDR=FLOODER)

    assert status == 302
    click_id = location_query_of(headers)["click_id"][0]
    assert Click.objects.get(pk=click_id).flood
    assert Click.objects.filter(flood=False).count() == LIMIT


def location_query_of(headers: dict[str, list[str]]) -> dict[str, list[str]]:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(headers["location"][0]).query)


@pytest.mark.django_db(transaction=True)  # the fast path ends the request's connection
def test_the_redirect_works_with_redis_unreachable(ambassador, settings, caplog):
    settings.CACHES = redis_cache("redis://127.0.0.1:1/0")  # nothing listens on port 1
    caplog.set_level(logging.WARNING, logger="referrals.services.clicks")
    from referrals.services import clicks

    clicks._cache_down_logged_at = 0.0

    answers = [click(ambassador.code) for _ in range(LIMIT + 2)]
    status, _headers, _body = call(f"/r/{ambassador.code}", REMOTE_ADDR=FLOODER)

    assert status == 302
    assert Click.objects.count() == len(answers) + 1
    assert not Click.objects.filter(flood=True).exists()  # nothing counted, nothing flagged
    # Logged, once a minute rather than once a click.
    assert [r.message for r in caplog.records] == ["click flood counter unavailable: clicks are not counted"]


@pytest.mark.django_db
def test_the_flood_count_can_be_turned_off(ambassador, settings):
    settings.CLICK_FLOOD_PER_MINUTE = 0
    for _ in range(LIMIT + 2):
        click(ambassador.code)
    assert not Click.objects.filter(flood=True).exists()
