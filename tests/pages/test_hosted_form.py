"""The hosted subscription form, driven as a browser would: follow the page's links, read the form, post it.

Two promises: a `?ref=CODE` on the program page reaches the form and credits that ambassador, and the form
never tells whether an e-mail address was subscribed already (no subscriber enumeration).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import pytest
from disposable_email_domains import blocklist as DISPOSABLE_DOMAINS
from django.test import Client

from ambassadors.models import Program
from referrals.models import Signup
from tests.factories import enroll
from tests.referrals.helpers import CHROME, visit

pytestmark = pytest.mark.django_db

DISPOSABLE_DOMAIN = "mailinator.com" if "mailinator.com" in DISPOSABLE_DOMAINS else sorted(DISPOSABLE_DOMAINS)[0]


class _Page(HTMLParser):
    """The links and the first POST form of a page, as a browser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.links: dict[str, str] = {}
        self.form_action: str | None = None
        self.fields: dict[str, str] = {}
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and "id" in a:
            self.links[a["id"]] = a.get("href", "")
        elif tag == "form" and a.get("method", "").lower() == "post" and self.form_action is None:
            self._in_form = True
            self.form_action = a.get("action", "")
        elif tag == "input" and self._in_form and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def read(response: Any) -> _Page:
    page = _Page()
    page.feed(response.content.decode())
    return page


def person(ip: str = "198.51.100.20") -> Client:
    """A visitor's browser; CSRF is enforced as in production."""
    return Client(enforce_csrf_checks=True, HTTP_USER_AGENT=CHROME, REMOTE_ADDR=ip)


def fill_and_post(client: Client, form_url: str, **values: str) -> Any:
    """GET the form at form_url, keep what it holds (CSRF token, prefilled and hidden fields), fill, submit."""
    form_page = client.get(form_url)
    assert form_page.status_code == 200
    page = read(form_page)
    assert page.form_action is not None, "no POST form on the page"
    # A form without an action posts to the page's own URL, query string included.
    action = urljoin(form_url, page.form_action) if page.form_action else form_url
    return client.post(action, {**page.fields, **values})


def subscribe_from_program_page(client: Client, page_url: str, email: str) -> Any:
    """The visitor lands on the program page, clicks Subscribe, types their e-mail and submits."""
    landing = client.get(page_url)
    assert landing.status_code == 200
    link = read(landing).links["subscribe-link"]
    return fill_and_post(client, urljoin(page_url, link), email=email)


# --- ?ref= is credited ------------------------------------------------------------------------------


def test_ref_on_the_program_page_credits_that_ambassador_through_the_hosted_form(program, ambassador, friend_email):
    response = subscribe_from_program_page(person(), f"/p/{program.slug}/?ref={ambassador.code}", friend_email)

    assert response.status_code == 200
    signup = Signup.objects.get(program=program, email=friend_email)
    assert (signup.ambassador, signup.method, signup.status) == (ambassador, Signup.Method.CODE, "qualified")


def test_the_form_shows_the_code_from_ref_and_who_invited(program, ambassador):
    client = person()
    link = read(client.get(f"/p/{program.slug}/", {"ref": ambassador.code.lower()})).links["subscribe-link"]

    form = client.get(link)

    assert read(form).fields["referral_code"] == ambassador.code
    assert "invited by <strong>Ana</strong>" in form.content.decode()


def test_a_ref_and_click_id_from_the_referral_link_credit_the_click_and_keep_it(program, ambassador, friend_email):
    client = person()
    _, click_id = visit(client, ambassador.code)  # sets the referral cookie, as /r/<code> does

    response = subscribe_from_program_page(
        client, f"/p/{program.slug}/?ref={ambassador.code}&click_id={click_id}", friend_email
    )

    assert response.status_code == 200
    signup = Signup.objects.get(program=program, email=friend_email)
    # The click names the same ambassador: it credits them and keeps the channel the visit came through.
    assert (signup.ambassador, signup.method, str(signup.click_id)) == (ambassador, Signup.Method.COOKIE, click_id)


def test_a_ref_naming_another_ambassador_than_the_cookie_wins(program, ambassador, bob, friend_email):
    client = person()
    visit(client, ambassador.code)

    subscribe_from_program_page(client, f"/p/{program.slug}/?ref={bob.code}", friend_email)

    signup = Signup.objects.get(program=program, email=friend_email)
    assert (signup.ambassador, signup.method) == (bob, Signup.Method.CODE)


def test_a_stale_ref_does_not_stand_in_the_way_of_subscribing(program, ambassador, friend_email):
    ambassador.is_active = False
    ambassador.save(update_fields=["is_active"])

    response = subscribe_from_program_page(person(), f"/p/{program.slug}/?ref={ambassador.code}", friend_email)

    assert response.status_code == 200
    signup = Signup.objects.get(program=program, email=friend_email)
    assert (signup.ambassador, signup.method) == (None, Signup.Method.NONE)


@pytest.fixture
def bob(program):
    return enroll(program, "bob@example.com", display_name="Bob")


# --- No subscriber enumeration ----------------------------------------------------------------------

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
CSRF_HEADER = re.compile(r'"X-CSRFToken": "[^"]+"')  # base.html's hx-headers: masked anew on each page
CSP_NONCE = re.compile(r'nonce="[^"]+"')  # base.html's script tags: a new CSP nonce on each response


def seen(response: Any, typed: str = "") -> tuple[int, str, list[tuple[str, tuple[tuple[str, Any], ...]]]]:
    """What an outsider learns from a response: status, body (CSRF token and the e-mail they typed aside),
    cookies set (values aside)."""
    body = CSRF_INPUT.sub('name="csrfmiddlewaretoken" value="-"', response.content.decode())
    body = CSRF_HEADER.sub('"X-CSRFToken": "-"', body)
    body = CSP_NONCE.sub('nonce="-"', body)
    if typed:
        body = body.replace(f'value="{typed}"', 'value="-"')
    cookies = sorted(
        (name, tuple(sorted((k, v) for k, v in morsel.items() if v and k != "expires")))
        for name, morsel in response.cookies.items()
    )
    return response.status_code, body, cookies


def post_from_a_fresh_browser(program: Program, email: str, ip: str, **values: str) -> Any:
    return fill_and_post(person(ip), f"/p/{program.slug}/subscribe", email=email, **values)


def test_the_form_answers_a_known_and_a_new_address_alike(program, ambassador):
    first = post_from_a_fresh_browser(program, "friend@example.org", "198.51.100.1")
    again = post_from_a_fresh_browser(program, " Friend@Example.ORG", "198.51.100.2")
    new = post_from_a_fresh_browser(program, "stranger@example.org", "198.51.100.3")

    assert Signup.objects.count() == 2
    assert first.status_code == 200
    assert seen(again) == seen(new) == seen(first)


@pytest.mark.parametrize(
    "known",
    [
        pytest.param({"email": f"someone@{DISPOSABLE_DOMAIN}"}, id="pending-review"),
        pytest.param({"email": "ana@example.com", "referral_code": "ANA"}, id="rejected-self-referral"),
        pytest.param({"email": "friend@example.org", "referral_code": "ANA"}, id="qualified-and-attributed"),
    ],
)
def test_a_known_address_in_any_state_looks_like_a_new_one(program, ambassador, known):
    known = {k: (ambassador.code if v == "ANA" else v) for k, v in known.items()}
    post_from_a_fresh_browser(program, ip="198.51.100.1", **known)
    status = Signup.objects.get(email=known["email"]).status

    again = post_from_a_fresh_browser(program, ip="198.51.100.2", **known)
    new = post_from_a_fresh_browser(program, "stranger@example.org", "198.51.100.3")

    assert Signup.objects.get(email=known["email"]).status == status, "the first signup stands"
    assert seen(again) == seen(new)


def test_an_unknown_code_is_refused_the_same_for_a_known_and_a_new_address(program, ambassador, friend_email):
    post_from_a_fresh_browser(program, friend_email, "198.51.100.1")

    known = post_from_a_fresh_browser(program, friend_email, "198.51.100.2", referral_code="NOPE99")
    new = post_from_a_fresh_browser(program, "stranger@example.org", "198.51.100.3", referral_code="NOPE99")

    assert known.status_code == 400
    assert b"No active ambassador" in known.content
    # A refused form shows the visitor what they typed; nothing else may differ.
    assert seen(known, typed=friend_email) == seen(new, typed="stranger@example.org")
    assert Signup.objects.count() == 1
