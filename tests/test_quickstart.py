"""The quick start works as written: `make run` shows the whole product, and the README says only what is.

- The embedded beat (config/embedded.py) runs the periodic tasks of the schedule, so a conversion past its
  hold period gets approved under `make run` as it does under Celery beat in production.
- The README's quick start shell blocks run verbatim against a real `make run` on a fresh SQLite file.
- seed_demo and the README name only pages that exist.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import time_machine
from celery import shared_task
from django.core.management import call_command
from django.urls import Resolver404, resolve

from config.embedded import EmbeddedBeat
from core.actors import Actor
from referrals.models import Conversion
from referrals.services import conversion_record, signup_record
from tests.factories import ProgramFactory, enroll

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
APPROVE = {"task": "referrals.approve_due_conversions", "schedule": 0.05}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pending_conversion() -> Conversion:
    """A referee's purchase, recorded through the real services: pending for the 14 days of its hold period."""
    program = ProgramFactory(slug="launch", hold_period_days=14)
    ana = enroll(program, "ana@example.com", display_name="Ana")
    signup_record(program=program, email="friend@example.org", actor=Actor.visitor(), referral_code=ana.code)
    conversion, _ = conversion_record(
        program=program,
        actor=Actor.system("test"),
        external_id="order-1",
        email="friend@example.org",
        amount="19.90",
        currency="EUR",
    )
    assert conversion.status == Conversion.Status.PENDING
    return conversion


calls: list[str] = []


@shared_task(name="tests.quickstart.explode")
def explode() -> None:
    calls.append("explode")
    raise RuntimeError("a periodic task that fails")


# --- The embedded beat -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_conversion_past_its_hold_period_is_approved_by_the_embedded_beat():
    conversion = pending_conversion()
    clock = FakeClock()
    beat = EmbeddedBeat({"approve": APPROVE}, first_run_delay=1, clock=clock)

    assert beat.run_due() == [], "nothing runs before the first run's delay"
    clock.now += 1
    with time_machine.travel(conversion.approve_after, tick=False):
        assert beat.run_due() == ["approve"]

    conversion.refresh_from_db()
    assert conversion.status == Conversion.Status.APPROVED


@pytest.mark.django_db
def test_the_beat_runs_each_task_at_its_own_interval():
    clock = FakeClock()
    beat = EmbeddedBeat(
        {
            "approve": {"task": "referrals.approve_due_conversions", "schedule": 300.0},
            "reconcile": {"task": "rewards.reconcile", "schedule": 900.0},
        },
        first_run_delay=5,
        clock=clock,
    )
    ran = []
    for second in range(0, 1000, 5):
        clock.now = 1000.0 + second
        ran += [(second, name) for name in beat.run_due()]

    assert ran == [
        (5, "approve"),
        (5, "reconcile"),
        (305, "approve"),
        (605, "approve"),
        (905, "approve"),
        (905, "reconcile"),
    ]


@pytest.mark.django_db
def test_a_failing_task_is_logged_and_the_others_and_the_loop_go_on(caplog):
    calls.clear()
    conversion = pending_conversion()
    clock = FakeClock()
    beat = EmbeddedBeat(
        {"explode": {"task": "tests.quickstart.explode", "schedule": 1.0}, "approve": APPROVE},
        first_run_delay=0,
        clock=clock,
    )

    with time_machine.travel(conversion.approve_after, tick=False):
        assert beat.run_due() == ["explode", "approve"]
        clock.now += 1
        assert beat.run_due() == ["explode", "approve"]

    assert calls == ["explode", "explode"]
    assert "explode failed" in caplog.text and "a periodic task that fails" in caplog.text
    conversion.refresh_from_db()
    assert conversion.status == Conversion.Status.APPROVED


@pytest.mark.django_db(transaction=True)
def test_the_beat_thread_approves_a_due_conversion_soon_after_start():
    conversion = pending_conversion()
    beat = EmbeddedBeat({"approve": APPROVE}, first_run_delay=0.05)

    # 14 days later, the clock running: the thread reads the time too.
    with time_machine.travel(conversion.approve_after, tick=True):
        beat.start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                conversion.refresh_from_db()
                if conversion.status == Conversion.Status.APPROVED:
                    break
                time.sleep(0.05)
        finally:
            beat.stop(timeout=10)

    assert conversion.status == Conversion.Status.APPROVED


def test_the_settings_schedule_is_what_the_embedded_beat_runs():
    from django.conf import settings

    beat = EmbeddedBeat(settings.CELERY_BEAT_SCHEDULE)

    assert {p.name for p in beat.tasks} == set(settings.CELERY_BEAT_SCHEDULE)


# --- What the README and the demo promise ------------------------------------------------------------


def _resolves(path: str) -> bool:
    try:
        resolve(path.split("?")[0])
    except Resolver404:
        return False
    return True


@pytest.mark.django_db
def test_seed_demo_promises_only_pages_that_exist():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()

    paths = re.findall(r"(?<![\w.])(/[\w./-]*)", text)
    assert {"/dashboard/", "/staff/", "/audit/", "/api/v1/me"} <= set(paths)
    assert [path for path in paths if not _resolves(path)] == []


def test_every_path_the_readme_names_exists():
    paths = {
        p.replace("<slug>", "book-launch").replace("<code>", "BOOKFAN")
        for p in re.findall(r"`(/[^` ]*)`", README.read_text())
    }
    # A prefix such as `/api/v1/` is no page: it exists when a path under it does.
    missing = [
        p for p in paths if not _resolves(p) and not any(o != p and o.startswith(p) and _resolves(o) for o in paths)
    ]

    assert "/p/book-launch/subscribe" in paths
    assert sorted(missing) == []


# --- The README's quick start, verbatim, against a real `make run` -----------------------------------


def quick_start_blocks() -> list[str]:
    section = README.read_text().split("\n## Integration quick start\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```sh\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)


SERVER_LINE = re.compile(r"^PARRAIN=http://127\.0\.0\.1:8000(?=\s)", re.MULTILINE)


def test_the_quick_start_names_the_server_once_and_every_call_uses_it():
    script = "\n".join(quick_start_blocks())
    curls = [line for line in script.splitlines() if line.lstrip().startswith("curl ")]

    assert len(SERVER_LINE.findall(script)) == 1
    assert len(curls) == 6
    assert all('"$PARRAIN/api/v1/' in line for line in curls), curls
    assert script.count("http") == 1, "only the PARRAIN line spells an address"
    assert 'KEY=$(make -s manage ARGS="create_api_key book-launch' in script


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`make run PORT=<free port>` as a new user starts it: a shell's environment, a fresh SQLite file."""
    port = _free_port()
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if name in os.environ}
    # Not the test settings nor their SECRET_KEY: what a fresh shell has, plus a database of its own.
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    log_path = tmp_path / "make-run.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped as a whole, and only it
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, f"make run exited:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"make run did not answer:\n{log_path.read_text()}"
            try:
                if _get(f"{base}/health/")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        yield {"port": port, "base": base, "env": env, "log": log_path}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=15)


def _json_objects(text: str) -> list[dict[str, Any]]:
    """The JSON bodies curl printed one after the other."""
    decoder, objects, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        obj, i = decoder.raw_decode(text, i)
        objects.append(obj)
    return objects


def test_the_quick_start_runs_verbatim_against_make_run(make_run):
    base = make_run["base"]
    # The one line a reader changes after `make run PORT=...`; everything else runs as printed.
    script = SERVER_LINE.sub(f"PARRAIN={base}", "\n".join(quick_start_blocks()), count=1)
    # Fail on an HTTP error instead of printing it and going on, as `curl -s` would.
    prelude = 'set -euo pipefail\ncurl() { command curl --fail-with-body --max-time 30 "$@"; }\n'

    done = subprocess.run(
        ["bash", "-c", prelude + script],
        cwd=REPO,
        env=make_run["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    ambassador, signup, conversion, fetched, refund, price = _json_objects(done.stdout)
    assert ambassador["email"] == "ana@example.com" and ambassador["code"]
    assert (signup["ambassador"], signup["method"], signup["status"]) == ("BOOKFAN", "code", "qualified")
    assert conversion["status"] == "pending", "the demo's hold period is 14 days"
    assert fetched == conversion
    assert refund["status"] == "reversed"
    assert Decimal(price["current_price"]) <= Decimal(price["base_price"])

    # The pages, and the periodic work of the embedded beat in the same process.
    for path in ("/", "/p/book-launch/", "/p/book-launch/subscribe"):
        assert _get(base + path)[0] == 200, path
    status, page = _get(f"{base}/p/book-launch/?ref=BOOKFAN")
    assert 'href="/p/book-launch/subscribe?ref=BOOKFAN"' in page
    deadline = time.monotonic() + 60
    while "embedded beat: reconcile-rewards done" not in make_run["log"].read_text():
        assert time.monotonic() < deadline, make_run["log"].read_text()
        time.sleep(0.5)
    assert "embedded beat: approve-due-conversions done" in make_run["log"].read_text()
