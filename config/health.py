"""/health/ for load balancers, and the friendly 404 page."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache


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


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return render(request, "404.html", status=404)
