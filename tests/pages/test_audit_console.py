"""The audit console in a real browser: an auditor finds a signup by e-mail, reads why it was attributed,
reassigns it with a reason, and the two ambassadors' counts change accordingly. Each page passes axe-core
at phone and desktop widths and is screenshotted; console errors and CSP violations fail the test."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from referrals.models import Signup
from referrals.services import link_create
from tests.factories import ProgramFactory, enroll, staff_user
from tests.pages.conftest import assert_accessible, screenshot
from tests.referrals.helpers import browser as referee_browser
from tests.referrals.helpers import counters_of, visit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def story(db):
    """Zoe clicked Bob's newsletter link, then Ana's link, and subscribed: the cookie kept the last click,
    so Ana is credited. Bob says Zoe came for his newsletter."""
    program = ProgramFactory(slug="launch", name="Book Launch", destination_url="", allowed_redirect_hosts=[])
    ana = enroll(program, "ana@example.com", display_name="Ana")
    bob = enroll(program, "bob@example.com", display_name="Bob")
    zoe = referee_browser("198.51.100.9")
    visit(zoe, link_create(ambassador=bob, channel="newsletter").code)
    visit(zoe, ana.code)
    assert zoe.post(f"/p/{program.slug}/subscribe", {"email": "zoe@example.org"}).status_code in (200, 302)
    assert Signup.objects.get(email="zoe@example.org").ambassador == ana
    return {"program": program, "ana": ana, "bob": bob}


def sign_in(context, live_server, user):
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])


def counts(page, code):
    """(signups, qualified) of an ambassador in the page's table of ambassadors concerned."""
    cells = page.locator(f'#ambassadors-concerned tr[data-code="{code}"] td.num').all_inner_texts()
    return tuple(int(c) for c in cells)


def test_an_auditor_finds_a_signup_reads_why_and_reassigns_it(live_server, browser, page, story):
    ana, bob = story["ana"], story["bob"]
    sign_in(browser, live_server, staff_user("auditor", group="auditors"))

    # Given the search page, when the auditor looks for Zoe's address
    page.goto(f"{live_server.url}/audit/")
    assert page.get_by_role("heading", level=1).inner_text() == "Signups"
    assert_accessible(page)
    page.get_by_label("Subscriber's e-mail").fill("zoe@example.org")
    page.get_by_role("button", name="Search").click()
    results = page.get_by_role("table")
    assert results.get_by_role("link").all_inner_texts() == ["zoe@example.org"]
    assert ana.code in results.inner_text()
    screenshot(page, "audit-signups")

    # Then the signup's page says why Ana is credited, and that Bob was clicked first
    results.get_by_role("link", name="zoe@example.org").click()
    page.get_by_role("heading", name="Signup of zoe@example.org").wait_for()
    assert "referral cookie" in page.locator("#attribution-rule").inner_text()
    assert "last click" in page.locator("#attribution-rule").inner_text()
    assert bob.code in page.get_by_role("table", name="1 other click by the same visitor, oldest first").inner_text()
    assert (counts(page, ana.code), counts(page, bob.code)) == ((1, 1), (0, 0))
    assert_accessible(page)
    screenshot(page, "audit-signup")

    # When the auditor reassigns it to Bob, with a reason
    reassign = page.get_by_role("form", name="Credit another ambassador")
    reassign.get_by_label("New ambassador's code").fill(bob.code)
    reassign.get_by_label("Reason").fill("Zoe came for Bob's newsletter; Ana's link was a second visit")
    reassign.get_by_role("button", name="Reassign").click()

    # Then the credit and both ambassadors' counts have moved, and the trail says who and why
    page.get_by_text(f"The signup is now credited to {bob.code}.").wait_for()
    assert bob.code in page.locator("#credited-to").inner_text()
    assert (counts(page, ana.code), counts(page, bob.code)) == ((0, 0), (1, 1))
    trail = page.locator("#signup-trail").inner_text()
    assert "auditor" in trail and "Zoe came for Bob's newsletter" in trail
    assert (counters_of(ana).qualified, counters_of(bob).qualified) == (0, 1)
    assert_accessible(page)
    screenshot(page, "audit-signup-reassigned")


def test_a_bad_override_shows_its_errors_accessibly(live_server, browser, story):
    # Its own page: the invalid POST answers 400, which Chromium logs as a console error; any other fails.
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and "status of 400" not in m.text and problems.append(m.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    sign_in(browser, live_server, staff_user("auditor", group="auditors"))
    signup = Signup.objects.get(email="zoe@example.org")
    page.goto(f"{live_server.url}/audit/signups/{signup.pk}/")

    reassign = page.get_by_role("form", name="Credit another ambassador")
    reassign.get_by_label("New ambassador's code").fill("NOSUCH9")
    reassign.get_by_label("Reason").fill("Testing")
    reassign.get_by_role("button", name="Reassign").click()

    page.get_by_role("alert").wait_for()
    assert "No ambassador has this code in this program." in page.get_by_role("alert").inner_text()
    assert reassign.get_by_label("New ambassador's code").get_attribute("aria-invalid") == "true"
    assert_accessible(page)
    screenshot(page, "audit-signup-error")
    assert problems == []


def test_the_conversion_search_is_accessible(live_server, browser, page, story):
    sign_in(browser, live_server, staff_user("auditor", group="auditors"))

    page.goto(f"{live_server.url}/audit/conversions/")

    assert page.get_by_role("heading", level=1).inner_text() == "Conversions"
    assert_accessible(page)
    screenshot(page, "audit-conversions")
