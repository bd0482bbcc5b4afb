""" "Share it too": the friend who just subscribed through the hosted form gets their own link in one click,
and a one-time link e-mailed to the address signs them in to their dashboard.

Three promises besides: only the address this browser just subscribed can be enrolled so (no enrolling
strangers by posting their address), the answer is the same for a new and a known address (no
enumeration), and the log-in link reaches only the address's mailbox and works once, for a while.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone

from ambassadors.models import Ambassador
from tests.factories import UserFactory
from tests.pages.test_hosted_form import fill_and_post, person, read, seen

pytestmark = pytest.mark.django_db

User = get_user_model()
LOGIN_LINK = re.compile(r"http://testserver(/dashboard/login/[^\s]+)")
PER_RESPONSE = re.compile(r'("X-CSRFToken": |nonce=)"[^"]+"')


def outsider_sees(response: Any) -> tuple[Any, ...]:
    """What the hosted form's enumeration test compares, htmx's CSRF header and the CSP nonces aside too."""
    status, body, cookies = seen(response)
    return status, PER_RESPONSE.sub(r'\1"-"', body), cookies


def subscribe(client: Client, program: Any, email: str) -> Any:
    response = fill_and_post(client, f"/p/{program.slug}/subscribe", email=email)
    assert response.status_code == 200
    return response


def share_it_too(client: Client, thank_you: Any) -> Any:
    """Press "Share it too" on the thank-you page, as the browser would (its form, its CSRF token)."""
    page = read(thank_you)
    assert page.form_action, "the thank-you page offers no form"
    return client.post(page.form_action, page.fields)


def login_path_from_mail(to: str) -> str:
    (message,) = [m for m in mail.outbox if m.to == [to]]
    match = LOGIN_LINK.search(message.body)
    assert match, message.body
    return match.group(1)


def sign_in_with(client: Client, path: str) -> Any:
    """Open the e-mailed link (it asks to confirm) and confirm."""
    confirm = client.get(path)
    assert confirm.status_code == 200
    return client.post(path, read(confirm).fields)


def test_share_it_too_enrols_the_friend_and_shows_their_link_at_once(program, ambassador):
    friend = person()
    thank_you = subscribe(friend, program, "friend@example.org")

    response = share_it_too(friend, thank_you)

    assert response.status_code == 302
    shared = friend.get(response["Location"])
    new = Ambassador.objects.get(program=program, email="friend@example.org")
    assert f'value="http://testserver/r/{new.code}" readonly' in shared.content.decode()
    assert new.claimed_at is None, "nobody proved the address yet"


def test_the_friend_is_emailed_a_login_link_that_opens_their_dashboard_and_claims_the_profile(program):
    friend = person()
    share_it_too(friend, subscribe(friend, program, "friend@example.org"))
    path = login_path_from_mail("friend@example.org")

    browser = Client(enforce_csrf_checks=True)
    signed_in = sign_in_with(browser, path)

    assert (signed_in.status_code, signed_in["Location"]) == (302, "/dashboard/")
    ambassador = Ambassador.objects.get(program=program, email="friend@example.org")
    assert ambassador.claimed_at is not None
    assert EmailAddress.objects.get(user=ambassador.user, email="friend@example.org").verified
    dashboard = browser.get("/dashboard/")
    assert f"/r/{ambassador.code}" in dashboard.content.decode()


def test_the_login_link_works_once(program):
    friend = person()
    share_it_too(friend, subscribe(friend, program, "friend@example.org"))
    path = login_path_from_mail("friend@example.org")
    sign_in_with(Client(), path)

    again = Client().get(path)

    assert again.status_code == 400
    assert "no longer works" in again.content.decode()


def test_the_login_link_expires(program):
    friend = person()
    share_it_too(friend, subscribe(friend, program, "friend@example.org"))
    path = login_path_from_mail("friend@example.org")

    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        late = Client().post(path)

    assert late.status_code == 400
    assert "_auth_user_id" not in late.wsgi_request.session


def test_a_tampered_login_link_signs_nobody_in(program):
    friend = person()
    share_it_too(friend, subscribe(friend, program, "friend@example.org"))
    path = login_path_from_mail("friend@example.org")

    response = Client().post(path[:-3] + "abc")

    assert response.status_code == 400
    assert "_auth_user_id" not in response.wsgi_request.session


def test_a_browser_that_subscribed_nobody_cannot_enrol_an_address(program):
    stranger = person()

    response = stranger.post(f"/p/{program.slug}/share", {"email": "victim@example.org"})

    assert response.status_code in (302, 403)
    assert not Ambassador.objects.exists()
    assert not mail.outbox


def test_posting_another_address_enrols_only_the_one_this_browser_subscribed(program):
    client = Client()
    client.post(f"/p/{program.slug}/subscribe", {"email": "me@example.org"})

    client.post(f"/p/{program.slug}/share", {"email": "victim@example.org"})

    assert list(Ambassador.objects.values_list("email", flat=True)) == ["me@example.org"]
    assert [m.to for m in mail.outbox] == [["me@example.org"]]


def test_share_needs_the_csrf_token(program):
    friend = person()
    subscribe(friend, program, "friend@example.org")

    response = friend.post(f"/p/{program.slug}/share")

    assert response.status_code == 403
    assert not Ambassador.objects.exists()


def test_a_known_and_a_new_address_get_the_same_answers(program, ambassador):
    """Ana is an ambassador already; the answers to her address and to a new one differ only by the link."""
    answers = []
    for email, ip in (("ana@example.com", "198.51.100.1"), ("newcomer@example.org", "198.51.100.2")):
        client = person(ip)
        thank_you = subscribe(client, program, email)
        shared = share_it_too(client, thank_you)
        page = client.get(shared["Location"])
        code = Ambassador.objects.get(program=program, email=email).code
        body = outsider_sees(page)[1].replace(code, "CODE")
        answers.append((outsider_sees(thank_you), shared.status_code, shared["Location"], page.status_code, body))

    assert answers[0] == answers[1]
    assert len(mail.outbox) == 2, "both addresses are mailed alike"


def test_the_login_link_of_an_address_someone_typed_into_signup_never_opens_their_account(program):
    """Mallory signs up with Victor's address (unverified), subscribes with it and presses Share it too.
    The link goes to Victor's mailbox, and it opens the placeholder holding the profile, never Mallory's
    account (which would hand her Victor's profile)."""
    mallory = UserFactory(username="mallory", email="victor@example.org")
    EmailAddress.objects.create(user=mallory, email="victor@example.org", verified=False, primary=True)
    client = person()
    share_it_too(client, subscribe(client, program, "victor@example.org"))

    (message,) = mail.outbox
    assert message.to == ["victor@example.org"]
    victor = Client()
    sign_in_with(victor, login_path_from_mail("victor@example.org"))

    signed_in_as = User.objects.get(pk=victor.session["_auth_user_id"])
    assert signed_in_as != mallory
    assert Ambassador.objects.get(email="victor@example.org").user == signed_in_as
    assert not Ambassador.objects.filter(user=mallory).exists()


def test_the_login_link_of_a_verified_owner_signs_in_that_owner(program):
    owner = UserFactory(username="olga", email="olga@example.org")
    EmailAddress.objects.create(user=owner, email="olga@example.org", verified=True, primary=True)
    client = person()
    share_it_too(client, subscribe(client, program, "olga@example.org"))

    browser = Client()
    sign_in_with(browser, login_path_from_mail("olga@example.org"))

    assert browser.session["_auth_user_id"] == str(owner.pk)
    assert Ambassador.objects.get(email="olga@example.org").user == owner


def test_the_share_page_without_a_share_goes_back_to_the_program(program):
    response = Client().get(f"/p/{program.slug}/share")

    assert (response.status_code, response["Location"]) == (302, f"/p/{program.slug}/")


def test_pressing_share_again_sends_no_second_email(program):
    friend = person()
    thank_you = subscribe(friend, program, "friend@example.org")
    share_it_too(friend, thank_you)

    again = share_it_too(friend, thank_you)

    assert (again.status_code, again["Location"]) == (302, f"/p/{program.slug}/share")
    assert len(mail.outbox) == 1
    assert Ambassador.objects.count() == 1
