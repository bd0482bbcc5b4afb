"""The visitor and referral cookies: signed per cookie, bound to the secret, rotated with its fallbacks."""

from __future__ import annotations

import time_machine
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from referrals import client


def issued(program_id: int, click_id: str) -> str:
    response = HttpResponse()
    client.set_referral_cookie(response, program_id, click_id, window_days=30)
    return response.cookies[client.referral_cookie_name(program_id)].value


def carrying(**cookies: str):
    request = RequestFactory().get("/p/launch/subscribe")
    request.COOKIES = cookies
    return request


def test_a_referral_cookie_moved_to_another_program_is_refused():
    value = issued(1, "click-of-program-1")

    assert client.referral_click_id(carrying(prn_ref_1=value), 1, window_days=30) == "click-of-program-1"
    assert client.referral_click_id(carrying(prn_ref_2=value), 2, window_days=30) is None


def test_a_referral_cookie_outside_the_window_is_refused():
    value = issued(1, "old-click")

    with time_machine.travel("2099-01-01 00:00:00Z"):
        assert client.referral_click_id(carrying(prn_ref_1=value), 1, window_days=30) is None


def test_a_new_secret_refuses_old_cookies_unless_the_old_one_is_kept_as_a_fallback(settings):
    old_secret = settings.SECRET_KEY
    value = issued(1, "click-1")

    with override_settings(SECRET_KEY="a-new-secret-" + "x" * 50):
        assert client.referral_click_id(carrying(prn_ref_1=value), 1, window_days=30) is None
    with override_settings(SECRET_KEY="a-new-secret-" + "x" * 50, SECRET_KEY_FALLBACKS=[old_secret]):
        assert client.referral_click_id(carrying(prn_ref_1=value), 1, window_days=30) == "click-1"


def test_a_tampered_visitor_cookie_gives_a_new_visitor():
    response = HttpResponse()
    client.set_visitor_cookie(response, "visitor-1")
    value = response.cookies[client.VISITOR_COOKIE].value

    assert client.visitor_id(carrying(prn_vid=value)) == ("visitor-1", False)
    visitor, is_new = client.visitor_id(carrying(prn_vid=value.replace("visitor-1", "visitor-2")))
    assert is_new and visitor != "visitor-2"
