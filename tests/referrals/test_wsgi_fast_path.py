"""The production WSGI handler answers live referral links without the middleware stack, and hands
everything else to the full stack. These tests call `config.wsgi.application` itself, as gunicorn does."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import RequestFactory, override_settings

from ambassadors.models import Program
from referrals.models import Click
from tests.referrals.helpers import redirect_queries, server_errors

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def call(path: str, method: str = "get", **extra: Any) -> tuple[int, dict[str, list[str]], bytes]:
    from config.wsgi import ParrainWSGIHandler

    # A handler per call, as a fresh gunicorn worker would build it, so overridden settings apply.
    application = ParrainWSGIHandler()
    environ = getattr(RequestFactory(), method)(path, HTTP_USER_AGENT=BROWSER, **extra).environ
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"] = int(status.split()[0])
        answer["headers"] = {}
        for name, value in headers:
            answer["headers"].setdefault(name.lower(), []).append(value)

    result = application(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        result.close()
    return answer["status"], answer["headers"], body


@pytest.mark.django_db(transaction=True)
def test_live_link_is_answered_by_the_fast_path_with_click_and_cookies(ambassador, django_assert_num_queries):
    # The live link by code and the INSERT of the click (one statement on PostgreSQL). No session or user.
    with django_assert_num_queries(redirect_queries()):
        status, headers, _ = call(f"/r/{ambassador.code.lower()}?to=https://blog.example.com/post")

    assert status == 302
    location = urlsplit(headers["location"][0])
    assert location.netloc == "blog.example.com"
    click = Click.objects.get(ambassador=ambassador)
    assert parse_qs(location.query) == {"ref": [ambassador.code], "click_id": [str(click.pk)]}
    cookies = SimpleCookie()
    for raw in headers["set-cookie"]:
        cookies.load(raw)
    referral = cookies[f"prn_ref_{ambassador.program_id}"]
    assert referral["httponly"] and referral["samesite"] == "Lax"
    assert headers["x-content-type-options"] == ["nosniff"]
    assert not click.is_bot


@pytest.mark.django_db(transaction=True)
def test_unknown_link_falls_back_to_the_friendly_404_page(program):
    status, headers, body = call("/r/NOSUCHCODE")

    assert status == 404
    assert b"This referral link does not work" in body
    assert not Click.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_paused_program_falls_back_to_404_and_records_nothing(ambassador):
    Program.objects.filter(pk=ambassador.program_id).update(status=Program.Status.PAUSED)

    status, _, _ = call(f"/r/{ambassador.code}")

    assert status == 404
    assert not Click.objects.exists()


@pytest.mark.django_db(transaction=True)
@override_settings(SECURE_SSL_REDIRECT=True)
def test_plain_http_goes_through_the_full_stack_and_is_sent_to_https(ambassador):
    status, headers, _ = call(f"/r/{ambassador.code}")

    assert status == 301
    assert headers["location"][0].startswith("https://")
    assert not Click.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_host_outside_allowed_hosts_is_refused_not_redirected(ambassador):
    status, _, _ = call(f"/r/{ambassador.code}", HTTP_HOST="evil.example")

    assert status == 400
    assert not Click.objects.exists()


@pytest.fixture
def database_gone(monkeypatch):
    """The click's INSERT fails as it does when the database goes away mid-request."""
    from django.db import OperationalError

    calls: list[str] = []

    def refuse(**kwargs: Any) -> None:
        calls.append(kwargs["code"])
        raise OperationalError("connection to server was lost")

    monkeypatch.setattr("referrals.views.click_record", refuse)
    return calls


@pytest.mark.django_db(transaction=True)
def test_fast_path_failure_gets_djangos_500_handling(ambassador, database_gone, caplog):
    with server_errors(caplog) as errors:
        status, headers, body = call(f"/r/{ambassador.code}")

    assert status == 500
    assert b"Server Error (500)" in body and headers["content-type"][0].startswith("text/html")
    assert headers["x-content-type-options"] == ["nosniff"]
    assert errors.signalled == [f"/r/{ambassador.code}"]
    assert len(errors.logged) == 1 and errors.logged[0].exc_info[0].__name__ == "OperationalError"
    # The view ran once: the failure is not retried through the full stack (a click could count twice).
    assert database_gone == [ambassador.code]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/r/AB%00C", "/r/AB%0AC", "/r/%00"])
def test_control_characters_in_the_code_get_the_friendly_404_not_a_500(path, ambassador):
    status, headers, body = call(path)

    assert status == 404
    assert b"This referral link does not work" in body
    assert not Click.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_control_characters_in_to_still_land_on_the_destination(ambassador):
    # As through the full stack (test_redirect.py): a mangled `to` is ignored, the shared link still works.
    status, headers, _ = call(f"/r/{ambassador.code}?to=%00https://evil.example")

    assert status == 302
    assert headers["location"][0].startswith("https://shop.example.com/welcome?")


@pytest.mark.django_db(transaction=True)
def test_the_fast_paths_redirects_are_in_the_request_metrics_under_the_views_name(ambassador):
    from prometheus_client import REGISTRY

    labels = {"view": "referral-redirect", "method": "GET"}

    def sample(name: str, **extra: str) -> float:
        return REGISTRY.get_sample_value(name, {**labels, **extra}) or 0.0

    requests = ("django_http_requests_total_by_view_transport_method_total", {"transport": "http"})
    answers = ("django_http_responses_total_by_status_view_method_total", {"status": "302"})
    latency = ("django_http_requests_latency_seconds_by_view_method_count", {})
    before = [sample(name, **extra) for name, extra in (requests, answers, latency)]

    status, _, _ = call(f"/r/{ambassador.code}")

    assert status == 302
    assert [sample(name, **extra) for name, extra in (requests, answers, latency)] == [n + 1 for n in before]
