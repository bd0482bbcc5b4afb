"""Fixtures of the rewards-engine tests: tiers built through the services, committed events, and real
Celery workers (and, for the fault tests, a private redis-server) started and stopped by PID."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import kombu.pools
import pytest
import redis
from django.conf import settings
from django.db import connection

from ambassadors.models import Ambassador, Program
from core.actors import Actor
from referrals.models import Signup
from referrals.services import signup_record
from rewards.models import RewardTier
from rewards.services import tier_create

SHOP = Actor.system("shop integration")
_emails = itertools.count(1)


# --- Data through the real services ------------------------------------------------------------------


def voucher_tier(program: Program, threshold: int = 3, **fields: Any) -> RewardTier:
    """An individual tier: a 20% voucher at `threshold` qualified signups (once, unless repeat_every)."""
    values: dict[str, Any] = {
        "name": f"{threshold} friends",
        "kind": RewardTier.Kind.INDIVIDUAL,
        "metric": RewardTier.Metric.QUALIFIED_SIGNUPS,
        "threshold": Decimal(threshold),
        "reward_type": RewardTier.RewardType.PERCENT_VOUCHER,
        "reward_value": Decimal("20"),
    }
    values.update(fields)
    return tier_create(actor=Actor.system("tests"), program=program, **values)


def price_ladder(program: Program, step: int = 5, drop: str = "1.00", drop_type: str = "amount") -> RewardTier:
    """The collective tier: the price drops by `drop` every `step` qualified subscribers, down to the floor."""
    return tier_create(
        actor=Actor.system("tests"),
        program=program,
        name="Community price",
        kind=RewardTier.Kind.COLLECTIVE,
        step=step,
        drop_type=drop_type,
        drop_value=Decimal(drop),
    )


def subscribe(program: Program, ambassador: Ambassador | None = None, email: str | None = None) -> Signup:
    """A new subscriber, referred by `ambassador`'s code (or by nobody), recorded by the shop's integration."""
    signup, created = signup_record(
        program=program,
        email=email or f"friend{next(_emails)}@example.org",
        referral_code=ambassador.code if ambassador else None,
        actor=SHOP,
    )
    assert created
    return signup


@pytest.fixture
def committed(django_capture_on_commit_callbacks) -> Callable[..., Any]:
    """`with committed():` runs what the block enqueued on commit (eager tasks, e-mails) when it ends,
    as a real commit would; tests using the `db` fixture never commit otherwise."""

    def block() -> Any:
        return django_capture_on_commit_callbacks(execute=True)

    return block


# --- Waiting -----------------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def queue_drained(broker_url: str) -> bool:
    """Nothing waiting in the default queue and nothing delivered but unacknowledged (acks_late)."""
    client = redis.Redis.from_url(broker_url, socket_connect_timeout=1)
    try:
        return client.llen("celery") == 0 and client.zcard("unacked_index") == 0
    finally:
        client.close()


# --- Publishing from the test process ----------------------------------------------------------------


def _reset_broker_connections(app: Any) -> None:
    # Producers are pooled per broker URL, process-wide: close them all so the next publish connects anew.
    kombu.pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


def _forget_pending_recalculations(broker_url: str) -> None:
    """No program marked pending (rewards.pending) by an earlier test holds back this test's messages."""
    from rewards import pending

    client = redis.Redis.from_url(broker_url, socket_connect_timeout=1, retry=None)
    try:
        keys = list(client.scan_iter(match=f"{pending.PREFIX}*", count=500))
        if keys:
            client.delete(*keys)
    except redis.ConnectionError:
        pass  # a test that stopped its own broker: nothing of it is left to forget
    finally:
        client.close()


@contextlib.contextmanager
def publishing_to(broker_url: str) -> Iterator[Any]:
    """Tasks sent from this process go to a real broker instead of running eagerly in the test."""
    from config.celery import app

    # The app reads Django's settings live; a value set on app.conf is pinned over them until removed. Put
    # back what was pinned before (usually nothing), so that the settings speak again afterwards: writing
    # back the values read would pin, for every later test, whatever a `settings` override said meanwhile.
    keys = ("broker_url", "task_always_eager")
    pinned = {key: app.conf.changes[key] for key in keys if key in app.conf.changes}
    _reset_broker_connections(app)
    app.conf.broker_url = broker_url
    app.conf.task_always_eager = False
    _forget_pending_recalculations(broker_url)
    try:
        yield app
    finally:
        _forget_pending_recalculations(broker_url)
        _reset_broker_connections(app)
        for key in keys:
            if key in pinned:
                app.conf.changes[key] = pinned[key]
            else:
                app.conf.changes.pop(key, None)


# --- Processes started by the tests ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen, *, timeout: float = 10, signalled: bool = False) -> None:
    """SIGTERM by PID (unless already sent), then SIGKILL if it does not go in time."""
    if process.poll() is not None:
        return
    if not signalled:
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


class RedisServer:
    """A private redis-server, so a test may stop its broker without touching the machine's Redis."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout=10, what=f"redis-server on port {self.port}")

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.2).ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@pytest.fixture
def redis_server(tmp_path) -> Iterator[Callable[..., RedisServer]]:
    """`redis_server(port=None)` starts a private redis-server; all are stopped by PID after the test."""
    if shutil.which("redis-server") is None:
        pytest.skip("SKIPPED, no redis-server binary to start a private broker with")
    started: list[RedisServer] = []

    def start(port: int | None = None) -> RedisServer:
        server = RedisServer(port or free_port(), tmp_path)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def database_url_for_workers() -> str:
    """The database pytest-django created, for processes outside this one."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"])
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """One `celery -A config worker` process with the solo pool: its PID is the process running the task."""

    def __init__(self, name: str, broker_url: str, logfile: Path, extra_env: dict[str, str]) -> None:
        self.name = name
        self.broker_url = broker_url
        self.logfile = logfile
        self.extra_env = extra_env
        self.process: subprocess.Popen | None = None
        self.terminated = False

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Worker:
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings_test",
            DATABASE_URL=database_url_for_workers(),
            REDIS_URL=self.broker_url,
            CELERY_TASK_ALWAYS_EAGER="false",
            SECRET_KEY=settings.SECRET_KEY,
            # Connections closed after each task: none left open when pytest drops the test database.
            CONN_MAX_AGE="0",
            LOG_LEVEL="WARNING",
        )
        env.update(self.extra_env)
        self.logfile.write_text("")
        # What celery prints before its logging is set up (an import error) goes next to its log.
        with open(self.logfile.with_suffix(".out"), "w") as output:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-P",
                    "solo",
                    "-n",
                    f"{self.name}@%h",
                    "--loglevel",
                    "INFO",
                    "--logfile",
                    str(self.logfile),
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],  # fmt: skip
                cwd=settings.BASE_DIR,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._ready, timeout=30, interval=0.1, what=f"worker {self.name} to be ready")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            output = self.logfile.with_suffix(".out").read_text()
            raise AssertionError(f"worker {self.name} exited: {output[-2000:]} {self.log()[-2000:]}")
        return " ready." in self.log()

    def log(self) -> str:
        return self.logfile.read_text() if self.logfile.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no acknowledgement, whatever it was doing."""
        os.kill(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=5)

    def terminate(self) -> None:
        """Ask for a warm shutdown without waiting, so that several workers stop side by side."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            self.terminated = True

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=10, signalled=self.terminated)


@pytest.fixture
def start_worker(tmp_path) -> Iterator[Callable[..., Worker]]:
    """`start_worker(broker_url, **env)` starts a worker on the test database; all are stopped by PID after.

    Request it after `transactional_db` so that workers stop before the tables are flushed.
    """
    workers: list[Worker] = []

    def start(broker_url: str, **extra_env: str) -> Worker:
        name = f"w{len(workers) + 1}"
        worker = Worker(name, broker_url, tmp_path / f"{name}.log", extra_env)
        workers.append(worker)  # stopped at teardown even if it never became ready
        return worker.start()

    yield start
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.stop()
