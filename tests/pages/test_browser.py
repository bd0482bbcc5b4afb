"""A real browser (Debian's chromium, driven by Playwright) follows a referral link and subscribes."""

from __future__ import annotations

import re

import pytest

from referrals.models import Signup
from tests.conftest import CHROMIUM
from tests.factories import ProgramFactory, enroll
from tests.pages.conftest import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The `browser` fixture (a person's browser: an ordinary desktop Chrome) comes from tests/pages/conftest.py.


@pytest.fixture
def hosted_program(db):
    # No destination: referral links land on Parrain's own program page.
    program = ProgramFactory(slug="launch", name="Book Launch", destination_url="", allowed_redirect_hosts=[])
    from core.actors import Actor
    from rewards.services import tier_create

    tier_create(
        actor=Actor.system("tests"), program=program, name="Price drop", kind="collective", step=5,
        drop_type="amount", drop_value=1,
    )  # fmt: skip
    return program


def test_friend_follows_link_and_subscribes_credited_to_the_ambassador(live_server, browser, hosted_program):
    ana = enroll(hosted_program, "ana@example.com", display_name="Ana")
    page = browser.new_page()

    page.goto(f"{live_server.url}/r/{ana.code.lower()}")

    assert re.search(r"/p/launch/\?ref=" + ana.code + r"&click_id=", page.url)
    assert page.locator("#current-price").inner_text() == "€20.00"
    page.click("#subscribe-link")
    assert "invited by Ana" in page.locator(".invited").inner_text()
    page.fill("input[name=email]", "  Friend@Example.org ")
    page.click("button[type=submit]")
    assert "Welcome aboard" in page.locator("#subscribed h1").inner_text()

    signup = Signup.objects.get(program=hosted_program)
    assert signup.email == "friend@example.org"
    assert signup.ambassador == ana
    assert signup.method == Signup.Method.COOKIE
    assert signup.status == Signup.Status.QUALIFIED


def test_headless_browser_click_is_a_bot_and_credits_nobody(live_server, hosted_program):
    from playwright.sync_api import sync_playwright

    from referrals.models import Click

    ana = enroll(hosted_program, "ana@example.com", display_name="Ana")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()  # Playwright's default user agent says HeadlessChrome
        page.goto(f"{live_server.url}/r/{ana.code}")
        cookies = {c["name"] for c in page.context.cookies()}
        browser.close()

    click = Click.objects.get(ambassador=ana)
    assert click.is_bot
    assert not any(name.startswith("prn_ref_") for name in cookies)


def test_form_shows_field_error_for_an_unknown_code_and_records_nothing(live_server, browser, hosted_program):
    page = browser.new_page()
    page.goto(f"{live_server.url}/p/launch/subscribe")
    page.fill("input[name=email]", "someone@example.org")
    page.fill("input[name=referral_code]", "NOSUCHCODE")
    page.click("button[type=submit]")

    assert "No active ambassador has this referral code" in page.locator(".error").inner_text()
    assert not Signup.objects.exists()


def test_program_page_shows_the_price_dropping_with_subscribers(live_server, browser, hosted_program):
    from core.actors import Actor
    from referrals.services import signup_record

    for i in range(6):
        signup_record(program=hosted_program, email=f"reader{i}@example.org", actor=Actor.system("test"))
    page = browser.new_page()
    page.goto(f"{live_server.url}/p/launch/")

    assert page.locator("#current-price").inner_text() == "€19.00"
    assert page.locator("#subscribers").inner_text() == "6"
    assert page.locator("#next-drop").inner_text() == "4 more and the price drops for everyone."
