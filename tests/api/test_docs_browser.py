"""/api/docs/ (Swagger UI from our own static files) renders the operations under our strict CSP."""

from __future__ import annotations

import os

import pytest
from django.db import connections

from tests.conftest import CHROMIUM
from tests.pages.conftest import CHROMIUM_ARGS

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LISTEN_FOR_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def test_api_docs_render_every_operation_without_csp_violations(live_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.add_init_script(LISTEN_FOR_VIOLATIONS)
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            failed: list[str] = []
            page.on("requestfailed", lambda r: failed.append(r.url))

            response = page.goto(f"{live_server.url}/api/docs/")
            assert response is not None and response.status == 200
            csp = response.headers["content-security-policy"]
            page.locator(".opblock").first.wait_for(timeout=15_000)
            operations = page.locator(".opblock").count()
            # Expanding an operation renders its parameters and schemas: more markup that must obey the CSP.
            page.locator(".opblock-summary").first.click()
            page.locator(".opblock-body").first.wait_for()
            page.wait_for_load_state("networkidle")
            violations = page.evaluate("window.__violations")
        finally:
            browser.close()
            connections.close_all()

    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert operations >= 19
    assert violations == []
    assert console == []
    assert failed == []


def test_only_the_docs_page_allows_its_own_inline_style_by_hash(client):
    docs = dict(d.strip().split(" ", 1) for d in client.get("/api/docs/")["Content-Security-Policy"].split(";"))
    home = dict(d.strip().split(" ", 1) for d in client.get("/")["Content-Security-Policy"].split(";"))

    assert docs["style-src"].startswith("'self' 'sha256-")
    assert "unsafe" not in docs["style-src"] and docs["script-src"] == "'self'"
    assert home["style-src"] == "'self'"
