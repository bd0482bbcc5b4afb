"""The embedded dashboard in a real browser (Debian's chromium, through Playwright): a page of the program's
declared host framing /embed/dashboard shows it; the same page on an undeclared origin is refused by the
browser itself (CSP frame-ancestors), and the dashboard never appears there.

The two "business sites" are two local origins (127.0.0.1 on two ports): only the first is declared.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import Client

from commerce.embed import embed_token_issue
from commerce.waitlist import waitlist_configure, waitlist_status_token
from core.actors import Actor
from referrals.services import signup_record
from tests.factories import ProgramFactory, enroll, staff_user
from tests.pages.conftest import assert_accessible, browser, page, screenshot  # noqa: F401 - the fixtures of the browser tests

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SYSTEM = Actor.system("test")


@contextmanager
def business_site(frame_src: str) -> Iterator[str]:
    """A page on its own origin (127.0.0.1, a free port) that frames `frame_src`, as a shop's account page would."""
    html = (
        '<!doctype html><html lang="en"><head><title>My account</title></head><body><h1>My account</h1>'
        f'<iframe id="parrain" title="Your referral dashboard" src="{escape(frame_src)}" width="600" height="800">'
        "</iframe></body></html>"
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/account"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def two_sites(live_server: Any, program: Any, ambassador: Any) -> Iterator[tuple[str, str]]:
    def frame_src() -> str:
        token = embed_token_issue(program=program, ambassador=ambassador, actor=Actor.system("test")).token
        return f"{live_server.url}/embed/dashboard?{urlencode({'program': program.slug, 'token': token})}"

    with business_site(frame_src()) as declared, business_site(frame_src()) as undeclared:
        yield declared, undeclared


@pytest.fixture
def scene(settings) -> tuple[Any, Any]:
    # In development (DEBUG) the declared hosts may frame over http too: the local sites here are http.
    settings.DEBUG = True
    program = ProgramFactory(slug="book-launch", destination_url="", allowed_redirect_hosts=[])
    return program, enroll(program, "ana@example.com", display_name="Ana")


def test_the_declared_host_frames_the_dashboard(live_server, page, scene):  # noqa: F811
    program, ana = scene
    with two_sites(live_server, program, ana) as (declared, _undeclared):
        program.allowed_redirect_hosts = [declared.split("//")[1].split("/")[0]]
        program.save(update_fields=["allowed_redirect_hosts"])

        page.goto(declared)

        frame = page.frame_locator("#parrain")
        link = frame.get_by_label("Your referral link")
        link.wait_for(timeout=10_000)
        assert link.input_value().endswith(f"/r/{ana.code}")
        assert frame.get_by_role("heading", level=1).inner_text().startswith("Your link to")


def test_an_undeclared_host_is_refused_by_the_browser(live_server, browser, scene):  # noqa: F811
    program, ana = scene
    with two_sites(live_server, program, ana) as (declared, undeclared):
        program.allowed_redirect_hosts = [declared.split("//")[1].split("/")[0]]
        program.save(update_fields=["allowed_redirect_hosts"])
        tab = browser.new_page()
        refusals: list[str] = []
        tab.on("console", lambda message: refusals.append(message.text) if message.type == "error" else None)

        with tab.expect_event("console", predicate=lambda m: "frame-ancestors" in m.text, timeout=10_000):
            tab.goto(undeclared)

        assert any("frame-ancestors" in text and "127.0.0.1" in text for text in refusals), refusals
        framed = next(frame for frame in tab.frames if frame is not tab.main_frame)
        assert not framed.url.startswith(live_server.url) or framed.locator("#embed-link").count() == 0
        assert tab.frame_locator("#parrain").locator("#embed-link").count() == 0
        tab.close()


# --- Accessibility of the new pages (axe-core at phone and desktop widths, no console error) -------------


def test_the_embedded_dashboard_and_its_refusal_are_accessible(live_server, browser, page, scene):  # noqa: F811
    program, ana = scene
    waitlist_configure(program=program, actor=Actor.system("test"), enabled=True, places_per_referral=10)
    signup_record(program=program, email=ana.email, actor=Actor.system("test"))
    token = embed_token_issue(program=program, ambassador=ana, actor=Actor.system("test")).token
    url = f"{live_server.url}/embed/dashboard?{urlencode({'program': program.slug, 'token': token})}"

    page.goto(url)
    assert page.locator("#waitlist-position").get_attribute("data-position") == "1"
    assert_accessible(page)
    screenshot(page, "embed-dashboard")

    # The same token again: spent. Another tab, as the browser logs the 410 as an error (expected here).
    tab = browser.new_page()
    refused = tab.goto(url)
    assert refused is not None and refused.status == 410
    assert tab.locator("#embed-refused").get_attribute("data-refusal") == "used"
    assert_accessible(tab)
    tab.close()


def test_the_waitlist_pages_are_accessible(live_server, browser, page, scene):  # noqa: F811
    program, ana = scene
    waitlist_configure(program=program, actor=Actor.system("test"), enabled=True, places_per_referral=10)
    signups = [
        signup_record(program=program, email=f"w{i}@example.org", actor=Actor.system("test"))[0] for i in range(3)
    ]
    client = Client()
    client.force_login(staff_user("marketer", group="marketing"))
    browser.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
          "url": live_server.url}]
    )  # fmt: skip

    page.goto(f"{live_server.url}/p/{program.slug}/waitlist/{waitlist_status_token(signups[2])}")
    assert page.locator("#waitlist-position").get_attribute("data-position") == "3"
    assert_accessible(page)

    page.goto(f"{live_server.url}/staff/p/{program.slug}/waitlist/")
    assert page.locator("#waitlist-table tbody tr").count() == 3
    assert_accessible(page)
    page.get_by_label("How many, from the top").fill("2")
    page.get_by_role("button", name="Admit them").click()
    page.wait_for_url(f"{live_server.url}/staff/p/{program.slug}/waitlist/")
    assert page.locator("#waitlist-table tbody tr").count() == 1
    assert_accessible(page)
    screenshot(page, "staff-waitlist")
