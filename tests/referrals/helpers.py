"""Small helpers shared by the tracking-core tests: a browser that follows referral links, row counts."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.db import connection
from django.test import Client

from ambassadors.models import Ambassador, AmbassadorCounters, ProgramCounters
from core.models import AuditEvent
from referrals.models import Click, Conversion, Signup

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"


def browser(ip: str = "198.51.100.20") -> Client:
    """A person's browser: a real user agent and its own address, cookies kept between requests."""
    return Client(HTTP_USER_AGENT=CHROME, REMOTE_ADDR=ip)


def visit(client: Client, code: str, **query: str) -> tuple[Any, str]:
    """Follow /r/<code> without following the redirect; returns (response, click_id from the Location)."""
    response = client.get(f"/r/{code}", query)
    assert response.status_code == 302, response.status_code
    return response, location_query(response)["click_id"][0]


def location_query(response: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(response["Location"]).query, keep_blank_values=True)


def row_counts() -> dict[str, int]:
    """What a refused request must leave untouched."""
    return {model.__name__: model.objects.count() for model in (Signup, Conversion, Ambassador, AuditEvent, Click)}


def counters_of(ambassador: Ambassador) -> AmbassadorCounters:
    return AmbassadorCounters.objects.get(ambassador=ambassador)


def program_counters(program_id: int) -> ProgramCounters:
    """The program's counters once folded. A signup adds a delta row that the recalculation it enqueues
    after commit folds in (rewards program_recalculate); inside a test's own transaction nothing commits,
    so fold here, as the worker would, then read."""
    from rewards.services import program_recalculate

    program_recalculate(program_id=program_id)
    return ProgramCounters.objects.get(program_id=program_id)


def redirect_queries() -> int:
    """Queries of one live redirect: on PostgreSQL the lookup and the INSERT are one prepared statement
    (referrals.services.click_record); elsewhere (the embedded SQLite default) they are two."""
    return 1 if connection.vendor == "postgresql" else 2


def at_once(call: Callable[[Client, int], Any], threads: int) -> list[Any]:
    """Run call(client, i) in `threads` real threads released together; their results, in order."""
    start = threading.Barrier(threads, timeout=10)
    results: list[Any] = [None] * threads
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            client = Client()
            start.wait()
            results[i] = call(client, i)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in workers), "a request hung"
    assert not errors, errors
    return results


@dataclass
class ServerErrors:
    """What Django's handling of an unexpected exception left: the paths got_request_exception was sent for,
    and the ERROR records of the django.request logger."""

    signalled: list[str] = field(default_factory=list)
    logged: list[logging.LogRecord] = field(default_factory=list)


@contextmanager
def server_errors(caplog: Any) -> Iterator[ServerErrors]:
    """Collects ServerErrors while the block runs (caplog: pytest's fixture)."""
    from django.core.signals import got_request_exception

    seen = ServerErrors()

    def receiver(sender: Any, request: Any, **kwargs: Any) -> None:
        seen.signalled.append(request.path)

    got_request_exception.connect(receiver)
    try:
        with caplog.at_level(logging.ERROR, logger="django.request"):
            yield seen
    finally:
        got_request_exception.disconnect(receiver)
        seen.logged = [r for r in caplog.records if r.name == "django.request" and r.levelno == logging.ERROR]
