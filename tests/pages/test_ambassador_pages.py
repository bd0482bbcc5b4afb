"""Every page of the ambassador's home in a real browser, in English and in French: axe-core finds
no serious or critical WCAG 2.1 A/AA violation at phone (390 px) or desktop (1280 px) width, no page logs a
console error, a CSP violation or answers an error status; and the dashboard, the program page and the
widget are screenshotted at both widths (screenshots/, ignored by git).

One chromium for the module; each language gets its own scene and a browser context per person: a visitor
who subscribes, takes their own link and unsubscribes; Ana, an ambassador with channel links, referrals, a
reward and a running contest; Carl, signed in, who has not joined yet.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import connections
from django.test import Client

from ambassadors.models import Program
from core import clock
from core.actors import Actor
from core.notifications import PRICE_DROPPED, unsubscribe_token
from referrals.services import link_create, signup_record
from rewards.models import RewardGrant, RewardTier
from rewards.services import contest_create, tier_create
from tests.conftest import CHROMIUM
from tests.factories import ProgramFactory, UserFactory, enroll
from tests.pages.conftest import CHROMIUM_ARGS, DESKTOP_CHROME, assert_accessible, screenshot
from tests.referrals.helpers import browser as referral_browser
from tests.referrals.helpers import visit

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SYSTEM = Actor.system("accessibility")

# Each page's one <h1>, per language: proof that the page was rendered in the language under test.
HEADINGS = {
    "en": {
        "program": "Book Launch",
        "widget": "Book Launch",
        "subscribe": "Subscribe to Book Launch",
        "subscribed": "Welcome aboard!",
        "share": "Your link is ready",
        "unsubscribe": "Unsubscribe",
        "unsubscribed": "You are unsubscribed",
        "login": "Sign In",
        "signup": "Sign Up",
        "login-by-code": "Send me a sign-in code",
        "dashboard": "Your dashboard",
        "join": "Become an ambassador of Book Launch",
    },
    "fr": {
        "program": "Book Launch",
        "widget": "Book Launch",
        "subscribe": "Inscrivez-vous à Book Launch",
        "subscribed": "Bienvenue à bord !",
        "share": "Votre lien est prêt",
        "unsubscribe": "Se désinscrire",
        "unsubscribed": "Vous êtes désinscrit",
        "login": "Connexion",
        "signup": "Création de compte",
        "login-by-code": "Envoyez-moi un code de connexion",
        "dashboard": "Votre tableau de bord",
        "join": "Devenez ambassadeur de Book Launch",
    },
}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One browser for the module's tests: each test opens its own contexts (people) in it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _free_the_database(transactional_db: Any) -> Iterator[None]:
    yield
    # The test's ORM calls ran under Playwright's event loop: close their connections, or the test database
    # can be neither flushed nor dropped.
    connections.close_all()


def scene() -> dict[str, Any]:
    """Book Launch with a price ladder, a voucher at 2 qualified friends, a public leaderboard and a running
    contest; Ana, its ambassador, with two channel links, three referrals (one held) and the voucher."""
    program = ProgramFactory(
        slug="launch", name="Book Launch", destination_url="", allowed_redirect_hosts=[], leaderboard_public=True
    )
    tier_create(
        program=program, actor=SYSTEM, name="Two friends", kind=RewardTier.Kind.INDIVIDUAL,
        metric=RewardTier.Metric.QUALIFIED_SIGNUPS, threshold=Decimal("2"),
        reward_type=RewardTier.RewardType.PERCENT_VOUCHER, reward_value=Decimal("20"),
        referee_reward_type=RewardTier.RewardType.PERCENT_VOUCHER, referee_reward_value=Decimal("5"),
    )  # fmt: skip
    tier_create(
        program=program, actor=SYSTEM, name="Price drop", kind=RewardTier.Kind.COLLECTIVE, step=2,
        drop_type=RewardTier.DropType.AMOUNT, drop_value=Decimal("1"),
    )  # fmt: skip
    contest_create(
        program=program, actor=SYSTEM, name="December prize", prize_text="A signed first edition",
        starts_at=clock.now() - timedelta(days=1), ends_at=clock.now() + timedelta(days=20), winners_count=2,
    )  # fmt: skip
    ana_user = UserFactory(username="ana", email="ana@example.org")
    EmailAddress.objects.create(user=ana_user, email="ana@example.org", verified=True, primary=True)
    ana = enroll(program, "ana@example.org", user=ana_user, display_name="Ana")
    newsletter = link_create(ambassador=ana, channel="newsletter")
    link_create(ambassador=ana, channel="instagram")
    for n, email in enumerate(("lea@example.org", "marc@example.org")):
        _, click_id = visit(referral_browser(f"198.51.100.{n + 1}"), newsletter.code)
        signup_record(program=program, email=email, cookie_click_id=click_id, actor=SYSTEM)
    signup_record(program=program, email="held@mailinator.com", referral_code=ana.code, actor=SYSTEM)
    assert RewardGrant.objects.filter(ambassador=ana).exists(), "the scene needs a reward on the dashboard"
    carl = UserFactory(username="carl", email="carl@example.org")
    EmailAddress.objects.create(user=carl, email="carl@example.org", verified=True, primary=True)
    return {"program": program, "ana": ana_user, "carl": carl}


def person(chromium: Any, live_server: Any, language: str, errors: list[str], user: Any = None) -> Any:
    """A page in a new browser context speaking `language`, signed in as `user` (a planted session) if given,
    that records console errors, uncaught exceptions and error statuses in `errors`."""
    context = chromium.new_context(
        user_agent=DESKTOP_CHROME,
        viewport={"width": 1280, "height": 900},
        extra_http_headers={"Accept-Language": f"{language};q=1.0"},
    )
    if user is not None:
        client = Client()
        client.force_login(user)
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])
    page = context.new_page()
    page.on(
        "console",
        lambda m: (
            errors.append(f"console: {m.text} ({m.location.get('url')}, on {page.url})") if m.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: errors.append(f"exception: {error}"))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return page


def check(page: Any, language: str, name: str) -> None:
    """The page is in `language`, has its one <h1>, and axe finds nothing serious at either width."""
    assert page.locator("html").get_attribute("lang") == language, f"{name} is not in {language}"
    assert page.locator("h1").count() == 1, f"{name} has not exactly one <h1>"
    assert " ".join(page.locator("h1").inner_text().split()) == HEADINGS[language][name]  # folds no-break spaces
    assert_accessible(page)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_every_page_of_the_ambassadors_home_is_accessible(live_server, chromium, language):
    things = scene()
    program: Program = things["program"]
    base = f"{live_server.url}/p/{program.slug}"
    errors: list[str] = []

    # A visitor: the program page, the widget, the hosted form, its thank-you, "Share it too", unsubscribe.
    visitor = person(chromium, live_server, language, errors)
    visitor.goto(f"{base}/")
    assert visitor.locator("table.contest-ranking").is_visible()  # the running contest is on the page
    check(visitor, language, "program")
    screenshot(visitor, f"program-page-{language}")
    visitor.goto(f"{base}/widget")
    check(visitor, language, "widget")
    screenshot(visitor, f"widget-{language}")
    visitor.goto(f"{base}/subscribe")
    check(visitor, language, "subscribe")
    visitor.locator("input[type=email]").fill(f"zoe-{language}@example.org")
    visitor.locator("main form button[type=submit]").click()
    visitor.locator("#subscribed").wait_for()
    check(visitor, language, "subscribed")
    visitor.locator("#share-it-too").click()
    visitor.locator("#shared").wait_for()
    check(visitor, language, "share")
    token = unsubscribe_token(recipient="ana@example.org", program_id=program.pk, kind=PRICE_DROPPED)
    visitor.goto(f"{live_server.url}/u/{token}")
    check(visitor, language, "unsubscribe")
    visitor.locator("#unsubscribe-confirm").click()
    visitor.locator("h1").filter(has_text=HEADINGS[language]["unsubscribed"]).wait_for()
    check(visitor, language, "unsubscribed")
    visitor.context.close()

    # Somebody who is not signed in yet: log in, sign up, log in by a code.
    stranger = person(chromium, live_server, language, errors)
    for name, path in (("login", "/accounts/login/"), ("signup", "/accounts/signup/"),
                       ("login-by-code", "/accounts/login/code/")):  # fmt: skip
        stranger.goto(f"{live_server.url}{path}")
        check(stranger, language, name)
    stranger.context.close()

    # Ana's dashboard: links, referrals (one held for review), her voucher and the running contest.
    ana = person(chromium, live_server, language, errors, user=things["ana"])
    ana.goto(f"{live_server.url}/dashboard/")
    section = ana.locator(f"#program-{program.slug}")
    assert section.locator("table.links tbody tr").count() == 3
    assert section.locator("table.referrals tbody tr").count() == 3
    assert section.locator("table.rewards tbody tr").count() == 1
    assert section.locator("tr.contest-mine").count() == 1
    check(ana, language, "dashboard")
    screenshot(ana, f"dashboard-{language}")
    ana.context.close()

    # Carl, signed in, confirms he wants to join.
    carl = person(chromium, live_server, language, errors, user=things["carl"])
    carl.goto(f"{base}/join")
    check(carl, language, "join")
    carl.context.close()

    assert errors == []
