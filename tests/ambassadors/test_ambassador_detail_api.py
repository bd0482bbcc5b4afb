"""`GET /api/v1/programs/<slug>/ambassadors/<code>`: a read key or the ambassador, with correct stats."""

from __future__ import annotations

import pytest
from django.test import Client

from core.actors import Actor
from referrals.services import conversion_record, signup_record
from tests.conftest import bearer
from tests.referrals.helpers import browser, visit

pytestmark = pytest.mark.django_db


def detail_url(program, code):
    return f"/api/v1/programs/{program.slug}/ambassadors/{code}"


def test_read_key_sees_the_ambassador(program, ambassador, api, read_key):
    response = api.get(detail_url(program, ambassador.code), **bearer(read_key))

    assert response.status_code == 200
    body = response.json()
    assert (body["email"], body["code"], body["display_name"]) == ("ana@example.com", ambassador.code, "Ana")
    assert body["stats"] == {"clicks": 0, "signups": 0, "qualified": 0, "conversions": 0}
    assert body["rewards"] == []


def test_the_ambassador_signed_in_sees_their_own_detail(program, ambassador, api):
    api.force_login(ambassador.user)

    response = api.get(detail_url(program, ambassador.code.lower()))

    assert response.status_code == 200
    assert response.json()["code"] == ambassador.code


def test_another_signed_in_customer_gets_404(program, ambassador, api, outsider):
    api.force_login(outsider)

    response = api.get(detail_url(program, ambassador.code))

    assert response.status_code == 404


def test_another_ambassador_gets_404(program, ambassador, api):
    from tests.factories import enroll

    bob = enroll(program, "bob@example.com")
    api.force_login(bob.user)

    assert api.get(detail_url(program, ambassador.code)).status_code == 404


def test_nobody_signed_in_gets_401(program, ambassador, api):
    assert api.get(detail_url(program, ambassador.code)).status_code == 401


def test_a_key_without_the_read_scope_gets_403(program, ambassador, api, track_key):
    assert api.get(detail_url(program, ambassador.code), **bearer(track_key)).status_code == 403


def test_unknown_or_malformed_code_is_404(program, ambassador, api, read_key):
    assert api.get(detail_url(program, "NOSUCH"), **bearer(read_key)).status_code == 404
    assert api.get(detail_url(program, "bad%20code"), **bearer(read_key)).status_code == 404
    assert api.get(f"/api/v1/programs/nope/ambassadors/{ambassador.code}", **bearer(read_key)).status_code == 404


def test_stats_count_people_qualified_signups_and_approved_conversions(program, ambassador, api, read_key):
    program.hold_period_days = 0
    program.save()
    system = Actor.system("test")
    for ip in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
        visit(browser(ip), ambassador.code)
    Client(HTTP_USER_AGENT="Twitterbot/1.0").get(f"/r/{ambassador.code}")
    for email in ("f1@example.org", "f2@example.org"):
        signup_record(program=program, email=email, referral_code=ambassador.code, actor=system)
    signup_record(program=program, email="ana@example.com", referral_code=ambassador.code, actor=system)
    conversion_record(program=program, actor=system, external_id="o-1", amount="10.00", currency="EUR",
                      email="f1@example.org")  # fmt: skip
    conversion_record(program=program, actor=system, external_id="o-2", amount="5.00", currency="EUR",
                      email="ana@example.com")  # fmt: skip

    stats = api.get(detail_url(program, ambassador.code), **bearer(read_key)).json()["stats"]

    # The bot is no click; the self-referral is a signup but not qualified, and its purchase does not count.
    assert stats == {"clicks": 3, "signups": 3, "qualified": 2, "conversions": 1}
