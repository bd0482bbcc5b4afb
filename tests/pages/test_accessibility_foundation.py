"""The pages every visitor meets first, in a real browser: accessible in English and French, at phone and
desktop widths, with no console error or CSP violation (the `page` fixture), and screenshotted."""

from __future__ import annotations

import pytest

from tests.factories import ProgramFactory
from tests.pages.conftest import assert_accessible, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = {
    "home": "/",
    "program": "/p/launch/",
    "login": "/accounts/login/",
    "signup": "/accounts/signup/",
    "login-by-code": "/accounts/login/code/",
}
# What each page's one <h1> says, per language: proof that the page was rendered in that language.
HEADINGS = {
    "en": {"home": "Programs", "login": "Sign In", "signup": "Sign Up", "login-by-code": "Send me a sign-in code"},
    "fr": {
        "home": "Programmes",
        "login": "Connexion",
        "signup": "Création de compte",
        "login-by-code": "Envoyez-moi un code de connexion",
    },
}


@pytest.fixture
def launch(db):
    return ProgramFactory(slug="launch", name="Book Launch", destination_url="", allowed_redirect_hosts=[])


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("name", list(PAGES))
def test_the_first_pages_are_accessible_in_both_languages(live_server, browser, page, launch, name, language):
    browser.set_extra_http_headers({"Accept-Language": f"{language};q=1.0"})

    page.goto(f"{live_server.url}{PAGES[name]}")

    assert page.locator("html").get_attribute("lang") == language
    assert page.locator("h1").count() == 1
    if name in HEADINGS[language]:
        assert page.locator("h1").inner_text().strip() == HEADINGS[language][name]
    assert_accessible(page)
    screenshot(page, f"{name}-{language}")


def test_the_skip_link_is_the_first_stop_and_leads_to_the_main_content(live_server, page, launch):
    page.goto(f"{live_server.url}/")

    page.keyboard.press("Tab")

    skip = page.get_by_role("link", name="Skip to main content")
    assert skip.evaluate("element => element === document.activeElement")
    skip.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_the_language_switch_turns_the_site_french_and_keeps_the_page(live_server, page, launch):
    page.goto(f"{live_server.url}/p/launch/")

    page.get_by_label("Language").select_option("fr")
    page.get_by_role("button", name="Change").click()

    assert page.url == f"{live_server.url}/p/launch/"
    assert page.locator("html").get_attribute("lang") == "fr"
    page.goto(f"{live_server.url}/")
    assert page.locator("h1").inner_text() == "Programmes"
