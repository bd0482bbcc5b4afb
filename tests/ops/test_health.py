"""/health/ and `manage.py check_parrain`: a silent beat, a growing queue and reconciliation drift are
reported; /health/ still answers 200 while the database does, check_parrain exits non-zero."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from ambassadors.models import AmbassadorCounters
from core import clock
from rewards.services import reconcile

pytestmark = pytest.mark.django_db


def beat_ran(minutes_ago: float) -> None:
    """What django-celery-beat's scheduler leaves in the database when it last ran an entry."""
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name="freeze-ended-contests",
        defaults={
            "task": "rewards.freeze_ended_contests",
            "interval": every_minute,
            "last_run_at": clock.now() - timedelta(minutes=minutes_ago),
        },
    )


def check_parrain() -> tuple[bool, str]:
    out = io.StringIO()
    try:
        call_command("check_parrain", stdout=out)
    except CommandError:
        return False, out.getvalue()
    return True, out.getvalue()


@pytest.fixture
def through_the_broker(settings, broker):
    """Production's shape: tasks go through the broker (this run's Redis database), beat schedules them."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.HEALTH_BEAT_MAX_MINUTES = 10
    settings.HEALTH_QUEUE_MAX = 5
    return redis.Redis.from_url(broker)


@pytest.mark.redis
def test_all_is_well_when_beat_ticks_the_queue_is_short_and_nothing_drifted(client, through_the_broker):
    beat_ran(minutes_ago=1)
    through_the_broker.lpush("celery", *["task"] * 5)  # at the threshold, not above
    reconcile()  # nothing to repair

    body = client.get("/health/").json()
    ok, output = check_parrain()

    assert (body["status"], body["broker"], body["warnings"]) == ("ok", "ok", {})
    assert ok, output
    assert output.splitlines() == ["ok database", "ok broker", "ok beat", "ok queue", "ok drift", "ok durability"]


@pytest.mark.redis
@pytest.mark.parametrize(("minutes_ago", "expected"), [(11, "no beat tick for 11 minutes"), (None, "never run")])
def test_a_beat_that_stopped_or_never_ran_is_a_warning(client, through_the_broker, minutes_ago, expected):
    if minutes_ago is not None:
        beat_ran(minutes_ago=minutes_ago)

    response = client.get("/health/")
    ok, output = check_parrain()

    assert response.status_code == 200
    assert expected in response.json()["warnings"]["beat"]
    assert set(response.json()["warnings"]) == {"beat"}
    assert not ok
    assert f"PROBLEM beat: {response.json()['warnings']['beat']}" in output


@pytest.mark.redis
def test_a_paused_schedule_entry_does_not_count_as_a_tick(client, through_the_broker):
    beat_ran(minutes_ago=1)
    PeriodicTask.objects.update(enabled=False)  # beat does not run what is disabled: its last run says nothing

    assert "beat" in client.get("/health/").json()["warnings"]


@pytest.mark.redis
def test_a_queue_above_the_threshold_is_a_warning(client, through_the_broker):
    beat_ran(minutes_ago=1)
    through_the_broker.lpush("celery", *["task"] * 6)

    response = client.get("/health/")
    ok, output = check_parrain()

    assert response.status_code == 200
    assert response.json()["warnings"] == {"queue": "tasks waiting above 5 (celery: 6): workers are missing or too few"}
    assert not ok
    assert "PROBLEM queue: tasks waiting above 5 (celery: 6)" in output


def test_drift_found_by_the_last_reconciliation_is_a_warning_until_a_clean_run(client, ambassador):
    AmbassadorCounters.objects.filter(ambassador=ambassador).update(qualified=3)  # drifted from its signups

    reconcile()
    drifted = client.get("/health/")
    drifted_check = check_parrain()
    reconcile()  # the drift was repaired: the next run finds none
    clean = client.get("/health/")
    clean_check = check_parrain()

    assert drifted.status_code == 200
    assert "repaired drift: ambassadors_repaired 1" in drifted.json()["warnings"]["drift"]
    assert drifted_check[0] is False and "PROBLEM drift" in drifted_check[1]
    assert clean.json()["warnings"] == {}
    assert clean_check[0] is True, clean_check[1]


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("statement", "warning"),
    [
        ("SET synchronous_commit = off", "synchronous_commit is off for Parrain's connections"),
        ("SET synchronous_commit = local", None),  # waits for the local disk: as safe as on, for one server
    ],
)
def test_a_database_that_does_not_wait_for_its_disk_is_a_warning(client, statement, warning):
    # What `ALTER ROLE parrain SET synchronous_commit = off` (or the server's setting) gives every connection.
    # SET lasts until the test's transaction rolls back.
    with connection.cursor() as cursor:
        cursor.execute(statement)

    body = client.get("/health/").json()
    ok, output = check_parrain()

    assert body["status"] == "ok"
    if warning:
        assert warning in body["warnings"]["durability"]
        assert not ok and "PROBLEM durability" in output
    else:
        assert "durability" not in body["warnings"]
        assert ok, output


def test_eager_development_checks_neither_beat_nor_queue(client):
    # make run: tasks run in the web process and periodic work in a thread; no beat, no broker to ask.
    response = client.get("/health/")
    ok, output = check_parrain()

    assert (response.json()["broker"], response.json()["warnings"]) == ("eager", {})
    assert ok, output
    assert "skipped beat: tasks run eagerly" in output


@pytest.mark.redis
def test_a_broker_that_is_down_fails_check_parrain_but_not_health(client, through_the_broker, settings):
    beat_ran(minutes_ago=1)
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    response = client.get("/health/")
    ok, output = check_parrain()

    assert (response.status_code, response.json()["broker"]) == (200, "down (ConnectionError)")
    assert not ok
    assert "PROBLEM broker: down (ConnectionError)" in output


def test_check_parrain_exits_non_zero_from_the_command_line_when_the_database_does_not_answer():
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": "x" * 60,
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",  # nothing listens on port 1
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check_parrain"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )

    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "PROBLEM database: does not answer (OperationalError)",
        "PROBLEM broker: down (ConnectionError)",
        "skipped beat: the database does not answer",
        "skipped queue: the database does not answer",
        "skipped drift: the database does not answer",
        "skipped durability: the database does not answer",
    ]
    assert "2 problem(s): database, broker" in result.stderr
