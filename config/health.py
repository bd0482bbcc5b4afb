"""/health/ for load balancers and monitors; error handlers: JSON in the API's shape under /api/, pages elsewhere."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import csrf, defaults
from django.views.decorators.cache import never_cache

from config import metrics
from config.exceptions import error_response, is_api_request


def database_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return False, exc.__class__.__name__
    return True, "ok"


def broker_state() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "eager"
    try:
        client = metrics.broker_client()
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"down ({exc.__class__.__name__})"
    return "ok"


def _beat_warning() -> str | None:
    """Beat saves each schedule entry's last run to the database (at least every 3 minutes)."""
    from django.db.models import Max
    from django_celery_beat.models import PeriodicTask

    from core.clock import now

    last = PeriodicTask.objects.filter(enabled=True).aggregate(last=Max("last_run_at"))["last"]
    if last is None:
        return "beat has never run a periodic task: is `celery -A config beat` running?"
    silent = now() - last
    if silent > timedelta(minutes=settings.HEALTH_BEAT_MAX_MINUTES):
        return f"no beat tick for {int(silent.total_seconds() // 60)} minutes: is `celery -A config beat` running?"
    return None


def _queue_warning() -> str | None:
    try:
        client = metrics.broker_client()
        try:
            depths = metrics.queue_depths(client)
        finally:
            client.close()
    except Exception:
        return None  # the broker being down is reported as such
    crowded = {queue: depth for queue, depth in depths.items() if depth > settings.HEALTH_QUEUE_MAX}
    if not crowded:
        return None
    queues = ", ".join(f"{queue}: {depth}" for queue, depth in crowded.items())
    return f"tasks waiting above {settings.HEALTH_QUEUE_MAX} ({queues}): workers are missing or too few"


def _drift_warning() -> str | None:
    last = metrics.last_reconciliation()
    if not last or not last["drift"]:
        return None
    repairs = ", ".join(f"{kind} {n}" for kind, n in last["repairs"].items() if n)
    return f"the last reconciliation ({last['finished_at']}) repaired drift: {repairs}"


def _durability_warning() -> str | None:
    """PostgreSQL set to answer commits before they reach the disk, for every transaction (the server's, the
    database's or the role's setting): Parrain relaxes that for clicks alone (CLICK_ASYNC_COMMIT), and its
    promise that an answered signup is never lost depends on the rest waiting for the disk."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('fsync'), current_setting('synchronous_commit')")
        fsync, synchronous_commit = cursor.fetchone()
    if fsync == "off":
        return "PostgreSQL runs with fsync off: a crash of its machine can corrupt the database"
    if synchronous_commit == "off":
        return (
            "PostgreSQL's synchronous_commit is off for Parrain's connections: a crash of PostgreSQL can lose "
            "answered signups, conversions and rewards, not only the last clicks"
        )
    return None


def operational_warnings() -> dict[str, str]:
    """What needs an operator without stopping service: a silent beat, a growing queue, counters that drifted,
    a database that does not wait for its disk."""
    checks = {"drift": _drift_warning, "durability": _durability_warning}
    if not settings.CELERY_TASK_ALWAYS_EAGER:  # eager (development): no beat, no queue
        checks = {"beat": _beat_warning, "queue": _queue_warning, **checks}
    warnings = {}
    for name, check in checks.items():
        try:
            message = check()
        except Exception as exc:  # a check that cannot run (the cache is down...) is itself a warning
            message = f"could not be checked ({exc.__class__.__name__})"
        if message:
            warnings[name] = message
    return warnings


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """200 while the database answers; the broker's state and the warnings are reported, they are not fatal."""
    db_ok, db_state = database_ok()
    body: dict[str, object] = {"status": "ok" if db_ok else "unavailable", "database": db_state}
    body["broker"] = broker_state()
    body["warnings"] = operational_warnings() if db_ok else {}
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
