"""The staff console in a real browser: a marketer creates a program, configures a collective tier, sees the
preview ladder (drawn by htmx, saving nothing), then saves it; and every page of programs, tiers and contests
passes axe-core at phone and desktop widths, with no console error or CSP violation (the `page` fixture).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from ambassadors.models import Program
from core import clock
from core.actors import Actor
from rewards.models import RewardTier
from rewards.services import contest_create, tier_create
from tests.factories import ProgramFactory, enroll, staff_user
from tests.pages.conftest import assert_accessible, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SYSTEM = Actor.system("staff-console")


def sign_in(browser: Any, live_server: Any, user: Any) -> None:
    """Plant a session of `user` in the browser (no log-in form to drive)."""
    client = Client()
    client.force_login(user)
    browser.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )


def test_a_marketer_creates_a_program_with_a_collective_tier_and_sees_the_ladder_before_saving(
    live_server, browser, page
):
    # Given a marketer in the staff console
    sign_in(browser, live_server, staff_user("marketer", group="marketing"))
    page.goto(f"{live_server.url}/staff/")
    assert_accessible(page)

    # When they create a program with a base price of 20.00 and a floor of 10.00
    page.get_by_role("link", name="New program").click()
    page.get_by_role("heading", name="New program", level=1).wait_for()
    page.get_by_label("Name:", exact=True).fill("Spring Box")
    page.get_by_label("Slug:").fill("spring-box")
    page.get_by_label("Base price:").fill("20.00")
    page.get_by_label("Floor price:").fill("10.00")
    assert_accessible(page)
    page.get_by_role("button", name="Create the program").click()

    # Then they land on its page
    page.get_by_role("heading", name="Spring Box", level=1).wait_for()
    assert page.get_by_role("status").inner_text().strip() == "The program Spring Box is created."
    assert_accessible(page)
    screenshot(page, "staff-program")

    # When they configure a ladder dropping 15% every 5 subscribers and press Preview
    page.get_by_role("link", name="New tier").click()
    page.get_by_label("Name:", exact=True).fill("Cheaper together")
    page.get_by_label("Kind:").select_option("collective")
    assert not page.get_by_label("Threshold:").is_visible()  # the individual tier's settings step aside
    page.get_by_label("Step (subscribers):").fill("5")
    page.get_by_label("Drop in:").select_option("percent")
    page.get_by_label("Drop:", exact=True).fill("15")
    url_before = page.url
    page.get_by_role("button", name="Preview").click()

    # Then the ladder is drawn step by step down to the floor, in place (htmx), and nothing is saved
    table = page.get_by_role("table", name="The price ladder, step by step")
    table.wait_for()
    assert page.url == url_before
    prices = [cell.strip() for cell in table.locator("tbody tr td:nth-child(3)").all_inner_texts()]
    assert [p.split()[0] for p in prices] == ["€20.00", "€17.00", "€14.00", "€11.00", "€10.00"]
    subscribers = table.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert subscribers == ["0", "5", "10", "15", "20"]
    assert "after 4 drops, at 20 subscribers" in page.locator("#ladder-summary").inner_text()
    assert page.locator(".ladder-bars li").count() == 5
    assert not RewardTier.objects.exists()
    assert_accessible(page)
    screenshot(page, "staff-tier-preview")

    # When they save it
    page.get_by_role("button", name="Create the tier").click()

    # Then the program lists the ladder
    page.get_by_role("heading", name="Spring Box", level=1).wait_for()
    assert page.get_by_role("link", name="Cheaper together").is_visible()
    tier = RewardTier.objects.get(program__slug="spring-box")
    assert (tier.kind, tier.step, tier.drop_type, tier.drop_value) == ("collective", 5, "percent", Decimal("15"))


def test_an_invalid_tier_is_explained_in_the_preview(live_server, browser, page):
    ProgramFactory(slug="launch", name="Book Launch")
    sign_in(browser, live_server, staff_user("marketer", group="marketing"))
    page.goto(f"{live_server.url}/staff/p/launch/tiers/new")

    page.get_by_label("Name:", exact=True).fill("Nothing")
    page.get_by_label("Threshold:").fill("0")
    page.get_by_label("Reward:", exact=True).select_option("custom")
    page.get_by_label("Reward description:").fill("A mug")
    page.get_by_role("button", name="Preview").click()

    alert = page.locator("#tier-preview [role=alert]")
    alert.wait_for()
    assert "The threshold must be above 0." in alert.inner_text()
    assert_accessible(page)


@pytest.fixture
def launch(db) -> Program:
    """A program with ambassadors, an individual tier, a ladder and a running contest."""
    program = ProgramFactory(slug="launch", name="Book Launch")
    for n in range(3):
        enroll(program, f"amb{n}@example.com", display_name=f"Ambassador {n}")
    tier_create(
        program=program, actor=SYSTEM, name="Three friends", kind="individual", metric="qualified_signups",
        threshold=Decimal("3"), reward_type="percent_voucher", reward_value=Decimal("20"),
    )  # fmt: skip
    tier_create(
        program=program, actor=SYSTEM, name="Price drop", kind="collective", step=3, drop_type="amount",
        drop_value=Decimal("2.50"),
    )  # fmt: skip
    contest_create(
        program=program, actor=SYSTEM, name="Monthly prize", prize_text="Strawberries",
        starts_at=clock.now() - timedelta(days=1), ends_at=clock.now() + timedelta(days=20),
    )  # fmt: skip
    return program


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_staff_pages_are_accessible(live_server, browser, page, launch, language):
    browser.set_extra_http_headers({"Accept-Language": f"{language};q=1.0"})
    sign_in(browser, live_server, staff_user("marketer", group="marketing"))
    individual = RewardTier.objects.get(kind="individual")
    collective = RewardTier.objects.get(kind="collective")
    contest = launch.contests.get()
    pages = {
        "staff-programs": "/staff/",
        "staff-program-new": "/staff/programs/new",
        "staff-program": "/staff/p/launch/",
        "staff-tier-new": "/staff/p/launch/tiers/new",
        "staff-tier-individual": f"/staff/p/launch/tiers/{individual.pk}/",
        "staff-tier-collective": f"/staff/p/launch/tiers/{collective.pk}/",
        "staff-contest-new": "/staff/p/launch/contests/new",
        "staff-contest": f"/staff/p/launch/contests/{contest.pk}/",
    }

    for name, path in pages.items():
        page.goto(f"{live_server.url}{path}")
        assert page.locator("html").get_attribute("lang") == language
        assert page.locator("h1").count() == 1, name
        assert_accessible(page)
        if language == "en":
            screenshot(page, name)
