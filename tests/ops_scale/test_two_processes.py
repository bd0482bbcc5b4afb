"""Past one machine: two web processes (gunicorn) and two Celery workers on one database and one Redis.

Twice: connected to PostgreSQL directly, clients picking the web process; then in the `scale` profile's shape,
the processes reaching PostgreSQL through PgBouncer in transaction mode (DATABASE_POOLER=pgbouncer) and the
clients reaching them through nginx with the profile's own configuration (tests/ops_scale/nginx.py).

Clicks, signups and purchases go through both web processes at once (a click through one, the signup naming
it through the other, when the clients pick); the workers race on the recalculations.
Every click, reward, milestone and e-mail exists exactly once. E-mails are written to files by whichever
process sends them (tests/ops_scale/file_mail_settings.py), so the test counts all of them. Every
process the test starts is stopped by its PID.
"""

from __future__ import annotations

import email
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from email.message import Message
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings

from ambassadors.services import api_key_create
from core.actors import Actor
from core.models import AuditEvent, Notification
from referrals.models import Click, Conversion, Signup
from rewards.models import Milestone, RewardGrant, RewardTier
from tests.factories import ProgramFactory, enroll
from tests.ops_scale.nginx import Nginx
from tests.ops_scale.pgbouncer import PgBouncer
from tests.referrals.helpers import CHROME
from tests.rewards.conftest import (
    database_url_for_workers,
    free_port,
    price_ladder,
    queue_drained,
    start_worker,  # noqa: F401  (a fixture)
    stop_process,
    voucher_tier,
    wait_until,
)
from tests.rewards.test_workers import broker  # noqa: F401  (a fixture)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]

SETTINGS = "tests.ops_scale.file_mail_settings"


class Endpoint:
    """What clients send requests to: a web process, or the balancer in front of them."""

    port: int

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            payload = json.dumps(body) if body is not None else None
            all_headers = {"Host": "127.0.0.1", "Content-Type": "application/json"} | (headers or {})
            connection.request(method, path, payload, all_headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def visit(self, code: str) -> str:
        """A browser following /r/<code>: the click_id of the landing URL it is sent to."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", f"/r/{code}", headers={"Host": "127.0.0.1", "User-Agent": CHROME})
            response = connection.getresponse()
            response.read()
            assert response.status == 302, response.status
            return parse_qs(urlsplit(response.getheader("Location")).query)["click_id"][0]
        finally:
            connection.close()


class Balancer(Endpoint):
    def __init__(self, nginx: Nginx) -> None:
        self.port = nginx.port


class Web(Endpoint):
    """One gunicorn serving config.wsgi on a free port of 127.0.0.1."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}"]
            + ["--workers", "2", "--timeout", "60", "--access-logfile", str(log), "--error-logfile", str(log)],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited: {self.log.read_text()[-3000:]}")
        try:
            return self.request("GET", "/health/")[0] == 200
        except OSError:
            return False

    def wait_ready(self) -> Web:
        wait_until(self.ready, timeout=60, interval=0.2, what=f"gunicorn on port {self.port}")
        return self

    def requests_served(self, fragment: str) -> int:
        return sum(1 for line in self.log.read_text().splitlines() if fragment in line)


@pytest.fixture
def mail_dir(tmp_path) -> Path:
    path = tmp_path / "mail"
    path.mkdir()
    return path


@pytest.fixture
def start_web(tmp_path) -> Iterator[Callable[[dict[str, str]], Web]]:
    """`start_web(env)` starts a gunicorn (then `web.wait_ready()`); all are stopped by PID after the test.

    Request it after `transactional_db`, so the web processes stop before the tables are flushed."""
    started: list[Web] = []

    def start(env: dict[str, str]) -> Web:
        """Started, not yet waited for (`web.wait_ready()`): the workers may start meanwhile."""
        web = Web(env, tmp_path / f"web{len(started) + 1}.log")
        started.append(web)
        return web

    yield start
    for web in started:
        stop_process(web.process, timeout=15)


def sent_emails(folder: Path) -> list[Message]:
    """Every message the file backend wrote: each file holds one or more, each followed by a line of dashes."""
    messages = []
    for path in sorted(folder.iterdir()):
        for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
            if chunk.strip():
                messages.append(email.message_from_bytes(chunk))
    return messages


def text_of(message: Message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")


@pytest.fixture
def bouncer(request) -> Iterator[PgBouncer | None]:
    """None: the processes the test starts reach PostgreSQL directly; else through a PgBouncer of its own."""
    if request.param == "direct":
        yield None
        return
    pooler = PgBouncer(database_url_for_workers())
    try:
        yield pooler
    finally:
        pooler.stop()


@pytest.fixture
def start_nginx() -> Iterator[Callable[[list[int]], Nginx]]:
    """`start_nginx(ports)`: nginx balancing those web processes; stopped after the test."""
    started: list[Nginx] = []

    def start(ports: list[int]) -> Nginx:
        started.append(Nginx(ports))
        return started[-1]

    yield start
    for nginx in started:
        nginx.stop()


SCALE = pytest.param("scale", marks=[pytest.mark.pgbouncer, pytest.mark.nginx])


@pytest.mark.parametrize("bouncer", ["direct", SCALE], indirect=True)
def test_two_web_processes_and_two_workers_unlock_each_reward_milestone_and_email_once(
    bouncer,
    broker,  # noqa: F811
    start_worker,  # noqa: F811
    start_web,
    start_nginx,
    mail_dir,
):
    program = ProgramFactory(slug="two-machines", hold_period_days=0)  # purchases approved at once
    ana = enroll(program, "ana@example.com", display_name="Ana")
    friends = voucher_tier(program, threshold=4, repeat_every=Decimal(4))
    buyers = voucher_tier(
        program, threshold=3, repeat_every=Decimal(3), name="3 purchases", metric=RewardTier.Metric.APPROVED_CONVERSIONS
    )
    ladder = price_ladder(program, step=5)
    key = api_key_create(actor=Actor.system("tests"), program=program, scopes=["track"])[1]
    mail = {"DJANGO_SETTINGS_MODULE": SETTINGS, "PARRAIN_TEST_MAIL_DIR": str(mail_dir)}
    database = {"DATABASE_URL": database_url_for_workers(), "DATABASE_POOLER": ""}
    scaled = bouncer is not None
    if scaled:
        database = {"DATABASE_URL": bouncer.url, "DATABASE_POOLER": "pgbouncer"}
    env = dict(os.environ) | mail | database
    env |= {
        "REDIS_URL": broker,
        "CACHE_URL": broker,  # rate limits and cache shared by both processes, as in production
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "CONN_MAX_AGE": "0",
        "LOG_LEVEL": "WARNING",
        # nginx appends the client's address to X-Forwarded-For: one proxy to look behind (as the profile says).
        "TRUSTED_PROXY_COUNT": "1" if scaled else "0",
    }
    webs = [start_web(env), start_web(env)]
    workers = [start_worker(broker, **mail, **database), start_worker(broker, **mail, **database)]
    for web in webs:
        web.wait_ready()
    front: list[Endpoint] = list(webs)
    if scaled:  # every client through the balancer, which spreads them
        nginx = start_nginx([web.port for web in webs])
        front = [Balancer(nginx)] * 2

    # 16 friends of Ana's and 4 walk-ins; every other friend of Ana's buys: 8 purchases. One domain each:
    # the e-mail telling Ana a friend subscribed shows the address masked but for its domain. A quarter of
    # the friends followed Ana's link, and the shop sends the click_id of their landing URL, not her code.
    people = [(f"friend@site{i}.example", ana.code if i < 16 else None, i < 16 and i % 2 == 0) for i in range(20)]
    followed = {f"friend@site{i}.example" for i in range(16) if i % 4 == 1}
    statuses: Counter[tuple[str, int]] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(4, timeout=30)
    base = f"/api/v1/programs/{program.slug}"
    auth = {"Authorization": f"Bearer {key}"}

    def client(index: int) -> None:
        try:
            start.wait()
            for n, (address, code, buys) in enumerate(people[index::4]):
                # Consecutive requests of one client land on different web processes.
                web = front[(index + n) % 2]
                if address in followed:  # the click through one web process, the signup through the other
                    body = {"email": address, "click_id": front[(index + n + 1) % 2].visit(code)}
                else:
                    body = {"email": address} | ({"referral_code": code} if code else {})
                status, _ = web.request("POST", f"{base}/signups", body, auth)
                with lock:
                    statuses[("signup", status)] += 1
                if buys:
                    purchase = {
                        "external_id": f"order-{address}",
                        "email": address,
                        "amount": "19.90",
                        "currency": "EUR",
                    }
                    status, _ = front[(index + n + 1) % 2].request("POST", f"{base}/conversions", purchase, auth)
                    with lock:
                        statuses[("conversion", status)] += 1
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert statuses == {("signup", 201): 20, ("conversion", 201): 8}

    def settled() -> bool:
        done = (
            RewardGrant.objects.filter(tier=friends).count() >= 4
            and RewardGrant.objects.filter(tier=buyers).count() >= 2
            and ladder.milestones.count() >= 4
            and not Notification.objects.filter(sent_at__isnull=True).exists()
        )
        return done and queue_drained(broker)

    def settled_twice() -> bool:
        # Twice, a moment apart: a message moving from the queue to the unacknowledged set is briefly in neither.
        if not settled():
            return False
        time.sleep(0.5)
        return settled()

    wait_until(settled_twice, timeout=45, interval=0.3, what="every grant, milestone and e-mail")

    # Rows: each exactly once.
    assert Signup.objects.filter(program=program).count() == 20
    assert Click.objects.filter(ambassador=ana).count() == len(followed) == 4
    assert Signup.objects.filter(ambassador=ana, method=Signup.Method.API, click__isnull=False).count() == 4
    assert Conversion.objects.filter(program=program, status=Conversion.Status.APPROVED).count() == 8
    assert sorted(friends.grants.values_list("occurrence", flat=True)) == [1, 2, 3, 4]
    assert sorted(buyers.grants.values_list("occurrence", flat=True)) == [1, 2]
    assert sorted(Milestone.objects.filter(tier=ladder).values_list("occurrence", flat=True)) == [1, 2, 3, 4]
    actions = Counter(AuditEvent.objects.filter(program_id=program.pk).values_list("action", flat=True))
    assert (actions["reward.unlocked"], actions["milestone.reached"]) == (6, 4)

    # E-mails: what the processes wrote is what the database says was sent, none twice.
    messages = sent_emails(mail_dir)
    assert len(messages) == Notification.objects.filter(sent_at__isnull=False).count()
    assert messages, "no e-mail was sent at all"
    identities = Counter((m["To"], m["Subject"], text_of(m)) for m in messages)
    assert [identity for identity, n in identities.items() if n > 1] == []
    for grant in RewardGrant.objects.filter(tier__program=program):
        carrying = [m for m in messages if grant.voucher_code in text_of(m)]
        assert [m["To"] for m in carrying] == ["ana@example.com"], grant

    # The load was really spread: both web processes answered the API, both workers ran tasks. Which of
    # them ran the program's few coalesced recalculations is the broker's choice: at least one did.
    for web in webs:
        assert web.requests_served(f"POST {base}/signups") > 0
        assert web.requests_served(f"POST {base}/conversions") > 0
    for worker in workers:
        assert " succeeded in " in worker.log()
    assert any("rewards.recalculate" in worker.log() for worker in workers)
    if scaled:  # every process reached the database through the pooler, every client came through nginx
        assert bouncer.logins() >= len(webs) * 2 + len(workers), bouncer.log.read_text()[-2000:]
        assert nginx.requests_passed() == 20 + 8 + len(followed)
