"""Test set-up shared by the suite: which real services answer, and the personas of our scenarios.

Tests marked `postgres`, `redis`, `worker`, `browser`, `pgbouncer` or `nginx` need the real thing. Where it
is missing they are skipped with a loud reason; with PARRAIN_REQUIRE_SERVICES=1 (CI) a missing service is a
failure.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from django.conf import settings

REQUIRE = os.environ.get("PARRAIN_REQUIRE_SERVICES") == "1"
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


def _redis_answers() -> bool:
    parts = urlsplit(settings.CELERY_BROKER_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _missing() -> dict[str, str]:
    missing = {}
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        missing["postgres"] = "DATABASE_URL is not PostgreSQL"
    if not _redis_answers():
        missing["redis"] = f"no Redis answers at {settings.CELERY_BROKER_URL}"
        missing["worker"] = missing["redis"]
    if CHROMIUM is None:
        missing["browser"] = "no chromium on PATH (apt-get install chromium)"
    from tests.ops_scale.pgbouncer import EXECUTABLE as PGBOUNCER

    if PGBOUNCER is None:
        missing["pgbouncer"] = "no pgbouncer installed (apt-get install pgbouncer)"
    from tests.ops_scale.nginx import EXECUTABLE as NGINX

    if NGINX is None:
        missing["nginx"] = "no nginx installed (apt-get install nginx)"
    return missing


MISSING = _missing()


def _load_the_celery_configuration_now() -> None:
    """Celery copies Django's CELERY_* settings into its app at the app's first use, once per process. Done
    here, before any test: otherwise a test that overrides one of them with the `settings` fixture (an
    eager-off test of the metrics, say) and happens to use the app first would leave its value in the app for
    every later test of its process, whatever order the tests run in."""
    from config.celery import app

    assert app.conf.task_always_eager == settings.CELERY_TASK_ALWAYS_EAGER


_load_the_celery_configuration_now()


@pytest.fixture(autouse=True)
def _no_task_join_refusal_left_over() -> None:
    """Celery refuses `result.get()` inside a task through one flag of the process, which an eager task sets
    while it runs and puts back after. Two eager tasks run at once by a test's threads can put it back in
    the wrong order and leave it set: every later `.get()` of the process would then fail. No task runs
    between two tests, so each starts with it clear."""
    from celery._state import _set_task_join_will_block

    _set_task_join_will_block(False)


@pytest.fixture(autouse=True)
def _celery_follows_the_settings() -> Iterator[None]:
    """The Celery app reads Django's CELERY_* settings live, unless a value was set on `app.conf`, which pins
    it. A test that pins the broker or eagerness (tests.rewards.conftest.publishing_to does, and unpins) must
    not leave it pinned for the tests after it in its process."""
    from config.celery import app

    yield
    for key in ("broker_url", "task_always_eager"):
        app.conf.changes.pop(key, None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skipped: dict[str, int] = {}
    for item in items:
        for marker, reason in MISSING.items():
            if item.get_closest_marker(marker):
                skipped[marker] = skipped.get(marker, 0) + 1
                if REQUIRE:
                    item.add_marker(pytest.mark.xfail(reason="", run=False, strict=True))
                    item.user_properties.append(("missing", reason))
                else:
                    item.add_marker(pytest.mark.skip(reason=f"SKIPPED, {marker} unavailable: {reason}"))
                break
    if skipped and REQUIRE:
        raise pytest.UsageError(
            "PARRAIN_REQUIRE_SERVICES=1 but these are missing: "
            + "; ".join(f"{m} ({MISSING[m]}) for {n} tests" for m, n in skipped.items())
        )
    config._parrain_skipped = skipped  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    skipped = getattr(config, "_parrain_skipped", {})
    if skipped:
        bar = "!" * 78
        terminalreporter.write_line(bar, red=True, bold=True)
        for marker, count in skipped.items():
            terminalreporter.write_line(f"!! {count} tests SKIPPED: {marker} unavailable ({MISSING[marker]})", red=True)
        terminalreporter.write_line(
            "!! CI runs them all: run `make test` with PostgreSQL, Redis, chromium, pgbouncer and nginx.", red=True
        )
        terminalreporter.write_line(bar, red=True, bold=True)


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    from django.core.cache import cache

    cache.clear()


# --- Personas ----------------------------------------------------------------------------------------


@pytest.fixture
def program(db):
    from tests.factories import ProgramFactory

    return ProgramFactory(slug="book-launch", name="The Book Launch")


@pytest.fixture
def ambassador(program):
    """Ana, an ambassador of the program, who shares her link."""
    from tests.factories import enroll

    return enroll(program, "ana@example.com", display_name="Ana")


@pytest.fixture
def friend_email() -> str:
    """A friend of Ana's who subscribes."""
    return "friend@example.org"


@pytest.fixture
def outsider(db):
    """Somebody signed in with no role and no ambassadorship."""
    from tests.factories import UserFactory

    return UserFactory(username="outsider")


@pytest.fixture
def marketer(db):
    from tests.factories import staff_user

    return staff_user("marketer", group="marketing")


@pytest.fixture
def auditor(db):
    from tests.factories import staff_user

    return staff_user("auditor", group="auditors")


@pytest.fixture
def track_key(program) -> str:
    from ambassadors.services import api_key_create
    from core.actors import Actor

    return api_key_create(actor=Actor.system("tests"), program=program, scopes=["track"])[1]


@pytest.fixture
def read_key(program) -> str:
    from ambassadors.services import api_key_create
    from core.actors import Actor

    return api_key_create(actor=Actor.system("tests"), program=program, scopes=["read"])[1]


@pytest.fixture
def manage_key(program) -> str:
    from ambassadors.services import api_key_create
    from core.actors import Actor

    return api_key_create(actor=Actor.system("tests"), program=program, scopes=["manage"])[1]


@pytest.fixture
def api():
    """A DRF client; `api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")` for a key."""
    from rest_framework.test import APIClient

    return APIClient()


def bearer(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}
