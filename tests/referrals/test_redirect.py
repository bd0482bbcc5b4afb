"""`/r/<code>` (design 2.1): the click, the 302 with ref and click_id, the cookie, never an open redirect."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.test import Client, RequestFactory, override_settings

from ambassadors.models import Program
from console.selectors import ambassador_card
from referrals import client as referral_client
from referrals.models import Click
from referrals.services import link_create
from tests.factories import enroll
from tests.referrals.helpers import CHROME, browser, location_query, visit

pytestmark = pytest.mark.django_db


def referral_cookie(response, program):
    return response.cookies.get(referral_client.referral_cookie_name(program.pk))


def test_redirect_adds_ref_and_click_id_and_keeps_the_destination_query(program, ambassador):
    response, click_id = visit(browser(), ambassador.code)

    parts = urlsplit(response["Location"])
    assert (parts.scheme, parts.hostname, parts.path) == ("https", "shop.example.com", "/welcome")
    query = location_query(response)
    assert query == {"utm_source": ["parrain"], "ref": [ambassador.code], "click_id": [click_id]}
    assert Click.objects.get(pk=click_id).ambassador == ambassador
    assert response["Cache-Control"] == "no-store"


def test_redirect_replaces_a_stale_ref_and_keeps_the_fragment(program, ambassador):
    program.destination_url = "https://shop.example.com/welcome?ref=OLD&lang=fr#pricing"
    program.save()

    response, click_id = visit(browser(), ambassador.code)

    assert urlsplit(response["Location"]).fragment == "pricing"
    assert location_query(response) == {"lang": ["fr"], "ref": [ambassador.code], "click_id": [click_id]}


def test_program_without_destination_lands_on_its_hosted_page(program, ambassador):
    program.destination_url = ""
    program.save()

    response, _ = visit(browser(), ambassador.code)

    assert urlsplit(response["Location"]).path == f"/p/{program.slug}/"


def test_click_keeps_a_keyed_hash_of_the_ip_and_never_the_address(program, ambassador):
    raw_ip = "203.0.113.77"
    _, click_id = visit(
        Client(HTTP_USER_AGENT=CHROME, REMOTE_ADDR=raw_ip, HTTP_REFERER="https://news.example.net/issue/12?x=1"),
        ambassador.code,
    )
    _, again = visit(Client(HTTP_USER_AGENT=CHROME, REMOTE_ADDR=raw_ip), ambassador.code)
    _, elsewhere = visit(Client(HTTP_USER_AGENT=CHROME, REMOTE_ADDR="203.0.113.78"), ambassador.code)

    row = Click.objects.filter(pk=click_id).values().get()
    assert all(raw_ip not in str(value) for value in row.values()), row
    assert len(row["ip_hash"]) == 64
    assert row["ip_hash"] == Click.objects.get(pk=again).ip_hash, "the same address must hash the same"
    assert row["ip_hash"] != Click.objects.get(pk=elsewhere).ip_hash
    assert row["user_agent_family"] == "Chrome"
    assert row["referer_host"] == "news.example.net"
    assert row["is_bot"] is False
    assert row["visitor_id"]


def test_cookie_is_signed_httponly_lax_and_lives_as_long_as_the_window(program, ambassador):
    program.attribution_window_days = 7
    program.save()

    response, click_id = visit(browser(), ambassador.code)

    cookie = referral_cookie(response, program)
    assert cookie is not None
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 7 * 86400
    assert cookie.value != click_id, "the cookie is signed, not the bare id"
    request = RequestFactory().get("/", HTTP_COOKIE=f"{cookie.key}={cookie.value}")
    assert referral_client.referral_click_id(request, program.pk, 7) == click_id
    forged = RequestFactory().get("/", HTTP_COOKIE=f"{cookie.key}={click_id}")
    assert referral_client.referral_click_id(forged, program.pk, 7) is None


@override_settings(REFERRAL_COOKIE_SECURE=True)
def test_cookie_is_secure_outside_development(program, ambassador):
    response, _ = visit(browser(), ambassador.code)

    assert referral_cookie(response, program)["secure"] is True


@pytest.mark.parametrize(
    ("to", "expected_prefix"),
    [
        ("https://blog.example.com/post?x=1", "https://blog.example.com/post?x=1&ref="),
        ("https://shop.example.com/other", "https://shop.example.com/other?ref="),
        ("https://BLOG.example.com/p", "https://BLOG.example.com/p?ref="),
    ],
)
def test_to_is_followed_toward_an_allowed_host(program, ambassador, to, expected_prefix):
    response, _ = visit(browser(), ambassador.code, to=to)

    assert response["Location"].startswith(expected_prefix)


# Raw query strings, exactly as they travel in the URL: encoded, double-encoded, with control characters.
OPEN_REDIRECT_ATTEMPTS = [
    "https://evil.example",
    "//evil.example",
    "/%5Cevil.example",
    "%5C%5Cevil.example",
    "https:evil.example",
    "https:/evil.example",
    "http://127.0.0.1@evil.example/",
    "https://shop.example.com@evil.example/",
    "https://shop.example.com:443@evil.example/",
    "https://evil.example%5C@shop.example.com/",
    "https://evil.example%23@shop.example.com/",
    "https://evil.example%3F@shop.example.com/",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java%09script:alert(1)",
    "data:text/html,%3Cscript%3Ealert(1)%3C/script%3E",
    "https://shop.example.com.evil.example/",
    "https://shop.example.com%E3%80%82evil.example/",
    "https://%65vil.example/",
    "HTTPS://EVIL.EXAMPLE",
    "https%3A%2F%2Fevil.example",
    "https%253A%252F%252Fevil.example",
    "%2F%2Fevil.example",
    "%2F%5Cevil.example",
    "%20https://evil.example",
    "%09//evil.example",
    "%0D%0A//evil.example",
    "https://evil.example%0A",
    "%00https://evil.example",
    "https://shop.example.com%00.evil.example/",
    "%E2%80%8Bhttps://evil.example",
    "ftp://shop.example.com/",
    "https://shop.example.com:99999/",
    "https://[::1",
]


@pytest.mark.parametrize("raw_to", OPEN_REDIRECT_ATTEMPTS)
def test_to_toward_any_other_host_lands_on_the_program_destination(program, ambassador, raw_to):
    response = browser().get(f"/r/{ambassador.code}?to={raw_to}")

    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("https://shop.example.com/welcome?"), location
    assert "evil" not in location.lower()
    assert urlsplit(location).hostname == "shop.example.com"


@pytest.mark.parametrize(
    "to", ["/\\evil.example", "\\\\evil.example", " https://evil.example", "https://evil.example\t"]
)
def test_unencoded_backslash_and_whitespace_tricks_land_on_the_destination(program, ambassador, to):
    response = browser().get(f"/r/{ambassador.code}", {"to": to})

    assert response["Location"].startswith("https://shop.example.com/welcome?")


def assert_friendly_not_found(response):
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b"<html" in response.content.lower()


@pytest.mark.parametrize(
    "path",
    [
        "/r/NOSUCHCODE",
        "/r/%00",
        "/r/%00ABC",
        "/r/" + "A" * 65,
        "/r/" + "B" * 5000,
        "/r/ab%20cd",
        "/r/%E2%80%8BABC",
        "/r/..%2F..%2Fadmin",
        "/r/%2F",
        "/r/-",
    ],
)
def test_unknown_or_malformed_code_is_a_friendly_404(program, ambassador, path):
    response = browser().get(path)

    assert_friendly_not_found(response)
    assert not Click.objects.exists()


@pytest.mark.parametrize("status", [Program.Status.PAUSED, Program.Status.CLOSED])
def test_paused_or_closed_program_is_a_friendly_404(program, ambassador, status):
    program.status = status
    program.save()

    response = browser().get(f"/r/{ambassador.code}")

    assert_friendly_not_found(response)
    assert b"does not work" in response.content
    assert not Click.objects.exists()
    assert referral_cookie(response, program) is None


def test_inactive_ambassador_link_is_a_friendly_404(program, ambassador):
    ambassador.is_active = False
    ambassador.save()

    response = browser().get(f"/r/{ambassador.code}")

    assert_friendly_not_found(response)
    assert not Click.objects.exists()


BOTS = {
    "slack": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "facebook": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "twitter": "Twitterbot/1.0",
    "whatsapp": "WhatsApp/2.23.20.0 A",
    "google": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "empty": "",
}


@pytest.mark.parametrize("user_agent", BOTS.values(), ids=BOTS.keys())
def test_bots_are_recorded_apart_never_counted_and_get_no_cookie(program, ambassador, user_agent):
    response = Client(HTTP_USER_AGENT=user_agent).get(f"/r/{ambassador.code}")

    assert response.status_code == 302
    click = Click.objects.get()
    assert click.is_bot is True
    assert referral_cookie(response, program) is None
    assert ambassador_card(ambassador).stats.clicks == 0


def test_head_request_is_a_bot_click_with_no_cookie(program, ambassador):
    response = browser().head(f"/r/{ambassador.code}")

    assert response.status_code == 302
    assert Click.objects.get().is_bot is True
    assert referral_cookie(response, program) is None
    assert ambassador_card(ambassador).stats.clicks == 0


def test_people_count_in_stats_and_bots_do_not(program, ambassador):
    visit(browser(), ambassador.code)
    visit(browser("198.51.100.21"), ambassador.code)
    Client(HTTP_USER_AGENT=BOTS["slack"]).get(f"/r/{ambassador.code}")
    browser().head(f"/r/{ambassador.code}")

    assert Click.objects.count() == 4
    assert ambassador_card(ambassador).stats.clicks == 2


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_redirect_answers_only_get_and_head(program, ambassador, method):
    response = getattr(browser(), method)(f"/r/{ambassador.code}")

    assert response.status_code == 405
    assert not Click.objects.exists()


def test_codes_are_case_insensitive(program, ambassador):
    response, click_id = visit(browser(), ambassador.code.lower())

    assert location_query(response)["ref"] == [ambassador.code]
    assert Click.objects.get(pk=click_id).ambassador == ambassador


@pytest.mark.parametrize("typed", ["SETH0", "SETHO", "setho", "Seth0"])
def test_look_alike_letters_resolve_to_the_same_code(program, typed):
    seth = enroll(program, "seth@example.com", code="SETH0")

    response, click_id = visit(browser(), typed)

    assert location_query(response)["ref"] == ["SETH0"]
    assert Click.objects.get(pk=click_id).ambassador == seth


def test_channel_link_resolves_to_its_ambassador_and_records_the_link(program, ambassador):
    link = link_create(ambassador=ambassador, channel="Newsletter")
    assert link_create(ambassador=ambassador, channel="newsletter") == link

    response, click_id = visit(browser(), link.code.lower())

    click = Click.objects.get(pk=click_id)
    assert (click.ambassador, click.link) == (ambassador, link)
    assert location_query(response)["ref"] == [ambassador.code]
    assert referral_cookie(response, program) is not None
