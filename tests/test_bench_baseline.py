"""The bare WSGI baseline in bench/ does the redirect's work for real: its cookies are ones Parrain reads."""

from __future__ import annotations

import importlib
import sys

import time_machine
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory

from referrals import client


def baseline_module(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", settings.SECRET_KEY)
    monkeypatch.setenv("DATABASE_URL", "postgres://unused")
    monkeypatch.delitem(sys.modules, "bench.baseline_wsgi", raising=False)
    return importlib.import_module("bench.baseline_wsgi")


def test_the_baseline_signs_a_cookie_exactly_as_parrain_does(monkeypatch):
    baseline = baseline_module(monkeypatch)
    response = HttpResponse()
    with time_machine.travel("2026-11-23 12:00:00Z", tick=False):
        client.set_referral_cookie(response, 7, "click-1", 30)
        theirs = baseline._signed("prn_ref_7", client.REFERRAL_SALT, "click-1")

    assert response.cookies["prn_ref_7"].value == theirs


def test_parrain_reads_the_cookies_the_baseline_signs(monkeypatch):
    baseline = baseline_module(monkeypatch)
    request = RequestFactory().get("/p/demo/subscribe")
    request.COOKIES = {
        "prn_vid": baseline._signed("prn_vid", client.VISITOR_SALT, "visitor-1"),
        "prn_ref_7": baseline._signed("prn_ref_7", client.REFERRAL_SALT, "click-1"),
    }

    assert client.visitor_id(request) == ("visitor-1", False)
    assert client.referral_click_id(request, 7, window_days=30) == "click-1"


def test_a_baseline_cookie_signed_with_another_secret_is_refused(monkeypatch):
    baseline = baseline_module(monkeypatch)
    monkeypatch.setattr(baseline, "SECRET", b"another secret")
    request = RequestFactory().get("/p/demo/subscribe")
    request.COOKIES = {"prn_vid": baseline._signed("prn_vid", client.VISITOR_SALT, "visitor-1")}

    visitor, is_new = client.visitor_id(request)
    assert is_new and visitor != "visitor-1"
