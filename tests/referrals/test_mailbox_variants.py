"""Variants of one mailbox are one person: self-referral, duplicate and disposable checks see through them.

Each variant is tried through the API (the shop's integration) and the hosted form (the referee's browser).
The address is kept as typed for sending; the canonical mailbox is what the checks compare.
"""

from __future__ import annotations

from typing import Any

import pytest
from disposable_email_domains import blocklist as DISPOSABLE_DOMAINS

from ambassadors.models import Ambassador
from referrals.models import Conversion, Signup
from tests.conftest import bearer
from tests.factories import enroll
from tests.referrals.helpers import browser, counters_of

pytestmark = pytest.mark.django_db

DISPOSABLE_DOMAIN = "mailinator.com" if "mailinator.com" in DISPOSABLE_DOMAINS else sorted(DISPOSABLE_DOMAINS)[0]

# Ways to type Ana's own Gmail mailbox, ana.b@gmail.com.
ANA_VARIANTS = [
    pytest.param("ana.b+friends@gmail.com", id="plus-tag"),
    pytest.param("a.n.a.b@gmail.com", id="gmail-dots"),
    pytest.param("anab@googlemail.com", id="googlemail"),
    pytest.param('"ana.b"@gmail.com', id="quoted-local-part"),
    pytest.param("ANA.B@GMAIL.COM", id="upper-case"),
    pytest.param("A.N.A.B+x@GoogleMail.com", id="all-at-once"),
]

# Ways to type a friend's mailbox, friend.one@gmail.com, a second time.
FRIEND_VARIANTS = [
    pytest.param("friend.one+again@gmail.com", id="plus-tag"),
    pytest.param("friendone@gmail.com", id="gmail-dots"),
    pytest.param("friend.one@googlemail.com", id="googlemail"),
    pytest.param('"friend.one"@gmail.com', id="quoted-local-part"),
    pytest.param("FRIEND.ONE@GMAIL.COM", id="upper-case"),
]


@pytest.fixture
def ambassador(program) -> Ambassador:
    """Ana, enrolled with her Gmail address."""
    return enroll(program, "ana.b@gmail.com", display_name="Ana")


def api_signup(tracker: Any, program: Any, email: str, **fields: Any) -> Any:
    return tracker.post(f"/api/v1/programs/{program.slug}/signups", {"email": email, **fields}, format="json")


def form_signup(program: Any, email: str, ip: str = "198.51.100.20", **fields: str) -> None:
    response = browser(ip).post(f"/p/{program.slug}/subscribe", {"email": email, **fields})
    assert response.status_code == 200, response.content


def signup_typed(program: Any, email: str) -> Signup:
    # `email` keeps what was typed (trimmed, lower-cased as it always was): that is where mail goes.
    return Signup.objects.get(program=program, email=email.strip().lower())


# --- Self-referral -----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ANA_VARIANTS)
def test_self_referral_through_a_variant_of_the_ambassadors_mailbox_is_rejected_on_the_api(
    program, ambassador, tracker, variant
):
    response = api_signup(tracker, program, variant, referral_code=ambassador.code)

    assert response.status_code == 201, response.content
    assert (response.json()["status"], response.json()["reason"]) == ("rejected", "self_referral")
    assert counters_of(ambassador).qualified == 0


@pytest.mark.parametrize("variant", ANA_VARIANTS)
def test_self_referral_through_a_variant_of_the_ambassadors_mailbox_is_rejected_on_the_form(
    program, ambassador, variant
):
    form_signup(program, variant, referral_code=ambassador.code)

    signup = signup_typed(program, variant)
    assert (signup.status, signup.reason) == (Signup.Status.REJECTED, Signup.Reason.SELF_REFERRAL)


def test_another_mailbox_that_looks_alike_is_not_a_self_referral(program, ambassador, tracker):
    """Dots only fold on Gmail: ana.b@example.org and anab@example.org are two people."""
    other = enroll(program, "ana.b@example.org")

    response = api_signup(tracker, program, "anab@example.org", referral_code=other.code)

    assert response.json()["status"] == "qualified"


# --- Duplicates --------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", FRIEND_VARIANTS)
def test_a_variant_of_a_subscribed_mailbox_is_the_same_signup_on_the_api(program, ambassador, tracker, variant):
    first = api_signup(tracker, program, "friend.one@gmail.com", referral_code=ambassador.code)
    assert first.status_code == 201

    again = api_signup(tracker, program, variant)

    assert again.status_code == 200, again.content
    assert again.json() == first.json()
    assert Signup.objects.count() == 1


@pytest.mark.parametrize("variant", FRIEND_VARIANTS)
def test_a_variant_of_a_subscribed_mailbox_is_the_same_signup_on_the_form(program, ambassador, variant):
    form_signup(program, "friend.one@gmail.com", referral_code=ambassador.code)

    form_signup(program, variant, ip="198.51.100.77")

    assert Signup.objects.count() == 1
    assert signup_typed(program, "friend.one@gmail.com").ambassador == ambassador


def test_the_address_is_kept_as_typed_and_compared_as_a_mailbox(program, tracker):
    api_signup(tracker, program, "  Friend.One+News@GoogleMail.com ")

    signup = Signup.objects.get()
    assert signup.email == "friend.one+news@googlemail.com"
    assert signup.email_canonical == "friendone@gmail.com"


# --- Disposable domains ------------------------------------------------------------------------------


def test_a_subdomain_of_a_disposable_domain_goes_to_review_on_the_api(program, ambassador, tracker):
    response = api_signup(tracker, program, f"someone@mail.{DISPOSABLE_DOMAIN}", referral_code=ambassador.code)

    assert (response.json()["status"], response.json()["reason"]) == ("pending_review", "disposable_email")


def test_a_subdomain_of_a_disposable_domain_goes_to_review_on_the_form(program, ambassador):
    email = f"someone@Deep.Mail.{DISPOSABLE_DOMAIN.upper()}"
    form_signup(program, email, referral_code=ambassador.code)

    signup = signup_typed(program, email)
    assert (signup.status, signup.reason) == (Signup.Status.PENDING_REVIEW, Signup.Reason.DISPOSABLE_EMAIL)


# --- Enrolment and conversions -----------------------------------------------------------------------


@pytest.mark.parametrize("variant", ANA_VARIANTS)
def test_enrolling_a_variant_of_an_ambassadors_mailbox_returns_the_same_ambassador(
    program, ambassador, api, track_key, variant
):
    response = api.post(
        f"/api/v1/programs/{program.slug}/ambassadors", {"email": variant}, format="json", **bearer(track_key)
    )

    assert response.status_code == 200, response.content
    assert response.json()["code"] == ambassador.code
    assert Ambassador.objects.count() == 1


@pytest.mark.parametrize("variant", FRIEND_VARIANTS)
def test_a_conversion_finds_its_signup_through_a_variant_of_the_mailbox(program, ambassador, tracker, variant):
    api_signup(tracker, program, "friend.one@gmail.com", referral_code=ambassador.code)

    response = tracker.post(
        f"/api/v1/programs/{program.slug}/conversions",
        {"external_id": "order-1", "email": variant, "amount": "19.90", "currency": "EUR"},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert Conversion.objects.get().signup == signup_typed(program, "friend.one@gmail.com")
