"""The privacy pages in a real browser, checked by axe-core (WCAG 2.1 A/AA) at phone and desktop widths:
an ambassador's "Your data" page (/account/data/), with its erase form's error; and an admin's privacy
requests (/audit/people/): the lookup, a person found with the export and erase forms, an address nobody
holds, and a request sent without its reason."""

from __future__ import annotations

import pytest

from referrals.services import signup_record
from tests.factories import ProgramFactory, enroll, staff_user
from tests.pages.conftest import assert_accessible, screenshot
from tests.pages.test_staff_console import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ana(db):
    """Ana, an ambassador of the Book Launch, with a friend who subscribed through her code."""
    from core.actors import Actor

    program = ProgramFactory(slug="launch", name="Book Launch")
    ana = enroll(program, "ana@example.com", display_name="Ana")
    signup_record(program=program, email="zoe@example.org", referral_code=ana.code, actor=Actor.system("test"))
    return ana


def test_your_data_page_and_its_erase_error_are_accessible(live_server, browser, page, ana):
    # Given Ana signed in, on her data page
    sign_in(browser, live_server, ana.user)
    page.goto(f"{live_server.url}/account/data/")
    page.get_by_role("heading", name="Your data", level=1).wait_for()
    assert_accessible(page)
    screenshot(page, "privacy-your-data")

    # When she asks to erase her account with another address than hers
    page.get_by_label("Type your e-mail address to confirm").fill("someone@example.org")
    page.get_by_role("button", name="Erase my account for good").click()

    # Then the error is shown, linked from the summary, and the page is still accessible
    page.get_by_text("This is not the e-mail address of your account.").first.wait_for()
    assert page.get_by_label("Type your e-mail address to confirm").get_attribute("aria-invalid") == "true"
    assert_accessible(page)


def test_the_privacy_requests_page_is_accessible_at_each_step(live_server, browser, page, ana):
    # Given an admin on the privacy requests page
    sign_in(browser, live_server, staff_user("auditor", group="auditors"))
    page.goto(f"{live_server.url}/audit/people/")
    page.get_by_role("heading", name="Privacy requests", level=1).wait_for()
    assert_accessible(page)

    # When they look a person up who is held
    page.get_by_label("E-mail address").fill("ana@example.com")
    page.get_by_role("button", name="Look up").click()

    # Then the counts and the export and erase forms are accessible
    page.get_by_role("button", name="Download this person's data").wait_for()
    assert_accessible(page)
    screenshot(page, "privacy-people-found")

    # When they ask to erase without the request's reason, the error is accessible too
    page.get_by_role("button", name="Erase this person").click()
    page.locator(".error-summary, [role=alert]").first.wait_for()
    assert_accessible(page)

    # And an address nobody holds says so, accessibly
    page.goto(f"{live_server.url}/audit/people/")
    page.get_by_label("E-mail address").fill("nobody@example.org")
    page.get_by_role("button", name="Look up").click()
    page.get_by_text("Nothing is held under this address.").wait_for()
    assert_accessible(page)
