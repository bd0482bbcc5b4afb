"""Logs: one JSON object per line in production, readable lines in development, and the request id in
every line of a request and of the tasks it enqueued, even in another process."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import uuid

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.conftest import bearer
from tests.ops.conftest import publishing_to, wait_until


@pytest.fixture
def log_output():
    """What the configured log handler (settings.LOGGING) writes, as the text it writes."""
    [handler] = [h for h in logging.getLogger().handlers if h.name == "console"]
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def json_lines(text: str) -> list[dict]:
    """Every non-empty line, parsed: a line that is not a JSON object fails the test."""
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all(isinstance(line, dict) for line in lines)
    return lines


def signup(api: APIClient, program, ambassador, key: str, email: str, **headers: str):
    return api.post(
        f"/api/v1/programs/{program.slug}/signups",
        {"email": email, "referral_code": ambassador.code},
        format="json",
        **bearer(key),
        **headers,
    )


@pytest.mark.django_db
def test_every_line_of_a_request_is_json_with_the_callers_request_id(program, ambassador, track_key, log_output):

    response = signup(APIClient(), program, ambassador, track_key, "friend@example.org", HTTP_X_REQUEST_ID="lb-4f2a9")

    assert response.status_code == 201
    assert response["X-Request-ID"] == "lb-4f2a9"
    lines = json_lines(log_output.getvalue())
    events = [line["event"] for line in lines]
    assert "request_started" in events and "request_finished" in events
    assert {line.get("request_id") for line in lines} == {"lb-4f2a9"}
    finished = next(line for line in lines if line["event"] == "request_finished")
    assert finished["code"] == 201
    assert finished["level"] == "info" and finished["timestamp"].endswith("Z")
    assert "ip" not in finished  # no raw IP address in the logs


@pytest.mark.parametrize(
    "header",
    [None, "", "has spaces in it", "x" * 129, 'quote"s', "new\nline"],
    ids=["absent", "empty", "spaces", "too-long", "quotes", "newline"],
)
@pytest.mark.django_db
def test_a_missing_or_insane_request_id_is_replaced_by_a_new_one(client, log_output, header):
    extra = {} if header is None else {"HTTP_X_REQUEST_ID": header}

    response = client.get("/health/", **extra)

    request_id = response["X-Request-ID"]
    assert request_id != header
    assert uuid.UUID(request_id).version == 4
    assert {line.get("request_id") for line in json_lines(log_output.getvalue())} == {request_id}


@pytest.mark.django_db
def test_djangos_own_line_about_a_refused_request_has_the_id_too(client, log_output):
    response = client.get("/metrics", HTTP_X_REQUEST_ID="lb-404")  # 404: Django logs "Not Found" after the chain

    assert response.status_code == 404
    lines = json_lines(log_output.getvalue())
    assert "Not Found: /metrics" in [line["event"] for line in lines]
    assert {line.get("request_id") for line in lines} == {"lb-404"}


@pytest.mark.django_db
def test_nothing_of_a_request_is_left_bound_for_the_next_one(client, log_output):
    client.get("/metrics", HTTP_X_REQUEST_ID="lb-first")
    logging.getLogger("parrain.test").warning("between two requests")

    [line] = [line for line in json_lines(log_output.getvalue()) if line["event"] == "between two requests"]
    assert "request_id" not in line


@pytest.mark.django_db
def test_each_request_gets_its_own_id(client):
    assert client.get("/health/")["X-Request-ID"] != client.get("/health/")["X-Request-ID"]


@pytest.mark.parametrize(("debug", "is_json"), [("false", True), ("true", False)])
def test_production_logs_json_and_development_readable_lines(debug, is_json):
    script = "import django, logging; django.setup(); logging.getLogger('parrain.test').warning('hello %s', 'there')"
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "DATABASE_URL", "REDIS_URL"}}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DEBUG=debug, SECRET_KEY="x" * 60)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stderr.splitlines() if "hello there" in line]
    if is_json:
        record = json.loads(line)
        assert (record["event"], record["level"], record["logger"]) == ("hello there", "warning", "parrain.test")
    else:
        assert line.lstrip()[0].isdigit()  # starts with its time stamp
        assert "[warning  ] hello there" in line
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_request_id_reaches_the_log_lines_of_the_task_it_enqueued(
    broker, start_worker, program, ambassador, track_key, log_output
):
    # A real worker in its own process: the id can only get there in the task's message.
    worker = start_worker(broker, LOG_LEVEL="INFO")
    with publishing_to(broker):
        response = signup(APIClient(), program, ambassador, track_key, "friend@example.org", HTTP_X_REQUEST_ID="rq-77")
        another = signup(APIClient(), program, ambassador, track_key, "other@example.org")
    assert (response.status_code, another.status_code) == (201, 201)

    # Each signup enqueued its tasks (recalculation, notification, webhooks) under its request's id.
    enqueued = {
        line["child_task_id"]: (line["child_task_name"], line["request_id"])
        for line in json_lines(log_output.getvalue())
        if line["event"] == "task_enqueued"
    }
    assert {request_id for _, request_id in enqueued.values()} == {"rq-77", another["X-Request-ID"]}
    # The first signup of the program marks it pending and publishes its (coalesced) recalculation.
    assert ("rewards.recalculate_pending", "rq-77") in enqueued.values()

    def finished() -> list[dict]:
        lines = [line for line in json_lines(worker.log()) if line.get("task_id") in enqueued]
        done = {line["task_id"] for line in lines if line["event"] in {"task_succeeded", "task_failed"}}
        return lines if done == set(enqueued) else []

    lines = wait_until(finished, timeout=30, what="the worker to run every task the two requests enqueued")
    # Every line the worker wrote about a task carries the id of the request that enqueued it.
    assert all(line.get("request_id") == enqueued[line["task_id"]][1] for line in lines), lines
    first = ("rewards.recalculate_pending", "rq-77")
    recalculation = [line["event"] for line in lines if enqueued[line["task_id"]] == first]
    assert {"task_started", "task_succeeded"} <= set(recalculation), lines  # django-structlog's, besides Celery's own
