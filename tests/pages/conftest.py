"""Fixtures for the browser tests: Debian's chromium through Playwright on pytest-django's live server,
an axe-core accessibility check and screenshots at phone and desktop widths.

- `browser`: a fresh browser context (a person's browser) presenting an ordinary desktop Chrome.
- `page`: a page in it that fails the test on any console error, uncaught exception or CSP violation.
- `assert_accessible(page)`: axe-core's WCAG 2.1 A/AA rules; fails on a serious or critical violation.
- `screenshot(page, name)`: full-page PNGs at 390 and 1280 px under screenshots/ (ignored by git).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connections

from tests.conftest import CHROMIUM

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Headless Chromium announces itself as "HeadlessChrome", which the crawler list rightly flags as a bot;
# the scenarios here are about a person's browser, so they present an ordinary desktop Chrome.
DESKTOP_CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

# axe-core comes from npm (package.json pins it; `make test` runs `npm ci` first). A missing file fails the
# test that needs it: accessibility is never silently skipped.
AXE_JS = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# Every rule axe runs counts; none is disabled. (Add one here only with the reason beside it.)
AXE_DISABLED_RULES: dict[str, str] = {}
BLOCKING_IMPACTS = {"serious", "critical"}

SCREENSHOTS = Path(settings.BASE_DIR) / "screenshots"
WIDTHS = {"phone": 390, "desktop": 1280}


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = chromium.new_context(user_agent=DESKTOP_CHROME, viewport={"width": 1280, "height": 900})
        yield context
        # The test's ORM calls ran while Playwright's event loop was running, so Django kept their
        # connection in that context: close it here, or the test database cannot be dropped at the end.
        connections.close_all()
        context.close()
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page whose console errors, uncaught exceptions and CSP violations fail the test."""
    page = browser.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            message.type == "error" and problems.append(f"console: {message.text} ({message.location.get('url', '')})")
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"exception: {error}"))
    yield page
    assert problems == [], "the browser reported errors:\n" + "\n".join(problems)


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical WCAG A/AA violations on the page as it is now."""
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS} is missing: run `npm ci` (make test does) to install axe-core from package.json")
    # Evaluated over the DevTools protocol, so the page's CSP (no inline script) does not apply to it.
    page.evaluate(AXE_JS.read_text(encoding="utf-8") + "\n;undefined")
    rules = {rule: {"enabled": False} for rule in AXE_DISABLED_RULES}
    result = page.evaluate(
        "async ([tags, rules]) => await axe.run(document, {runOnly: {type: 'tag', values: tags}, rules})",
        [AXE_TAGS, rules],
    )
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "nodes": [node["target"] for node in violation["nodes"]],
        }
        for violation in result["violations"]
        if violation["impact"] in BLOCKING_IMPACTS
    ]


def assert_accessible(page: Any) -> None:
    """No serious or critical WCAG 2.1 A/AA violation at either width."""
    found = {}
    original = page.viewport_size
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        if violations := axe_violations(page):
            found[label] = violations
    if original:
        page.set_viewport_size(original)
    assert found == {}, f"axe-core found accessibility violations on {page.url}: {found}"


def screenshot(page: Any, name: str) -> list[Path]:
    """Full-page screenshots at phone and desktop widths, screenshots/<name>-<width>.png, for people to look at."""
    SCREENSHOTS.mkdir(exist_ok=True)
    original = page.viewport_size
    paths = []
    for width in WIDTHS.values():
        page.set_viewport_size({"width": width, "height": 900})
        path = SCREENSHOTS / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        paths.append(path)
    if original:
        page.set_viewport_size(original)
    return paths
