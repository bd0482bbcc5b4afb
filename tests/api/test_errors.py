"""Every error under /api/ is JSON of one shape, whoever produces it; pages keep their HTML errors.

The shape (README "Errors", OpenAPI description): `{"detail": "<message>"}`, or for a 400 about
fields `{"<field>": ["<message>", ...]}`. Cases DRF answers itself are pinned here too, so that a change
of handler cannot quietly bring HTML back.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import include, path

from tests.conftest import bearer

pytestmark = pytest.mark.django_db


def assert_json_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body, dict) and body
    if "detail" in body:
        assert isinstance(body["detail"], str) and body["detail"]
    else:
        # Field errors: every value a list of messages.
        assert status == 400
        assert all(isinstance(v, list) and all(isinstance(m, str) for m in v) for v in body.values()), body
    return body


def assert_html(response: Any, status: int) -> None:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html"), response["Content-Type"]


# --- Errors DRF already answers: pinned ----------------------------------------------------------------


def test_field_errors_map_each_field_to_its_messages(api, program, track_key):
    response = api.post(
        f"/api/v1/programs/{program.slug}/signups", {"email": "nope"}, format="json", **bearer(track_key)
    )

    body = assert_json_error(response, 400)
    assert list(body) == ["email"]


def test_malformed_json_is_a_400_with_a_detail(api, program, track_key):
    response = api.generic(
        "POST", f"/api/v1/programs/{program.slug}/signups", "{", content_type="application/json", **bearer(track_key)
    )

    assert_json_error(response, 400)


def test_missing_credentials_are_a_401_with_a_detail(api, program):
    assert_json_error(api.get(f"/api/v1/programs/{program.slug}/signups/"), 401)


def test_missing_scope_is_a_403_with_a_detail(api, program, track_key):
    assert_json_error(api.get(f"/api/v1/programs/{program.slug}/signups/", **bearer(track_key)), 403)


def test_unknown_program_is_a_404_with_a_detail(api, read_key):
    assert_json_error(api.get("/api/v1/programs/no-such-program/signups/", **bearer(read_key)), 404)


def test_wrong_method_is_a_405_with_a_detail(api, program):
    assert_json_error(api.delete(f"/api/v1/programs/{program.slug}/price"), 405)


def test_throttled_caller_gets_a_429_with_a_detail(api, program, monkeypatch):
    from rest_framework.throttling import AnonRateThrottle

    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "1/minute"})
    api.get(f"/api/v1/programs/{program.slug}/price")

    assert_json_error(api.get(f"/api/v1/programs/{program.slug}/price"), 429)


def test_session_post_without_csrf_token_is_a_json_403(program, marketer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(marketer)

    response = client.post(f"/api/v1/programs/{program.slug}/tiers/", {}, content_type="application/json")

    assert "CSRF" in assert_json_error(response, 403)["detail"]


# --- Errors Django answers before or after DRF ----------------------------------------------------------


def test_unknown_url_under_api_is_a_json_404(client):
    assert_json_error(client.get("/api/v2/nothing-here"), 404)
    assert_json_error(client.post("/api/nothing/", {}), 404)


def test_unknown_page_keeps_the_html_404(client):
    assert_html(client.get("/no-such-page/"), 404)


def test_body_over_the_limit_is_a_json_413_under_api(client, program, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = client.post(f"/api/v1/programs/{program.slug}/signups", "x" * 2048, content_type="application/json")

    assert_json_error(response, 413)


def test_body_over_the_limit_is_an_html_413_on_pages(client, program, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = client.post(f"/p/{program.slug}/subscribe", "x" * 2048, content_type="application/x-www-form-urlencoded")

    assert_html(response, 413)


def test_unknown_host_is_a_json_400_under_api(client, program):
    assert_json_error(client.get(f"/api/v1/programs/{program.slug}/price", HTTP_HOST="evil.example"), 400)


def test_unknown_host_keeps_an_html_400_on_pages(client, program):
    assert_html(client.get(f"/p/{program.slug}/", HTTP_HOST="evil.example"), 400)


@pytest.fixture
def failing_price(monkeypatch):
    """The price selector breaks as a bug or a lost database would make it."""

    def explode(program: Any) -> None:
        raise RuntimeError("the price selector broke")

    monkeypatch.setattr("rewards.api.program_price", explode)


def test_unexpected_exception_is_a_logged_json_500_that_still_signals(program, failing_price, caplog):
    signalled: list[HttpRequest] = []

    def receiver(sender: Any, request: HttpRequest, **kwargs: Any) -> None:
        signalled.append(request)

    got_request_exception.connect(receiver)
    try:
        with caplog.at_level(logging.ERROR, logger="django.request"):
            response = Client(raise_request_exception=False).get(f"/api/v1/programs/{program.slug}/price")
    finally:
        got_request_exception.disconnect(receiver)

    body = assert_json_error(response, 500)
    assert "broke" not in body["detail"]  # nothing of the internals leaks
    assert len(signalled) == 1
    record = next(r for r in caplog.records if r.name == "django.request")
    assert record.levelno == logging.ERROR and record.exc_info[0] is RuntimeError


def test_unexpected_exception_on_a_page_keeps_the_html_500(program, monkeypatch):
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the page broke")

    monkeypatch.setattr("console.program.program_price", explode)  # the program page's read model

    response = Client(raise_request_exception=False).get(f"/p/{program.slug}/")

    assert_html(response, 500)


# A plain Django view under /api/ (not DRF, so not csrf_exempt): what a future endpoint could be.
def plain_post(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def plain_page_post(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [
    path("api/plain/", plain_post),
    path("plain/", plain_page_post),
    path("", include("config.urls")),
]


@override_settings(ROOT_URLCONF=__name__)
def test_csrf_failure_on_a_plain_view_under_api_is_a_json_403():
    response = Client(enforce_csrf_checks=True).post("/api/plain/", {"a": "b"})

    assert "CSRF" in assert_json_error(response, 403)["detail"]


@override_settings(ROOT_URLCONF=__name__)
def test_csrf_failure_on_a_page_keeps_the_html_403():
    assert_html(Client(enforce_csrf_checks=True).post("/plain/", {"a": "b"}), 403)


def test_a_django_validation_error_without_fields_is_one_detail_string():
    from django.core.exceptions import ValidationError

    from config.exceptions import exception_handler

    response = exception_handler(ValidationError(["Too late.", "Try again."]), {})

    assert (response.status_code, response.data) == (400, {"detail": "Too late. Try again."})


def test_unreadable_content_length_is_a_json_400_under_api(client, program):
    response = client.post(f"/api/v1/programs/{program.slug}/signups", "{}", content_type="application/json",
                           CONTENT_LENGTH="lots")  # fmt: skip

    assert_json_error(response, 400)
