"""Templates keep to the Content-Security-Policy: no inline handlers or styles, no htmx `hx-on` (it needs
eval), no script or style from another host; inline scripts carry the nonce. The policy header itself is
pinned, and the front-end files come from our static files, vendored from npm without registry URLs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

BASE = Path(settings.BASE_DIR)
TEMPLATE_DIRS = [BASE / "templates", *sorted(BASE.glob("*/templates"))]

TAG = re.compile(r"<[a-zA-Z][^>]*>", re.DOTALL)
RULES = {
    "inline event handler (on*=)": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "inline style (style=)": re.compile(r"\sstyle\s*=", re.IGNORECASE),
    "htmx hx-on (needs eval)": re.compile(r"\s(data-)?hx-on", re.IGNORECASE),
    "file from another host (src/href http: or //)": re.compile(
        r"\s(src|href)\s*=\s*[\"']?(https?:)?//", re.IGNORECASE
    ),
}
ELEMENT_RULES = {
    "<style> element": re.compile(r"<style[\s>]", re.IGNORECASE),
    "inline <script> without the nonce": re.compile(
        r"<script(?![^>]*\ssrc=)(?![^>]*\snonce=)(?![^>]*type=[\"']application/(ld\+)?json)[^>]*>", re.IGNORECASE
    ),
}
# Links to other sites are fine in <a href>; only what the page loads (script, link, img, iframe...) counts.
LOADING_TAGS = re.compile(r"<(script|link|img|iframe|source|video|audio|embed|object)\b", re.IGNORECASE)


def problems_in(text: str) -> list[str]:
    found = []
    for tag in TAG.findall(text):
        for name, rule in RULES.items():
            if name.startswith("file from") and not LOADING_TAGS.match(tag):
                continue
            if rule.search(tag):
                found.append(f"{name}: {tag[:120]}")
    for name, rule in ELEMENT_RULES.items():
        found += [f"{name}: {match.group(0)[:120]}" for match in rule.finditer(text)]
    return found


def template_files() -> list[Path]:
    return [path for directory in TEMPLATE_DIRS for path in sorted(directory.rglob("*.html"))]


@pytest.mark.parametrize(
    "snippet",
    [
        '<button onclick="go()">',
        '<p style="color: red">',
        '<div hx-on:click="x">',
        '<script src="https://unpkg.com/htmx.org"></script>',
        '<link rel="stylesheet" href="//cdn.example.com/a.css">',
        "<script>alert(1)</script>",
        "<style>p { color: red }</style>",
    ],
)
def test_the_checker_catches_what_the_policy_forbids(snippet):
    assert problems_in(snippet) != []


@pytest.mark.parametrize(
    "snippet",
    [
        '<script src="/static/vendor/htmx-2.0.11/htmx.min.js" defer></script>',
        '<script nonce="{{ request.csp_nonce }}">start()</script>',
        '<script id="data" type="application/json">{}</script>',
        '<a href="https://example.org/">elsewhere</a>',
        '<button type="submit" class="once">',
    ],
)
def test_the_checker_lets_allowed_markup_through(snippet):
    assert problems_in(snippet) == []


def test_no_template_breaks_the_content_security_policy():
    files = template_files()
    assert files, "no template found"
    found = {str(path.relative_to(BASE)): problems for path in files if (problems := problems_in(path.read_text()))}
    assert found == {}


@pytest.mark.django_db
def test_pages_answer_with_the_strict_content_security_policy():
    response = Client().get("/")

    policy = dict(
        directive.strip().split(" ", 1) for directive in response.headers["Content-Security-Policy"].split(";")
    )
    nonce = re.fullmatch(r"'self' 'nonce-([A-Za-z0-9+/=_-]+)'", policy["script-src"])
    assert nonce, policy["script-src"]
    assert policy["style-src"] == "'self'"
    assert policy["default-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]


@pytest.mark.django_db
def test_each_page_gets_its_own_nonce_and_htmx_from_our_static_files():
    first, second = Client().get("/"), Client().get("/")
    nonce = re.compile(r"'nonce-([^']+)'")

    assert nonce.search(first.headers["Content-Security-Policy"]).group(1) != nonce.search(
        second.headers["Content-Security-Policy"]
    ).group(1)
    html = first.content.decode()
    version = json.loads((BASE / "package.json").read_text())["devDependencies"]["htmx.org"]
    assert f'src="/static/vendor/htmx-{version}/htmx.min.js"' in html
    assert '"allowEval": false' in html and '"includeIndicatorStyles": false' in html
    assert 'hx-headers=\'{"X-CSRFToken": "' in html


def test_vendored_files_match_the_pinned_versions():
    pins = json.loads((BASE / "package.json").read_text())["devDependencies"]

    assert (BASE / f"static/vendor/htmx-{pins['htmx.org']}/htmx.min.js").is_file()
    assert (BASE / f"static/vendor/chart.js-{pins['chart.js']}/chart.umd.min.js").is_file()


def test_the_lockfile_names_no_registry():
    lock = json.loads((BASE / "package-lock.json").read_text())

    assert all("resolved" not in package for package in lock["packages"].values())
    assert "://" not in (BASE / "package-lock.json").read_text()
    assert {name for name in lock["packages"] if name} >= {
        "node_modules/htmx.org",
        "node_modules/chart.js",
        "node_modules/axe-core",
    }
