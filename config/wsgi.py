"""WSGI entry point: `gunicorn config.wsgi:application`.

`GET /r/<code>` is the hot path of a referral program: every shared link lands there. Its view needs no
session, user, CSRF, messages or template, so the handler answers a live link straight from the view,
skipping URL resolution and the middleware stack (about a third of the time of a redirect, see bench/).
Everything else, including unknown links (friendly 404 page), HEAD requests, plain HTTP when
SECURE_SSL_REDIRECT is on and hosts outside ALLOWED_HOSTS, goes through the full Django stack. A failure
on the fast path gets Django's own handling all the same: logged, signalled, answered by handler500. Its
answers are counted in django-prometheus's request metrics all the same, under the view's URL name.

An API key's ordinary POST of a signup or a conversion takes a fast path of its own, with most of the
middleware stack but without DRF and the page-only middlewares: config/api_fast_path.py.
"""

from __future__ import annotations

import logging
import os
import time
from functools import lru_cache
from typing import Any

import django
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.http import HttpResponse, HttpResponseBase
from django_prometheus.middleware import Metrics

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
logger = logging.getLogger("parrain.wsgi")
REDIRECT_VIEW = "referral-redirect"  # the URL name of /r/<code>, as the metrics label the full stack's answers


class ParrainWSGIHandler(WSGIHandler):
    def __init__(self) -> None:
        super().__init__()
        from config import api_fast_path  # imports models: after django.setup()

        self._api_prepare = api_fast_path.prepare
        self._api_fast_path = api_fast_path.FastApiHandler()

    def get_response(self, request: WSGIRequest) -> HttpResponseBase:
        try:
            call = self._api_prepare(request)
        except Exception:
            # Only reads were made (the URL, the key, a cache count): the full stack answers, and logs what
            # still fails there.
            logger.warning("API fast path not taken: preparing the call failed", exc_info=True)
            call = None
        if call is not None:
            request.parrain_fast_call = call  # type: ignore[attr-defined]
            return self._api_fast_path.get_response(request)
        started = time.perf_counter()
        try:
            response = self._referral_fast_path(request)
        except Exception as exc:
            # What convert_exception_to_response does around every view: log to django.request, send
            # got_request_exception, answer handler500. Not a retry through the full stack: the click
            # may already be written.
            response = response_for_exception(request, exc)
        if response is None:
            return super().get_response(request)
        self._security_headers(request, response)
        self._count(request, response, started)
        response._resource_closers.append(request.close)
        return response

    @staticmethod
    def _count(request: WSGIRequest, response: HttpResponseBase, started: float) -> None:
        """What django-prometheus's middlewares count of a request, for an answer of the fast path (which they
        do not see), under the redirect's URL name: its requests, its answers by status, its latency."""
        transport = "https" if request.is_secure() else "http"
        total, answers, by_view, by_status, latency = _redirect_metrics(
            transport, request.method or "", response.status_code
        )
        total.inc()
        answers.inc()
        by_view.inc()
        by_status.inc()
        latency.observe(time.perf_counter() - started)

    @staticmethod
    def _referral_fast_path(request: WSGIRequest) -> HttpResponse | None:
        path = request.path_info
        if request.method != "GET" or not path.startswith("/r/") or "/" in path[3:]:
            return None
        if settings.SECURE_SSL_REDIRECT and not request.is_secure():
            return None
        try:
            request.get_host()  # the ALLOWED_HOSTS check CommonMiddleware would make
        except DisallowedHost:
            return None
        from referrals.views import referral_redirect_response

        return referral_redirect_response(request, path[3:])

    @staticmethod
    def _security_headers(request: WSGIRequest, response: HttpResponseBase) -> None:
        """What SecurityMiddleware would add to a fast-path answer, the redirect or the 500 page."""
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", settings.SECURE_REFERRER_POLICY)
        if request.is_secure() and settings.SECURE_HSTS_SECONDS:
            hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
            if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
                hsts += "; includeSubDomains"
            if settings.SECURE_HSTS_PRELOAD:
                hsts += "; preload"
            response.headers.setdefault("Strict-Transport-Security", hsts)


@lru_cache(maxsize=64)
def _redirect_metrics(transport: str, method: str, status: int) -> tuple[Any, Any, Any, Any, Any]:
    """The redirect's metrics for one (transport, method, status), each labelled once per process rather
    than on every click."""
    metrics = Metrics.get_instance()
    return (
        metrics.requests_total,
        metrics.responses_total,
        metrics.requests_by_view_transport_method.labels(view=REDIRECT_VIEW, transport=transport, method=method),
        metrics.responses_by_status_view_method.labels(status=str(status), view=REDIRECT_VIEW, method=method),
        metrics.requests_latency_by_view_method.labels(view=REDIRECT_VIEW, method=method),
    )


django.setup(set_prefix=False)
application = ParrainWSGIHandler()
