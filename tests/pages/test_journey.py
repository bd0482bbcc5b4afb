"""The whole journey in a real browser (Debian's chromium through Playwright): an ambassador joins and
copies their link, three friends subscribe through it, the third takes their own link from the thank-you
page, and the ambassador sees three qualified friends, the voucher unlocked and the price one step down.

The QR code of the link is decoded from a screenshot with zxing-cpp; a display name made of markup shows
as text; the language switch turns the dashboard and the program page French, prices written "19,00 €".
Console errors (CSP violations included) fail the test.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from decimal import Decimal
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.test import Client

from ambassadors.models import Ambassador
from core.actors import Actor
from rewards.models import RewardGrant, RewardTier
from rewards.services import tier_create
from tests.conftest import CHROMIUM
from tests.factories import ProgramFactory, UserFactory
from tests.pages.conftest import CHROMIUM_ARGS, DESKTOP_CHROME, assert_accessible, screenshot

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SYSTEM = Actor.system("journey")


@pytest.fixture
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        connections.close_all()  # the ORM calls ran under Playwright's loop: free the test database
        browser.close()


@pytest.fixture
def launch(db):
    """A program landing on Parrain's own page: a 20% voucher at 3 qualified friends, and a price that
    drops by 1.00 every 3 subscribers."""
    program = ProgramFactory(
        slug="launch", name="Book Launch", destination_url="", allowed_redirect_hosts=[], leaderboard_public=True
    )
    tier_create(
        program=program, actor=SYSTEM, name="Three friends", kind=RewardTier.Kind.INDIVIDUAL,
        metric=RewardTier.Metric.QUALIFIED_SIGNUPS, threshold=Decimal("3"),
        reward_type=RewardTier.RewardType.PERCENT_VOUCHER, reward_value=Decimal("20"),
    )  # fmt: skip
    tier_create(
        program=program, actor=SYSTEM, name="Price drop", kind=RewardTier.Kind.COLLECTIVE, step=3,
        drop_type=RewardTier.DropType.AMOUNT, drop_value=Decimal("1"),
    )  # fmt: skip
    return program


def signed_in_context(browser: Any, live_server: Any, user: Any) -> Any:
    """A browser context carrying a session of `user`, planted as a cookie (no log-in form to drive)."""
    client = Client()
    client.force_login(user)
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]  # fmt: skip
    )
    return context


def watch(page: Any, errors: list[str]) -> Any:
    page.on(
        "console",
        lambda message: (
            errors.append(f"{message.text} at {message.location.get('url')}")
            # The browser asks for /favicon.ico on its own; the site declares none (yet): not an error of a page.
            if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico")
            else None
        ),
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("dialog", lambda dialog: (errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    return page


def png_grayscale(png: bytes) -> tuple[bytes, int, int]:
    """The pixels of an 8-bit RGB(A) PNG as one grayscale byte each (Playwright's screenshots are such)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = data
        elif kind == b"IDAT":
            chunks.append(data)
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0) and color in (2, 6), (depth, color, interlace)
    channels = 3 if color == 2 else 4
    raw, stride = zlib.decompress(b"".join(chunks)), width * channels
    previous, gray = bytearray(stride), bytearray()
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up, up_left = previous[x], previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                line[x] = (line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 0xFF
        gray.extend(line[x] for x in range(0, stride, channels))  # red channel: the code is black on white
        previous = line
    return bytes(gray), width, height


def decode_qr(png: bytes) -> list[str]:
    import zxingcpp

    pixels, width, height = png_grayscale(png)
    return [code.text for code in zxingcpp.read_barcodes(memoryview(pixels).cast("B", (height, width)))]


def test_an_ambassador_shares_three_friends_subscribe_and_the_rewards_follow(live_server, chromium, launch):
    errors: list[str] = []
    # Given Ana, signed up with her verified address, in her browser
    ana_user = UserFactory(username="ana", email="ana@example.org")
    EmailAddress.objects.create(user=ana_user, email="ana@example.org", verified=True, primary=True)
    ana_context = signed_in_context(chromium, live_server, ana_user)
    ana_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    ana = watch(ana_context.new_page(), errors)

    # When she joins the program from its join page
    ana.goto(f"{live_server.url}/p/launch/join")
    ana.get_by_role("button", name="Join and get my link").click()
    ana.wait_for_url(f"{live_server.url}/dashboard/#program-launch")

    # Then her link is ready to copy, and the copy button puts it on the clipboard
    code = Ambassador.objects.get(program=launch, user=ana_user).code
    link = f"{live_server.url}/r/{code}"
    section = ana.locator("#program-launch")
    assert section.get_by_label("Your referral link").input_value() == link
    section.get_by_role("button", name="Copy").click()
    section.get_by_text("Copied!").wait_for()
    assert ana.evaluate("navigator.clipboard.readText()") == link

    # And the QR code on the page reads as her link
    assert decode_qr(section.locator("svg.qr").screenshot()) == [link]

    # When three friends, each in their own browser, open the link and subscribe
    for n, friend_email in enumerate(("lea@example.org", "marc@example.org", "zoe@example.org"), 1):
        friend_context = chromium.new_context(user_agent=DESKTOP_CHROME)
        friend = watch(friend_context.new_page(), errors)
        friend.goto(link)
        friend.locator("#subscribe-link").click()
        friend.get_by_label("Your e-mail").fill(friend_email)
        friend.get_by_role("button", name="Subscribe").click()
        friend.get_by_role("heading", name="Welcome aboard!").wait_for()
        if n == 3:
            # the third takes their own link from the thank-you page
            friend.get_by_role("button", name="Get my link").click()
            friend.get_by_role("heading", name="Your link is ready").wait_for()
            zoe = Ambassador.objects.get(program=launch, email="zoe@example.org")
            assert friend.get_by_label("Your referral link").input_value() == f"{live_server.url}/r/{zoe.code}"
            assert_accessible(friend)
        friend_context.close()

    # Then Ana's dashboard shows three qualified friends and the voucher unlocked
    ana.reload()
    main_link = section.locator(f'tr[data-code="{code}"] td')
    assert main_link.all_inner_texts() == ["3", "3", "3", "0"]  # clicks, signups, qualified, purchases
    voucher = RewardGrant.objects.get(ambassador__user=ana_user).voucher_code
    assert "Unlocked" in section.locator("table.rewards").inner_text()
    assert voucher in section.locator("table.rewards").inner_text()
    assert_accessible(ana)
    screenshot(ana, "dashboard")
    # And the price is one step down on the program page
    assert "19.00" in section.locator(".ladder-now").inner_text()
    program_page = watch(ana_context.new_page(), errors)
    program_page.goto(f"{live_server.url}/p/launch/")
    assert "19.00" in program_page.locator("main").inner_text()

    # When Ana names herself with markup, it shows as text, and nothing runs
    section.get_by_label("Display name").fill("<script>alert(1)</script>")
    section.get_by_role("button", name="Save the name").click()
    ana.wait_for_url(f"{live_server.url}/dashboard/#program-launch")
    assert "<script>alert(1)</script>" in ana.locator("#program-launch").inner_text()
    cache.clear()  # the program page may keep its leaderboard for a few seconds: show the new name now
    program_page.reload()
    assert "<script>alert(1)</script>" in program_page.locator("main").inner_text()

    # When she switches to French with the language switch at the foot of her dashboard
    ana.goto(f"{live_server.url}/dashboard/")
    ana.get_by_label("Language").select_option("fr")
    ana.get_by_role("button", name="Change").click()
    ana.wait_for_url(f"{live_server.url}/dashboard/")

    # Then her dashboard speaks French, and writes the price the French way
    assert ana.locator("html").get_attribute("lang") == "fr"
    assert ana.get_by_role("heading", level=1).inner_text() == "Votre tableau de bord"
    section = ana.locator("#program-launch")
    for heading in ("Vos liens", "Le prix pour tout le monde", "Vos récompenses"):
        assert section.get_by_role("heading", name=heading, exact=True).is_visible()
    assert section.get_by_label("Votre lien de parrainage").input_value() == link
    assert re.fullmatch(r"Prix actuel\s:\s19,00\s€", section.locator(".ladder-now").inner_text().strip())
    # And so does the program page, in the same browser (the choice is kept)
    program_page.goto(f"{live_server.url}/p/launch/")
    assert program_page.locator("html").get_attribute("lang") == "fr"
    assert program_page.get_by_role("heading", name="Ce que reçoivent les ambassadeurs").is_visible()
    assert program_page.get_by_role("heading", name="Prix communautaire").is_visible()
    assert program_page.get_by_role("heading", name="Meilleurs ambassadeurs").is_visible()
    assert re.fullmatch(r"19,00\s€", program_page.locator("#current-price").inner_text().strip())
    assert re.fullmatch(r"20,00\s€", program_page.locator(".ladder .price s").inner_text().strip())

    assert errors == []
    ana_context.close()
