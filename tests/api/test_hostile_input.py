"""Hostile HTTP input never gives a 500 (design 4): PostgreSQL refuses NUL in text, and SQL's LIMIT
and a cursor's position refuse numbers beyond a bigint, so both are stopped at the edges with a 400 or a clamp."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from config.pagination import CursorPagination
from referrals.models import Click, Signup
from tests.conftest import bearer
from tests.referrals.helpers import row_counts

# PostgreSQL is where NUL and overflowing limits fail; elsewhere these tests still pin the answers.
pytestmark = pytest.mark.django_db


def no_raise() -> Client:
    return Client(raise_request_exception=False)


# --- NUL and other control characters in the URL -----------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/programs/a%00b/",
        "/api/v1/programs/book-launch/ambassadors/AB%00C",
        "/api/v1/programs/book-launch/conversions/o%00-1/refund",
        "/api/v1/programs/book-launch/signups/?email=a%00b",
        "/api/v1/programs/book-launch/signups/?status%00=x",
        "/api/v1/programs/book-launch/price?x=%01",
    ],
)
def test_control_character_in_an_api_url_is_a_json_400(path, ambassador, read_key):
    before = row_counts()

    response = no_raise().get(path, **bearer(read_key))

    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    assert "control character" in response.json()["detail"]
    assert row_counts() == before


@pytest.mark.parametrize("path", ["/p/x%00/", "/p/book-launch/%0d", "/p/book-launch/subscribe?click_id=%00",
                                  "/p/book-launch/?ref=%09", "/accounts/login/?next=%00"])  # fmt: skip
def test_control_character_in_a_page_url_is_a_plain_400(path, ambassador):
    before = row_counts()

    response = no_raise().get(path)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert row_counts() == before


@pytest.mark.parametrize("path", ["/r/AB%00C", "/r/A%0dB", "/r/%00", "/r/{code}?to=%00https://evil.example"])
def test_control_character_in_a_referral_link_fails_kindly(path, ambassador):
    # The redirect refuses a malformed code itself, with its friendly 404 page and no query, and ignores a
    # mangled `to`: a broken shared link should not look like a server refusing the visitor.
    response = no_raise().get(path.format(code=ambassador.code))

    if "to=" in path:
        assert response.status_code == 302
        assert "evil" not in response["Location"]
    else:
        assert response.status_code == 404
        assert b"This referral link does not work" in response.content
        assert not Click.objects.exists()


def test_control_character_in_a_post_url_is_refused_before_the_view(program, track_key):
    response = no_raise().post(
        f"/api/v1/programs/{program.slug}/conversions/o%00/refund", {}, content_type="application/json",
        **bearer(track_key),
    )  # fmt: skip

    assert response.status_code == 400


def test_ordinary_urls_pass_the_control_character_guard(client, program):
    # Percent-encoded text that is not a control character (a space, an accent) still goes through.
    assert client.get(f"/api/v1/programs/{program.slug}/price?note=caf%C3%A9%20au%20lait").status_code == 200


# --- Paging ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("limit=99999999999999999999", 200),  # cut to the maximum
        ("limit=9223372036854775808", 200),
        ("limit=", 200),  # the default
        ("limit=-1", 400),
        ("limit=0", 400),
        ("limit=-5", 400),
        ("limit=abc", 400),
        ("limit=1e9", 400),
        ("cursor=99999999999999999999", 400),
        ("cursor=", 200),  # the first page
        ("offset=99999999999999999999", 200),  # not a parameter of ours: ignored
    ],
)
@pytest.mark.parametrize("url", ["/api/v1/programs/{slug}/signups/", "/api/v1/audit-events/"])
def test_absurd_paging_values_never_give_a_500(url, query, expected, program, friend_email, read_key, auditor):
    from core.actors import Actor
    from referrals.services import signup_record

    signup_record(program=program, email=friend_email, actor=Actor.system("test"))
    client = no_raise()
    headers: dict[str, Any] = {}
    if "audit" in url:
        client.force_login(auditor)
    else:
        headers = bearer(read_key)

    response = client.get(url.format(slug=program.slug) + "?" + query, **headers)

    assert response.status_code == expected, response.content[:300]
    if expected == 200:
        assert len(response.json()["results"]) <= CursorPagination.max_page_size
    else:
        assert set(response.json()) <= {"limit", "cursor"}


def test_limit_is_capped_at_the_maximum(program, read_key, monkeypatch):
    monkeypatch.setattr(CursorPagination, "max_page_size", 2)
    from core.actors import Actor
    from referrals.services import signup_record

    for i in range(3):
        signup_record(program=program, email=f"reader{i}@example.org", actor=Actor.system("test"))

    response = no_raise().get(f"/api/v1/programs/{program.slug}/signups/?limit=1000", **bearer(read_key))

    assert response.status_code == 200
    body = response.json()
    assert len(body["results"]) == 2
    assert "cursor=" in body["next"]
    assert len(no_raise().get(body["next"], **bearer(read_key)).json()["results"]) == 1


def test_the_default_pagination_is_the_bounded_one(settings):
    assert settings.REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"] == "config.pagination.CursorPagination"
    assert 0 < CursorPagination.max_page_size <= 1000


# --- NUL inside JSON strings -------------------------------------------------------------------------

P = "/api/v1/programs/book-launch"
TIER = {"name": "Five", "kind": "individual", "metric": "qualified_signups", "threshold": "5",
        "reward_type": "custom", "reward_text": "A signed copy"}  # fmt: skip


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("post", P + "/signups", {"email": "a\u0000@x.org"}),
        ("post", P + "/signups", {"email": "a@x.org", "external_id": "a\u0000"}),
        ("post", P + "/signups", {"email": "a@x.org", "referral_code": "AB\u0000"}),
        ("post", P + "/signups", {"email": "a@x.org", "click_id": "\u0000"}),
        ("post", P + "/signups", {"email": "a@x.org", "visitor_id": "v\u0000"}),
        ("post", P + "/signups", {"email": "a@x.org", "e\u0000xtra": "key with a NUL"}),
        ("post", P + "/conversions", {"external_id": "a\u0000", "email": "a@x.org", "amount": "1", "currency": "EUR"}),
        (
            "post",
            P + "/conversions",
            {"external_id": "o", "referee_external_id": "\u0000", "amount": "1", "currency": "EUR"},
        ),
        ("post", P + "/conversions", {"external_id": "o", "email": "a@x.org", "amount": "1\u0000", "currency": "EUR"}),
        ("post", P + "/conversions/o-1/refund", {"reason": "r\u0000"}),
        ("post", P + "/ambassadors", {"email": "b@x.org", "display_name": "B\u0000"}),
        ("post", P + "/ambassadors", {"email": "b@x.org", "code": "VAN\u0000ITY"}),
        ("post", "/api/v1/programs/", {"slug": "new", "name": "x\u0000", "currency": "EUR"}),
        ("patch", P + "/", {"name": "x\u0000"}),
        ("patch", P + "/", {"allowed_redirect_hosts": ["a\u0000.example"]}),
        ("patch", P + "/", {"description": {"deep": [["\u0000"]]}}),
        ("post", P + "/tiers/", {**TIER, "name": "x\u0000"}),
        ("post", P + "/tiers/", {**TIER, "reward_text": "free\u0000"}),
        ("post", P + "/signups/1/override", {"ambassador_code": None, "reason": "r\u0000"}),
    ],
)
def test_nul_anywhere_in_a_json_body_is_a_400(method, url, body, program, ambassador, superuser_with_all_keys):
    client, headers = superuser_with_all_keys(url, method)
    before = row_counts()

    response = getattr(client, method)(url, json.dumps(body), content_type="application/json", **headers)

    assert response.status_code == 400, response.content[:300]
    assert "NUL" in response.json()["detail"]
    assert row_counts() == before


@pytest.fixture
def superuser_with_all_keys(program):
    """A caller each endpoint lets through: a key with every scope, or a superuser where keys are refused."""
    from ambassadors.services import api_key_create
    from core.actors import Actor
    from tests.factories import UserFactory

    key = api_key_create(program=program, scopes=["track", "read", "manage"], actor=Actor.system("test"))[1]
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)

    def caller(url: str, method: str) -> tuple[Client, dict[str, str]]:
        client = no_raise()
        if url in ("/api/v1/programs/",) and method == "post" or url.endswith("/override"):
            client.force_login(admin)
            return client, {}
        return client, bearer(key)

    return caller


def test_escaped_backslash_before_u0000_is_plain_text_not_a_nul(program, track_key):
    # `\\u0000` in JSON is a backslash followed by "u0000": six ordinary characters.
    body = '{"email": "friend@example.org", "external_id": "\\\\u0000"}'

    response = no_raise().post(f"{P}/signups", body, content_type="application/json", **bearer(track_key))

    assert response.status_code == 201, response.content[:300]
    assert Signup.objects.get().external_id == "\\u0000"


# --- NUL in the hosted form --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"email": "a\x00@example.org"},
        {"email": "friend@example.org", "referral_code": "AB\x00C"},
        {"email": "friend@example.org", "click_id": "\x00"},
        {"email": "friend@example.org\x00"},
    ],
)
def test_nul_in_the_subscribe_form_is_a_form_error_not_a_500(fields, program):
    response = no_raise().post(f"/p/{program.slug}/subscribe", fields)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert not Signup.objects.exists()
