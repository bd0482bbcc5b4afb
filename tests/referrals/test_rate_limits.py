"""Public endpoints under abuse: the form, the signup and conversion APIs, bad API keys and
log-in answer 429 with Retry-After past their limits, per IP and per key, and let the caller back in once
the window has passed. Counted in Redis (the production cache) when REDIS_URL is set."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from ambassadors.models import ApiKey
from ambassadors.services import api_key_create
from core.actors import Actor
from referrals.models import Signup
from tests.conftest import bearer
from tests.factories import UserFactory
from tests.referrals.helpers import CHROME
from tests.referrals.ratelimit_helpers import use_shared_cache

IP = "203.0.113.7"
OTHER_IP = "198.51.100.99"


@pytest.fixture(autouse=True)
def _shared_cache(settings):
    use_shared_cache(settings)
    # django-ratelimit counts over fixed windows: time stands still in each test unless it moves it.
    with time_machine.travel(timezone.now(), tick=False):
        yield


def set_throttle(settings, **rates: str) -> None:
    """DRF rates by scope, the others kept (DRF reloads its settings when REST_FRAMEWORK changes)."""
    framework = dict(settings.REST_FRAMEWORK)
    framework["DEFAULT_THROTTLE_RATES"] = {**framework["DEFAULT_THROTTLE_RATES"], **rates}
    settings.REST_FRAMEWORK = framework


def assert_429(response: Any, *, json: bool) -> int:
    assert response.status_code == 429, (response.status_code, response.content[:300])
    wait = int(response["Retry-After"])
    assert 1 <= wait <= 60
    if json:
        assert response["Content-Type"].startswith("application/json")
        assert set(response.json()) == {"detail"}
    else:
        assert response["Content-Type"].startswith("text/html")
    return wait


def new_track_key(program) -> str:
    return api_key_create(actor=Actor.system("tests"), program=program, scopes=["track"])[1]


def signup(api: APIClient, program, key: str, n: int, ip: str = IP) -> Any:
    return api.post(
        f"/api/v1/programs/{program.slug}/signups",
        {"email": f"friend{n}-{ip}@example.org"},
        format="json",
        REMOTE_ADDR=ip,
        **bearer(key),
    )


# --- The hosted subscribe form ------------------------------------------------------------------------


def post_form(program, n: int, ip: str = IP) -> Any:
    return Client(HTTP_USER_AGENT=CHROME, REMOTE_ADDR=ip).post(
        f"/p/{program.slug}/subscribe", {"email": f"reader{n}@example.org"}
    )


@pytest.mark.django_db
def test_the_subscribe_form_answers_429_past_its_limit_per_ip(program, settings):
    settings.RATE_LIMIT_SUBSCRIBE = "3/minute"
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for n in range(3):
            assert post_form(program, n).status_code == 200

        refused = post_form(program, 3)
        wait = assert_429(refused, json=False)
        assert b"Too many attempts" in refused.content
        assert not Signup.objects.filter(email="reader3@example.org").exists()
        # Another address is not held back by this one.
        assert post_form(program, 4, ip=OTHER_IP).status_code == 200

        traveller.shift(timedelta(seconds=wait + 1))
        assert post_form(program, 5).status_code == 200
    assert Signup.objects.filter(program=program).count() == 5


@pytest.mark.django_db
def test_reading_the_form_is_not_limited(program, settings):
    settings.RATE_LIMIT_SUBSCRIBE = "1/minute"
    browser = Client(HTTP_USER_AGENT=CHROME, REMOTE_ADDR=IP)
    assert [browser.get(f"/p/{program.slug}/subscribe").status_code for _ in range(3)] == [200, 200, 200]


# --- The signup and conversion APIs ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_signup_api_answers_429_past_the_rate_of_a_key(program, track_key, settings):
    set_throttle(settings, signups_key="2/minute", signups_ip="100/minute")
    api = APIClient()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        assert [signup(api, program, track_key, n).status_code for n in range(2)] == [201, 201]

        wait = assert_429(signup(api, program, track_key, 2), json=True)
        # The same key from another address: still this key's limit.
        assert_429(signup(api, program, track_key, 3, ip=OTHER_IP), json=True)
        # Another key from the same address is counted apart.
        assert signup(api, program, new_track_key(program), 4).status_code == 201

        traveller.shift(timedelta(seconds=wait + 1))
        assert signup(api, program, track_key, 5).status_code == 201
    assert Signup.objects.filter(program=program).count() == 4


@pytest.mark.django_db
def test_a_throttle_keeps_one_counter_per_window_whatever_its_rate(program, track_key, settings):
    # DRF's own throttle kept every request's time in one entry, read and written whole per request: at
    # 100,000/hour, a megabyte each time. Parrain's counts: one integer per key and window.
    set_throttle(settings, signups_key="100000/hour", signups_ip="100000/hour", api_key="100000/hour")
    api = APIClient()
    with time_machine.travel(datetime(2026, 12, 4, 10, 20, 5, tzinfo=UTC), tick=False):
        assert {signup(api, program, track_key, n).status_code for n in range(30)} == {201}
        window = int(time.time() // 3600)
    key_id = ApiKey.objects.get(program=program).pk  # the one key of the test
    assert cache.get(f"parrain:throttle:signups_key:k{key_id}:{window}") == 30
    assert cache.get(f"parrain:throttle:signups_ip:{IP}:{window}") == 30
    assert cache.get(f"parrain:throttle:api_key:{key_id}:{window}") == 30


@pytest.mark.django_db
def test_retry_after_is_the_rest_of_the_window_and_the_next_window_lets_the_caller_in(program, track_key, settings):
    set_throttle(settings, signups_key="2/minute", signups_ip="100/minute")
    api = APIClient()
    with time_machine.travel(datetime(2026, 12, 4, 10, 20, 50, tzinfo=UTC), tick=False) as traveller:
        assert [signup(api, program, track_key, n).status_code for n in range(2)] == [201, 201]
        assert assert_429(signup(api, program, track_key, 2), json=True) == 10
        traveller.shift(timedelta(seconds=9))
        assert_429(signup(api, program, track_key, 3), json=True)  # still the same minute
        traveller.shift(timedelta(seconds=1))
        assert signup(api, program, track_key, 4).status_code == 201
    assert Signup.objects.filter(program=program).count() == 3


@pytest.mark.django_db
def test_the_signup_api_answers_429_past_the_rate_of_an_address(program, track_key, settings):
    set_throttle(settings, signups_key="100/minute", signups_ip="2/minute")
    api = APIClient()
    assert signup(api, program, track_key, 0).status_code == 201
    assert signup(api, program, new_track_key(program), 1).status_code == 201

    # A third key does not buy a third request from the same address.
    assert_429(signup(api, program, new_track_key(program), 2), json=True)
    assert signup(api, program, track_key, 3, ip=OTHER_IP).status_code == 201


@pytest.mark.django_db
def test_listing_signups_is_not_counted_against_the_signup_limit(program, read_key, settings):
    set_throttle(settings, signups_key="1/minute", signups_ip="1/minute")
    api = APIClient()
    url = f"/api/v1/programs/{program.slug}/signups"
    assert [api.get(url, REMOTE_ADDR=IP, **bearer(read_key)).status_code for _ in range(3)] == [200, 200, 200]


@pytest.mark.django_db
def test_the_conversion_api_answers_429_past_its_rate(program, track_key, settings):
    set_throttle(settings, conversions_key="2/minute", conversions_ip="100/minute")
    api = APIClient()
    for n in range(3):
        signup(api, program, track_key, n)

    def convert(n: int) -> Any:
        return api.post(
            f"/api/v1/programs/{program.slug}/conversions",
            {"external_id": f"order-{n}", "email": f"friend{n}-{IP}@example.org", "amount": "10.00", "currency": "EUR"},
            format="json",
            REMOTE_ADDR=IP,
            **bearer(track_key),
        )

    with time_machine.travel(timezone.now(), tick=False) as traveller:
        assert [convert(0).status_code, convert(1).status_code] == [201, 201]
        wait = assert_429(convert(2), json=True)
        traveller.shift(timedelta(seconds=wait + 1))
        assert convert(2).status_code == 201


@pytest.mark.django_db
def test_an_address_sending_bad_keys_gets_429_then_even_a_good_key_waits(program, track_key, settings):
    settings.RATE_LIMIT_API_KEY_FAILURES = "3/minute"
    api = APIClient()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for n in range(3):
            assert signup(api, program, f"guess-{n}", n).status_code == 401

        wait = assert_429(signup(api, program, "guess-3", 3), json=True)
        # Past the limit the address is refused before any key is looked up, a good one included.
        assert_429(signup(api, program, track_key, 4), json=True)
        # Other addresses are not held back by this one.
        assert signup(api, program, track_key, 5, ip=OTHER_IP).status_code == 201

        traveller.shift(timedelta(seconds=wait + 1))
        assert signup(api, program, track_key, 6).status_code == 201


@pytest.mark.django_db
def test_malformed_authorization_headers_count_as_bad_keys(program, settings):
    settings.RATE_LIMIT_API_KEY_FAILURES = "2/minute"
    api = APIClient()
    url = f"/api/v1/programs/{program.slug}/signups"
    answers = [
        api.post(url, {"email": "a@example.org"}, format="json", REMOTE_ADDR=IP, HTTP_AUTHORIZATION="Bearer a b")
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [401, 401, 429]


# --- Log-in (allauth's own limits) ----------------------------------------------------------------------


@pytest.mark.django_db
def test_log_in_answers_429_past_its_rate_per_ip(settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": "2/m/ip"}
    UserFactory(username="reader", email="reader@example.org")
    browser = Client(HTTP_USER_AGENT=CHROME, REMOTE_ADDR=IP)

    def log_in() -> Any:
        return browser.post("/accounts/login/", {"login": "reader@example.org", "password": "wrong-password"})

    with time_machine.travel(timezone.now(), tick=False) as traveller:
        assert [log_in().status_code, log_in().status_code] == [200, 200]  # the form again, with its error
        refused = log_in()
        assert_429(refused, json=False)
        assert b"Too many attempts" in refused.content

        traveller.shift(timedelta(seconds=61))
        assert log_in().status_code == 200


def test_log_in_limits_are_configured_deliberately(settings):
    from allauth.account import app_settings

    limits = app_settings.RATE_LIMITS
    for action in ("login", "login_failed", "signup", "request_login_code", "confirm_email", "reset_password"):
        assert limits[action], action
        assert action in settings.ACCOUNT_RATE_LIMITS
