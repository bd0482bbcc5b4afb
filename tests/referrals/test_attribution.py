"""Attribution of signups (design 2.2-2.4), through the hosted form and through the API alike."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from disposable_email_domains import blocklist as DISPOSABLE_DOMAINS
from django.test import Client

from ambassadors.models import Program
from core.models import AuditEvent
from referrals.models import Signup
from tests.factories import enroll
from tests.referrals.helpers import browser, counters_of, location_query, program_counters, visit

pytestmark = pytest.mark.django_db

START = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
# A real entry of the maintained list, chosen the same way on every run.
DISPOSABLE_DOMAIN = "mailinator.com" if "mailinator.com" in DISPOSABLE_DOMAINS else sorted(DISPOSABLE_DOMAINS)[0]


def subscribe(client: Client, program: Program, email: str, **fields: str) -> tuple[Any, Signup]:
    """The referee fills in the hosted form in their browser."""
    response = client.post(f"/p/{program.slug}/subscribe", {"email": email, **fields})
    assert response.status_code == 200, response.content
    return response, Signup.objects.get(program=program, email=email.strip().lower())


def api_signup(tracker, program: Program, email: str, *, expect: int = 201, **fields: Any) -> dict[str, Any]:
    """The shop's server reports a subscriber."""
    response = tracker.post(f"/api/v1/programs/{program.slug}/signups", {"email": email, **fields}, format="json")
    assert response.status_code == expect, response.content
    return response.json()


def recorded_event(signup: Signup) -> AuditEvent:
    return AuditEvent.objects.get(action="signup.recorded", object_type="signup", object_id=str(signup.pk))


# --- Code, cookie, click_id --------------------------------------------------------------------------


def test_code_typed_on_the_form_beats_the_cookie(program, ambassador, bob, friend_email):
    referee = browser()
    visit(referee, ambassador.code)

    _, signup = subscribe(referee, program, friend_email, referral_code=bob.code.lower())

    assert (signup.ambassador, signup.method, signup.click) == (bob, Signup.Method.CODE, None)


def test_code_passed_by_the_integration_beats_its_click_id(program, ambassador, bob, tracker, friend_email):
    _, click_id = visit(browser(), ambassador.code)

    body = api_signup(tracker, program, friend_email, referral_code=bob.code, click_id=click_id)

    assert (body["ambassador"], body["method"], body["status"]) == (bob.code, "code", "qualified")


@pytest.mark.parametrize(
    ("elapsed", "attributed"),
    [
        (dt.timedelta(0), True),
        (dt.timedelta(days=30) - dt.timedelta(minutes=1), True),
        (dt.timedelta(days=30) + dt.timedelta(minutes=1), False),
        (dt.timedelta(days=90), False),
    ],
)
def test_cookie_attributes_only_inside_the_window(program, ambassador, friend_email, time_machine, elapsed, attributed):
    time_machine.move_to(START, tick=False)
    referee = browser()
    _, click_id = visit(referee, ambassador.code)

    time_machine.move_to(START + elapsed, tick=False)
    _, signup = subscribe(referee, program, friend_email)

    if attributed:
        assert (signup.ambassador, signup.method, str(signup.click_id)) == (ambassador, "cookie", click_id)
        assert counters_of(ambassador).qualified == 1
    else:
        assert (signup.ambassador, signup.method, signup.click) == (None, "none", None)
        assert counters_of(ambassador).signups == 0
    assert signup.status == Signup.Status.QUALIFIED


@pytest.mark.parametrize(
    ("elapsed", "method"),
    [(dt.timedelta(days=29), "api"), (dt.timedelta(days=31), "none")],
)
def test_click_id_passed_by_the_integration_attributes_inside_the_window(
    program, ambassador, tracker, friend_email, time_machine, elapsed, method
):
    time_machine.move_to(START, tick=False)
    _, click_id = visit(browser(), ambassador.code)

    time_machine.move_to(START + elapsed, tick=False)
    body = api_signup(tracker, program, friend_email, click_id=click_id)

    assert body["method"] == method
    assert body["ambassador"] == (ambassador.code if method == "api" else None)


def test_click_id_of_a_bot_of_another_program_or_malformed_does_not_attribute(
    program, ambassador, tracker, other_program
):
    bot = Client(HTTP_USER_AGENT="Twitterbot/1.0").get(f"/r/{ambassador.code}")
    elsewhere = enroll(other_program, "zed@example.com")
    _, foreign_click = visit(browser(), elsewhere.code)

    api_signup(tracker, program, "a@example.org", click_id=location_query(bot)["click_id"][0])
    api_signup(tracker, program, "b@example.org", click_id=foreign_click)
    api_signup(tracker, program, "c@example.org", click_id="not-a-uuid")

    assert set(Signup.objects.values_list("method", flat=True)) == {"none"}


def test_click_id_in_the_hosted_form_attributes_without_a_cookie(program, ambassador, friend_email):
    _, click_id = visit(browser(), ambassador.code)

    _, signup = subscribe(browser("198.51.100.99"), program, friend_email, click_id=click_id)

    assert (signup.ambassador, signup.method) == (ambassador, "api")


@pytest.mark.parametrize(
    ("model", "winner"),
    [(Program.AttributionModel.LAST_CLICK, "bob"), (Program.AttributionModel.FIRST_CLICK, "ana")],
)
def test_two_clicks_in_one_browser_follow_the_program_attribution_model_on_the_form(
    program, ambassador, bob, friend_email, model, winner
):
    program.attribution_model = model
    program.save()
    referee = browser()
    visit(referee, ambassador.code)
    visit(referee, bob.code)

    _, signup = subscribe(referee, program, friend_email)

    assert signup.ambassador == {"ana": ambassador, "bob": bob}[winner]
    assert signup.method == "cookie"


@pytest.mark.parametrize(
    ("model", "winner"),
    [(Program.AttributionModel.LAST_CLICK, "bob"), (Program.AttributionModel.FIRST_CLICK, "ana")],
)
def test_two_clicks_in_one_browser_follow_the_program_attribution_model_through_the_api(
    program, ambassador, bob, tracker, friend_email, model, winner
):
    """The shop's own form passes on the click_id of the URL the visitor landed on last."""
    program.attribution_model = model
    program.save()
    referee = browser()
    visit(referee, ambassador.code)
    _, last_click_id = visit(referee, bob.code)

    body = api_signup(tracker, program, friend_email, click_id=last_click_id)

    assert body["ambassador"] == {"ana": ambassador, "bob": bob}[winner].code
    assert body["method"] == "api"


def test_no_code_and_no_click_is_an_unattributed_signup_that_still_counts_for_the_program(
    program, ambassador, tracker, friend_email
):
    body = api_signup(tracker, program, friend_email)

    assert (body["ambassador"], body["method"], body["status"]) == (None, "none", "qualified")
    assert program_counters(program.pk).qualified == 1
    assert "No referral code" in recorded_event(Signup.objects.get()).reason


def test_unknown_referral_code_is_refused_with_a_field_message(program, ambassador, tracker, friend_email):
    response = tracker.post(
        f"/api/v1/programs/{program.slug}/signups", {"email": friend_email, "referral_code": "NOPE99"}, format="json"
    )

    assert response.status_code == 400
    assert "referral_code" in response.json()
    assert not Signup.objects.exists()


def test_unknown_referral_code_on_the_form_shows_the_error_and_records_nothing(program, ambassador, friend_email):
    response = browser().post(f"/p/{program.slug}/subscribe", {"email": friend_email, "referral_code": "NOPE99"})

    assert response.status_code == 400
    assert b"No active ambassador" in response.content
    assert not Signup.objects.exists()


# --- Duplicates --------------------------------------------------------------------------------------


def test_duplicate_email_through_the_api_returns_the_first_signup_and_attribution(
    program, ambassador, bob, tracker, friend_email
):
    first = api_signup(tracker, program, friend_email, referral_code=ambassador.code)

    again = api_signup(tracker, program, "  FRIEND@Example.ORG ", referral_code=bob.code, expect=200)

    assert again == first
    assert Signup.objects.get().ambassador == ambassador
    assert counters_of(bob).signups == 0
    assert AuditEvent.objects.filter(action="signup.recorded").count() == 1


def test_duplicate_email_on_the_form_keeps_the_first_attribution(program, ambassador, bob, friend_email):
    referee = browser()
    visit(referee, ambassador.code)
    subscribe(referee, program, friend_email)
    visit(referee, bob.code)

    response = referee.post(f"/p/{program.slug}/subscribe", {"email": "Friend@EXAMPLE.org"})

    # The answer does not tell a known address from a new one (tests/pages/test_hosted_form.py compares them).
    assert response.status_code == 200
    signup = Signup.objects.get()
    assert (signup.ambassador, signup.method) == (ambassador, "cookie")
    assert counters_of(ambassador).qualified == 1
    assert counters_of(bob).signups == 0


# --- Screening ---------------------------------------------------------------------------------------


def test_self_referral_by_email_is_rejected_with_its_reason(program, ambassador, tracker):
    body = api_signup(tracker, program, " ANA@example.com", referral_code=ambassador.code)

    assert body["status"] == "rejected"
    assert body["reason"] == "self_referral"
    signup = Signup.objects.get()
    assert "ambassador" in recorded_event(signup).reason
    assert counters_of(ambassador).qualified == 0


def test_self_referral_by_the_signed_in_ambassador_on_the_form_is_rejected(program, ambassador):
    own_browser = browser()
    own_browser.force_login(ambassador.user)
    visit(own_browser, ambassador.code)

    response, signup = subscribe(own_browser, program, "ana.other.address@example.net")

    assert (signup.status, signup.reason) == (Signup.Status.REJECTED, Signup.Reason.SELF_REFERRAL)
    # The page answers as for any subscriber: what the signup became is for the ambassador's dashboard.
    assert response.status_code == 200
    assert counters_of(ambassador).qualified == 0


def test_disposable_domain_goes_to_review_through_the_api(program, ambassador, tracker):
    body = api_signup(tracker, program, f"someone@{DISPOSABLE_DOMAIN}", referral_code=ambassador.code)

    assert (body["status"], body["reason"]) == ("pending_review", "disposable_email")
    assert DISPOSABLE_DOMAIN in recorded_event(Signup.objects.get()).reason
    assert counters_of(ambassador).qualified == 0


def test_disposable_domain_goes_to_review_on_the_form(program, ambassador):
    referee = browser()
    visit(referee, ambassador.code)

    _, signup = subscribe(referee, program, f"someone@{DISPOSABLE_DOMAIN.upper()}")

    assert (signup.status, signup.reason) == (Signup.Status.PENDING_REVIEW, Signup.Reason.DISPOSABLE_EMAIL)


def test_more_signups_than_the_velocity_limit_from_one_browser_go_to_review(program, ambassador):
    program.velocity_limit = 3
    program.save()
    referee = browser()
    visit(referee, ambassador.code)

    statuses = [subscribe(referee, program, f"friend{i}@example.org")[1].status for i in range(5)]

    assert statuses == ["qualified"] * 3 + ["pending_review"] * 2
    last = Signup.objects.get(email="friend4@example.org")
    assert last.reason == Signup.Reason.VELOCITY
    assert "the limit is 3" in recorded_event(last).reason
    assert counters_of(ambassador).qualified == 3


def test_velocity_counts_one_address_across_browsers(program, ambassador):
    program.velocity_limit = 2
    program.save()

    statuses = [subscribe(browser("203.0.113.5"), program, f"f{i}@example.org")[1].status for i in range(3)]

    assert statuses == ["qualified", "qualified", "pending_review"]


@pytest.mark.parametrize("source", [{"referee_ip": "203.0.113.9"}, {"visitor_id": "visitor-of-the-referee"}])
def test_velocity_counts_the_referee_address_the_integration_passes(program, ambassador, tracker, source):
    statuses = [
        api_signup(tracker, program, f"friend{i}@example.org", referral_code=ambassador.code, **source)["status"]
        for i in range(program.velocity_limit + 2)
    ]

    assert statuses == ["qualified"] * program.velocity_limit + ["pending_review"] * 2


def test_velocity_never_counts_the_integration_server_calling_the_api(program, ambassador, tracker):
    for i in range(30):
        code = ambassador.code if i % 2 else None
        body = api_signup(tracker, program, f"customer{i}@example.org", referral_code=code)
        assert body["status"] == "qualified", (i, body)

    assert program_counters(program.pk).qualified == 30
    assert counters_of(ambassador).qualified == 15


# --- Audit and counters ------------------------------------------------------------------------------


def test_every_decision_writes_an_audit_event_with_its_reason(program, ambassador, bob, tracker):
    referee = browser()
    visit(referee, bob.code)
    subscribe(referee, program, "cookie@example.org")
    api_signup(tracker, program, "code@example.org", referral_code=ambassador.code)
    api_signup(tracker, program, "ana@example.com", referral_code=ambassador.code)
    api_signup(tracker, program, f"x@{DISPOSABLE_DOMAIN}", referral_code=ambassador.code)
    api_signup(tracker, program, "nobody@example.org")

    reasons = {s.email: recorded_event(s) for s in Signup.objects.all()}

    assert "window" in reasons["cookie@example.org"].reason
    assert reasons["cookie@example.org"].actor_type == "visitor"
    assert ambassador.code in reasons["code@example.org"].reason
    assert reasons["code@example.org"].actor_type == "api_key"
    assert "ambassador" in reasons["ana@example.com"].reason
    assert reasons["ana@example.com"].after["status"] == "rejected"
    assert DISPOSABLE_DOMAIN in reasons[f"x@{DISPOSABLE_DOMAIN}"].reason
    assert "No referral code" in reasons["nobody@example.org"].reason
    assert all(event.program_id == program.pk for event in reasons.values())


def test_only_qualified_signups_move_the_qualified_counters(program, ambassador, tracker):
    api_signup(tracker, program, "one@example.org", referral_code=ambassador.code)
    api_signup(tracker, program, "two@example.org", referral_code=ambassador.code)
    api_signup(tracker, program, "ana@example.com", referral_code=ambassador.code)
    api_signup(tracker, program, f"x@{DISPOSABLE_DOMAIN}", referral_code=ambassador.code)
    api_signup(tracker, program, "direct@example.org")

    ana = counters_of(ambassador)
    assert (ana.signups, ana.qualified) == (4, 2)
    totals = program_counters(program.pk)
    assert (totals.signups, totals.qualified) == (5, 3)


def test_closed_program_refuses_new_signups(program, ambassador, tracker, friend_email):
    program.status = Program.Status.CLOSED
    program.save()

    api_signup(tracker, program, friend_email, expect=400)
    assert browser().post(f"/p/{program.slug}/subscribe", {"email": friend_email}).status_code == 404
    assert not Signup.objects.exists()
