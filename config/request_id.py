"""The request id: the caller's X-Request-ID when it is sane, else a new one, echoed in the response.

django-structlog's RequestMiddleware (just inside this one) binds it to every log line of the request and
puts it in the headers of the Celery tasks the request enqueues, so a task's lines carry it too.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from django.core.signals import request_finished, request_started
from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
# What load balancers and proxies send (UUIDs, hex, base64-ish ids): short, printable, no spaces. Anything
# else (too long, control characters, quotes that would confuse a log parser) is replaced by our own id.
_SANE = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")


def request_id_from(value: str | None) -> str:
    if value and _SANE.fullmatch(value):
        return value
    return str(uuid.uuid4())


def _forget_the_last_request(**kwargs: Any) -> None:
    structlog.contextvars.clear_contextvars()


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # Each request starts and ends with nothing bound, the referral fast path (config/wsgi.py) included.
        request_started.connect(_forget_the_last_request, dispatch_uid="parrain-request-id-start")
        request_finished.connect(_forget_the_last_request, dispatch_uid="parrain-request-id-finish")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        # django-structlog reads the header (DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID): only a sane one.
        request.META["HTTP_X_REQUEST_ID"] = request_id
        request.request_id = request_id  # type: ignore[attr-defined]
        response = self.get_response(request)
        response[HEADER] = request_id
        # django-structlog unbinds everything when its middleware is done, but Django logs a 4xx or 5xx
        # answer ("Not Found: ...") after the whole chain: keep the id for that line, until request_finished.
        structlog.contextvars.bind_contextvars(request_id=request_id)
        return response
