"""`parrain.js` on a business's own site: it keeps the `ref` and `click_id` a referral link landed with and
fills the hidden fields of the business's signup form, on another page, under a strict CSP.

The business's site is a tiny http.server on its own port (another origin than Parrain's live server);
Debian's chromium, driven by Playwright, visits it as a referred friend would.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client

from tests.conftest import CHROMIUM
from tests.pages.conftest import CHROMIUM_ARGS, DESKTOP_CHROME

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CLICK_ID = "0b6f3c1e-5d2a-4a51-9a7e-2f1d8c9e4b10"


def business_site(parrain: str) -> dict[str, str]:
    """The business's pages: each includes parrain.js from Parrain and allows no other script (no inline)."""
    head = (
        f'<meta http-equiv="Content-Security-Policy" content="default-src \'self\'; script-src {parrain}">'
        '<meta charset="utf-8"><title>{title}</title>'
    )

    def page(title: str, body: str, attrs: str = 'data-window-days="30"') -> str:
        return (
            f"<!doctype html><html lang=en><head>{head.replace('{title}', title)}"
            f'<script src="{parrain}/parrain.js" {attrs}></script></head><body>{body}</body></html>'
        )

    return {
        "/welcome": page("Welcome", '<h1>Welcome</h1><a id="go" href="/signup">Create your account</a>'),
        "/signup": page(
            "Sign up",
            '<form method="post" action="/signup"><label>E-mail <input name="email"></label>'
            '<input type="hidden" name="parrain_ref"><input type="hidden" name="parrain_click_id">'
            "<button>Sign up</button></form>",
        ),
        "/custom": page(
            "Sign up",
            '<form><input type="hidden" name="referrer"><input type="hidden" name="visit"></form>',
            attrs='data-window-days="30" data-ref-field="referrer" data-click-field="visit"',
        ),
        "/short": page("Welcome", "<h1>Welcome</h1>", attrs='data-window-days="1"'),
    }


@pytest.fixture
def business(live_server) -> Iterator[str]:
    pages = business_site(live_server.url)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            if path == "/favicon.ico":  # the browser asks; a 404 would show as a console error
                self.send_response(204)
                self.end_headers()
                return
            body = pages.get(path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write((body or "not found").encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(user_agent=DESKTOP_CHROME)
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        yield page, problems
        context.close()
        browser.close()


def hidden(page, name: str) -> str:
    return page.locator(f'input[name="{name}"]').input_value()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_referral_of_the_landing_url_fills_the_signup_form_on_another_page(business, browser_page):
    page, problems = browser_page

    page.goto(f"{business}/welcome?utm_source=parrain&ref=ANA234&click_id={CLICK_ID}")
    page.click("#go")

    assert page.url == f"{business}/signup"
    assert hidden(page, "parrain_ref") == "ANA234"
    assert hidden(page, "parrain_click_id") == CLICK_ID
    assert problems == []  # no CSP violation, no error: it runs with script-src limited to Parrain


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_field_names_can_be_the_businesss_own(business, browser_page):
    page, _ = browser_page

    page.goto(f"{business}/welcome?ref=ANA234&click_id={CLICK_ID}")
    page.goto(f"{business}/custom")

    assert (hidden(page, "referrer"), hidden(page, "visit")) == ("ANA234", CLICK_ID)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_later_referral_replaces_the_earlier_and_junk_is_ignored(business, browser_page):
    page, _ = browser_page

    page.goto(f"{business}/welcome?ref=ANA234&click_id={CLICK_ID}")
    page.goto(f"{business}/welcome?ref=BOB567")
    page.goto(f"{business}/welcome?ref=%3Cscript%3E")  # not a code: ignored, BOB567 stays
    page.goto(f"{business}/signup")

    assert (hidden(page, "parrain_ref"), hidden(page, "parrain_click_id")) == ("BOB567", "")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_referral_is_forgotten_after_the_attribution_window(business, browser_page):
    page, _ = browser_page
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    page.clock.set_fixed_time(start)
    page.goto(f"{business}/short?ref=ANA234&click_id={CLICK_ID}")  # a window of one day

    page.clock.set_fixed_time(start + timedelta(days=1, minutes=1))
    page.goto(f"{business}/signup")

    assert (hidden(page, "parrain_ref"), hidden(page, "parrain_click_id")) == ("", "")


@pytest.mark.django_db
def test_the_script_is_served_at_a_stable_url_with_caching_headers():
    client = Client()

    response = client.get("/parrain.js")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == "public, max-age=3600"
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"
    body = response.content.decode()
    assert "eval(" not in body and "new Function" not in body
    assert client.get("/parrain.js", HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
