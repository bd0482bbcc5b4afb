"""/health/ for load balancers, and the error handlers: JSON in the API's one shape under /api/, pages elsewhere."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import csrf, defaults
from django.views.decorators.cache import never_cache

from config.exceptions import error_response, is_api_request


def _database_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return False, exc.__class__.__name__
    return True, "ok"


def _broker_state() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "eager"
    import redis

    try:
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
    except Exception as exc:
        return f"down ({exc.__class__.__name__})"
    return "ok"


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """200 while the database answers; the broker's state is reported, its loss is not fatal."""
    db_ok, db_state = _database_ok()
    body = {"status": "ok" if db_ok else "unavailable", "database": db_state, "broker": _broker_state()}
    return JsonResponse(body, status=200 if db_ok else 503)


# Django calls these (config/urls.py, CSRF_FAILURE_VIEW) for errors no DRF view answered: unknown URLs,
# refused hosts, CSRF failures of plain views and, through its own logging and got_request_exception,
# unexpected exceptions. They must not fail themselves: no database, no request.get_host().


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        detail = "This host is not served here." if isinstance(exception, DisallowedHost) else "Bad request."
        return error_response(request, 400, detail)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return error_response(request, 403, str(exception) or "You do not have the right to do this.")
    return defaults.permission_denied(request, exception)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return error_response(request, 404, "Not found.")
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        # Nothing of the exception: it is in the log, not for the client.
        return error_response(request, 500, "Server error. It has been logged.")
    return defaults.server_error(request)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if is_api_request(request):
        return error_response(request, 403, f"CSRF failed: {reason}")
    return csrf.csrf_failure(request, reason)
