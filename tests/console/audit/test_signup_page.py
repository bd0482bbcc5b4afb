"""One signup's audit page: the click that credited it, the cookie or code, the rule and the window, the
visitor's competing clicks and where they pointed, the status in plain words, the purchases, the trail;
in a fixed number of queries however many clicks and events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core import clock
from core.actors import Actor
from referrals.models import Click, Signup
from referrals.services import conversion_record, link_create, signup_override, signup_record
from tests.factories import enroll
from tests.referrals.helpers import browser, visit

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


@pytest.fixture
def story(program, ambassador, django_capture_on_commit_callbacks):
    """A friend clicks Bob's newsletter link, then Ana's link, and subscribes on the hosted form: the
    cookie holds the last click, Ana's. Bob asks why he got no credit."""
    bob = enroll(program, "bob@example.com", display_name="Bob")
    newsletter = link_create(ambassador=bob, channel="newsletter")
    friend = browser("198.51.100.7")
    with django_capture_on_commit_callbacks(execute=True):
        visit(friend, newsletter.code)
        visit(friend, ambassador.code)
        response = friend.post(f"/p/{program.slug}/subscribe", {"email": "friend@example.org"})
        assert response.status_code in (200, 302)
    signup = Signup.objects.get(email="friend@example.org")
    assert signup.ambassador == ambassador and signup.method == Signup.Method.COOKIE
    return {"program": program, "ana": ambassador, "bob": bob, "signup": signup, "friend": friend}


@pytest.fixture
def admin_client(auditor):
    client = Client()
    client.force_login(auditor)
    return client


def _page(client, signup):
    return client.get(reverse("audit-signup", args=[signup.pk]))


def test_the_page_tells_why_the_signup_is_credited(story, admin_client):
    signup, ana, bob = story["signup"], story["ana"], story["bob"]

    response = _page(admin_client, signup)

    assert response.status_code == 200
    audit = response.context["audit"]
    assert audit.explanation.method == "cookie"
    assert audit.click is not None and audit.click.ambassador_code == ana.code and audit.click.in_window
    assert audit.click.ip_hash and audit.click.same_ip
    assert audit.click.user_agent_family == "Chrome" and not audit.click.is_bot
    assert [(c.ambassador_code, c.channel) for c in audit.competing] == [(bob.code, "newsletter")]
    assert audit.window_days == 30 and audit.attribution_model == "last_click"
    assert [(a.code, a.is_credited, a.qualified) for a in audit.ambassadors] == [
        (ana.code, True, 1),
        (bob.code, False, 0),
    ]
    body = response.content.decode()
    assert "friend@example.org" in body
    assert "referral cookie" in body and "last click" in body and "30-day window" in body
    assert f"It counts: for {ana.code}" in body
    assert "Bob" in body and "newsletter" in body
    assert [e.line.action for e in audit.events] == ["signup.recorded"]


def test_a_code_given_at_signup_is_said_to_win(program, ambassador, admin_client):
    signup = signup_record(program=program, email="coded@example.org", referral_code=ambassador.code, actor=SYSTEM)[0]

    body = _page(admin_client, signup).content.decode()

    assert f"The referral code {ambassador.code} was given with the signup" in body
    assert "No other click" in body or "None: no other click" in body


def test_a_held_signup_says_why_and_offers_the_review(program, ambassador, admin_client):
    held = signup_record(program=program, email="x@mailinator.com", referral_code=ambassador.code, actor=SYSTEM)[0]

    response = _page(admin_client, held)

    body = response.content.decode()
    assert "held for review and does not count yet" in body and "Throw-away e-mail domain" in body
    assert response.context["may_review"] is True
    assert reverse("audit-signup-review", args=[held.pk]) in body


def test_a_walk_in_is_credited_to_nobody(program, admin_client):
    signup = signup_record(program=program, email="walkin@example.org", actor=SYSTEM)[0]

    body = _page(admin_client, signup).content.decode()

    assert "Nobody is credited" in body
    assert "Credit nobody" not in body  # nothing to unassign


def test_purchases_are_listed(story, admin_client):
    conversion_record(program=story["program"], actor=SYSTEM, external_id="ORD-9", amount="19.90", currency="EUR",
                      email="friend@example.org")  # fmt: skip

    response = _page(admin_client, story["signup"])

    assert [c.external_id for c in response.context["audit"].conversions] == ["ORD-9"]
    assert "ORD-9" in response.content.decode()


def test_a_click_outside_the_window_is_no_competitor(story, admin_client):
    Click.objects.filter(ambassador=story["bob"]).update(created_at=story["signup"].created_at - timedelta(days=31))

    audit = _page(admin_client, story["signup"]).context["audit"]

    assert audit.competing == ()


def test_who_may_read_it(story, marketer):
    url = reverse("audit-signup", args=[story["signup"].pk])
    ambassador_client, marketing_client = Client(), Client()
    ambassador_client.force_login(story["ana"].user)
    marketing_client.force_login(marketer)

    assert Client().get(url).status_code == 302
    assert ambassador_client.get(url).status_code == 403
    assert marketing_client.get(url).status_code == 403


def test_an_unknown_signup_is_a_404(admin_client):
    assert admin_client.get(reverse("audit-signup", args=[999999])).status_code == 404


def _queries(client, signup):
    with CaptureQueriesContext(connection) as captured:
        assert _page(client, signup).status_code == 200
    return len(captured)


def test_the_query_count_is_fixed_however_many_clicks_events_and_purchases(story, admin_client,
                                                                           django_assert_num_queries):  # fmt: skip
    signup, ana, bob = story["signup"], story["ana"], story["bob"]
    before = _queries(admin_client, signup)
    for _ in range(5):
        visit(story["friend"], bob.code)
        visit(story["friend"], ana.code)
    Signup.objects.filter(pk=signup.pk).update(created_at=clock.now() + timedelta(seconds=1))  # they came first
    for n in range(3):
        signup_override(signup=signup, ambassador=bob if n % 2 == 0 else ana, reason=f"round {n}", actor=SYSTEM)
        conversion_record(program=story["program"], actor=SYSTEM, external_id=f"o-{n}", amount="1.00",
                          currency="EUR", email="friend@example.org")  # fmt: skip

    # session, user, groups (the policy), the signup, its explanation (2), clicks, purchases, ambassadors
    with django_assert_num_queries(9):
        response = _page(admin_client, signup)
    assert before == 9
    assert len(response.context["audit"].competing) == 11
    assert len(response.context["audit"].events) == 4


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_audit_pages_render_in_both_languages(story, admin_client, language):
    signup = story["signup"]
    for url in (reverse("audit-home"), reverse("audit-conversions"), reverse("audit-signup", args=[signup.pk])):
        response = admin_client.get(url, HTTP_ACCEPT_LANGUAGE=language)

        assert response.status_code == 200
        assert f'<html lang="{language}"' in response.content.decode()
