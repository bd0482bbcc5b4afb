"""The engine against real Celery worker processes on PostgreSQL and Redis: races, redelivery, faults.

Workers run `celery -A config worker -P solo` on the test database; the test process publishes to the
same broker. Each test waits until the broker has nothing queued or unacknowledged, then counts rows.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest
import redis
from celery.signals import before_task_publish
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone
from psycopg import sql

from ambassadors.mailbox import canonical_mailbox
from ambassadors.models import Ambassador, AmbassadorCounters, ProgramCounters
from ambassadors.normalise import code_key
from ambassadors.services import api_key_create
from core.actors import Actor
from core.models import AuditEvent
from referrals.models import Signup
from rewards.models import Milestone, RewardGrant
from rewards.services import ReconcileReport, reconcile
from rewards.tasks import recalculate
from tests.conftest import bearer
from tests.factories import ProgramFactory, enroll
from tests.rewards.conftest import (
    database_url_for_workers,
    price_ladder,
    publishing_to,
    queue_drained,
    subscribe,
    voucher_tier,
    wait_until,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]

# The Redis database this run was given (REDIS_URL): the race and redelivery tests use it as the broker.
BROKER = settings.CELERY_BROKER_URL
ZEROS = ReconcileReport().as_dict()


@pytest.fixture
def broker() -> str:
    """The given Redis database as a broker, without messages a previous interrupted run left behind."""
    client = redis.Redis.from_url(BROKER)
    client.delete("celery", "unacked", "unacked_index", "unacked_mutex")
    client.close()
    return BROKER


def settled(broker_url: str, check) -> bool:
    """The expected state is there and no message is left to run (twice in a row: a message being moved
    from the queue to the unacknowledged set is briefly in neither)."""
    if not (check() and queue_drained(broker_url)):
        return False
    time.sleep(0.3)
    return check() and queue_drained(broker_url)


def post_signups(program, key: str, emails_and_codes: list[tuple[str, str | None]], threads: int) -> list[int]:
    """POST the signups from `threads` threads at once, each with its own client and connection."""
    statuses: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(threads, timeout=10)
    chunks = [emails_and_codes[i::threads] for i in range(threads)]

    def run(chunk: list[tuple[str, str | None]]) -> None:
        try:
            client = Client()
            start.wait()
            for email, code in chunk:
                body = {"email": email, "referral_code": code} if code else {"email": email}
                response = client.post(
                    f"/api/v1/programs/{program.slug}/signups", body, content_type="application/json", **bearer(key)
                )
                statuses.append(response.status_code)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(chunk,)) for chunk in chunks]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=60)
    assert not errors, errors
    return statuses


def test_fifty_concurrent_signups_on_two_workers_unlock_each_reward_and_milestone_once(broker, start_worker):
    program = ProgramFactory(slug="race")
    ana = enroll(program, "ana@example.com")
    tier = voucher_tier(program, threshold=10, repeat_every=Decimal(10))
    ladder = price_ladder(program, step=5)
    key = api_key_create(actor=Actor.system("tests"), program=program, scopes=["track"])[1]
    first, second = start_worker(broker), start_worker(broker)

    with publishing_to(broker):
        # The signups' recalculations are coalesced per program (rewards.pending): a few messages for fifty
        # signups. Delivery is at least once, so a redelivered recalculation of Ana may arrive at any time:
        # twenty of them, sent while the signups are recorded, make sure both workers decide at once.
        redelivered = threading.Thread(
            target=lambda: [recalculate.delay(program.pk, [ana.pk]) or time.sleep(0.01) for _ in range(20)]
        )
        redelivered.start()
        statuses = post_signups(program, key, [(f"friend{i}@example.org", ana.code) for i in range(50)], threads=5)
        redelivered.join()
        wait_until(
            lambda: settled(
                broker,
                lambda: RewardGrant.objects.filter(tier=tier).count() >= 5 and ladder.milestones.count() >= 10,
            ),
            timeout=180,
            what="5 grants and 10 milestones",
        )

    assert statuses == [201] * 50
    assert sorted(RewardGrant.objects.filter(tier=tier, ambassador=ana).values_list("occurrence", flat=True)) == [
        1, 2, 3, 4, 5,
    ]  # fmt: skip
    assert sorted(Milestone.objects.filter(tier=ladder).values_list("occurrence", flat=True)) == list(range(1, 11))
    actions = Counter(AuditEvent.objects.filter(program_id=program.pk).values_list("action", flat=True))
    assert actions["reward.unlocked"] == 5
    assert actions["milestone.reached"] == 10
    assert AmbassadorCounters.objects.get(ambassador=ana).qualified == 50
    # Both workers took a share of the recalculations: the race was real.
    assert "rewards.recalculate" in first.log() and "rewards.recalculate" in second.log()
    assert "rewards.recalculate_pending" in first.log() + second.log(), "the signups' own recalculations ran"


def bulk_referred_ambassadors(program, count: int) -> None:
    """`count` ambassadors with one qualified referral each, rows and counters as the services leave them.

    Written in bulk: a few thousand through the services would take the whole time budget of the suite.
    """
    now = timezone.now()
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"bulk{i}", email=f"bulk{i}@example.com") for i in range(count)]
    )
    ambassadors = Ambassador.objects.bulk_create(
        [
            Ambassador(
                program=program,
                user=user,
                code=f"BULK{i}",
                code_key=code_key(f"BULK{i}"),
                email=user.email,
                email_canonical=canonical_mailbox(user.email),
            )
            for i, user in enumerate(users)
        ]
    )
    AmbassadorCounters.objects.bulk_create(
        [AmbassadorCounters(ambassador=a, signups=1, qualified=1) for a in ambassadors]
    )
    Signup.objects.bulk_create(
        [
            Signup(
                program=program,
                email=f"referee{i}@example.org",
                email_canonical=canonical_mailbox(f"referee{i}@example.org"),
                ambassador=a,
                method=Signup.Method.CODE,
                status=Signup.Status.QUALIFIED,
                created_at=now,
            )
            for i, a in enumerate(ambassadors)
        ]
    )
    ProgramCounters.objects.filter(program=program).update(signups=count, qualified=count)


@contextlib.contextmanager
def counters_locked(ambassador_ids: list[int]) -> Iterator[None]:
    """Another connection holds these ambassadors' counters FOR UPDATE until the block ends: a recalculation
    that reaches one of them waits there (`ambassador_recalculate` locks the counters first)."""
    query = sql.SQL("SELECT 1 FROM {} WHERE ambassador_id = ANY(%s) FOR UPDATE").format(
        sql.Identifier(AmbassadorCounters._meta.db_table)
    )
    with psycopg.connect(database_url_for_workers()) as holder:
        assert len(holder.execute(query, [ambassador_ids]).fetchall()) == len(ambassador_ids)
        yield
        holder.rollback()


def sessions_waiting_for_a_lock() -> int:
    """Server processes of the test database blocked on a row lock (only a worker's can be, here)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def unacknowledged(broker_url: str) -> list[tuple[str, str, float]]:
    """(task name, task id, delivered at) of each message a worker received and has not acknowledged."""
    client = redis.Redis.from_url(broker_url)
    try:
        delivered_at = dict(client.zrange("unacked_index", 0, -1, withscores=True))
        messages = client.hgetall("unacked")
    finally:
        client.close()
    held = []
    for tag, raw in messages.items():
        headers = json.loads(raw)[0]["headers"]
        held.append((headers["task"], headers["id"], delivered_at[tag]))
    return held


def test_worker_killed_in_the_middle_of_a_recalculation_loses_no_reward_and_grants_none_twice(
    redis_server, start_worker
):
    # Fails if the message is not taken back (the wait for every grant times out), if running it again
    # grants twice (it walks again the `reached` ambassadors granted before the kill), or if the
    # recalculation stops locking each ambassador's counters (it never waits: the first wait times out).
    ambassadors, reached = 120, 60
    program = ProgramFactory(slug="crash")
    bulk_referred_ambassadors(program, ambassadors)
    # The order the task walks them in: `rewards.tasks.recalculate` runs this same query.
    walk = list(Ambassador.objects.filter(program_id=program.pk).values_list("pk", flat=True))
    own = redis_server()
    # A short visibility timeout: the next worker takes back the message the killed one never acknowledged.
    visibility_timeout = 2
    doomed = start_worker(own.url, CELERY_VISIBILITY_TIMEOUT=str(visibility_timeout))

    with publishing_to(own.url):
        # The worker is killed while it provably is in the middle, whatever the machine's speed: the
        # counters past the first `reached` ambassadors are locked, so it grants those and waits.
        with counters_locked(walk[reached:]):
            tier = voucher_tier(program, threshold=1)  # a new tier recalculates every ambassador of the program
            wait_until(
                sessions_waiting_for_a_lock, timeout=180, what="the recalculation to wait at the locked counters"
            )
            assert set(tier.grants.values_list("ambassador_id", flat=True)) == set(walk[:reached])
            doomed.kill()
        # Unlocked: the killed worker's server process gets the row, finds its client gone and rolls back.

        # The killed worker had received the recalculation and not acknowledged it: the broker still holds it.
        [(task, task_id, delivered_at)] = unacknowledged(own.url)
        assert task == "rewards.recalculate"
        assert f"rewards.recalculate[{task_id}] received" in doomed.log()
        # A worker takes back, when it starts, the messages unacknowledged for longer than the visibility
        # timeout (kombu compares the delivery time with time.time()): start the successor only then.
        wait_until(
            lambda: time.time() > delivered_at + visibility_timeout,
            timeout=30,
            what="the killed worker's message to outlive the visibility timeout",
        )
        successor = start_worker(own.url, CELERY_VISIBILITY_TIMEOUT=str(visibility_timeout))
        wait_until(
            lambda: settled(own.url, lambda: tier.grants.count() >= ambassadors),
            timeout=180,
            what="the redelivered recalculation to finish",
        )

    # The very message the killed worker held ran again, to the end, on the successor.
    assert f"rewards.recalculate[{task_id}] succeeded" in successor.log(), "the killed worker's message was lost"
    # It walked again the `reached` ambassadors granted before the kill: none got a second grant.
    per_ambassador = Counter(tier.grants.values_list("ambassador_id", flat=True))
    assert len(per_ambassador) == ambassadors
    assert set(per_ambassador.values()) == {1}
    assert AuditEvent.objects.filter(program_id=program.pk, action="reward.unlocked").count() == ambassadors
    assert reconcile(program=program).as_dict() == ZEROS


def test_the_same_recalculation_delivered_twenty_times_to_a_worker_changes_nothing_after_the_first(
    broker, start_worker
):
    program = ProgramFactory(slug="redelivery")
    ana = enroll(program, "ana@example.com")
    tier = voucher_tier(program, threshold=2, repeat_every=Decimal(2))
    ladder = price_ladder(program, step=2)
    for i in range(5):
        subscribe(program, ana if i < 4 else None)  # eager here: the worker starts from a settled state
    grants = set(tier.grants.values_list("id", "occurrence", "status", "voucher_code"))
    events = AuditEvent.objects.count()
    assert len(grants) == 2 and ladder.milestones.count() == 2
    worker = start_worker(broker)

    with publishing_to(broker):
        for _ in range(20):
            recalculate.delay(program.pk, [ana.pk])
        wait_until(lambda: settled(broker, lambda: True), timeout=120, what="the worker to run the 20 messages")

    assert worker.log().count("rewards.recalculate") >= 40  # 20 received, 20 succeeded
    assert set(tier.grants.values_list("id", "occurrence", "status", "voucher_code")) == grants
    assert ladder.milestones.count() == 2
    assert AuditEvent.objects.count() == events


class BrokerCalls:
    """Counts, inside `counting()`, the tasks this process sends and its attempts to connect to the broker.

    With the broker down nothing listens on its port, so each attempt is refused at once: all that could
    hold a request is how many attempts it makes. Counted rather than timed, so no slow machine fails it:
    a longer retry policy breaks the bound, and retrying without end fails at once instead of hanging.
    """

    # CELERY_TASK_PUBLISH_RETRY_POLICY allows one retry: two tries, plus, on the first task after the broker
    # went away, one reconnect of the pooled connection it closed. Celery's default policy (3 retries) makes 4.
    ATTEMPTS_PER_TASK = 3
    RUNAWAY = 100

    def __init__(self, port: int) -> None:
        self.port = port
        self.attempts = 0
        self.published = 0

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        self.attempts = self.published = 0
        real_connect = socket.socket.connect

        def connect(sock: socket.socket, address) -> None:
            if isinstance(address, tuple) and address[1] == self.port:
                self.attempts += 1
                if self.attempts > self.RUNAWAY:
                    pytest.fail("a request keeps retrying a broker that is down")
            return real_connect(sock, address)

        def sent(**kwargs) -> None:
            self.published += 1

        socket.socket.connect = connect  # type: ignore[method-assign]
        before_task_publish.connect(sent, weak=False)
        try:
            yield
        finally:
            before_task_publish.disconnect(sent)
            socket.socket.connect = real_connect  # type: ignore[method-assign]


def test_signups_keep_being_recorded_while_the_broker_is_down_and_reconciliation_grants_what_was_missed(
    redis_server, start_worker
):
    program = ProgramFactory(slug="outage")
    ana = enroll(program, "ana@example.com")
    tier = voucher_tier(program, threshold=3, repeat_every=Decimal(3))
    ladder = price_ladder(program, step=5)
    key = api_key_create(actor=Actor.system("tests"), program=program, scopes=["track"])[1]
    own = redis_server()
    start_worker(own.url)
    client = Client()
    calls = BrokerCalls(own.port)

    def post(i: int, code: str | None) -> int:
        body = {"email": f"friend{i}@example.org"} | ({"referral_code": code} if code else {})
        with calls.counting():
            response = client.post(
                f"/api/v1/programs/{program.slug}/signups", body, content_type="application/json", **bearer(key)
            )
        # A broker that is down must not hold the request: see BrokerCalls for why a count proves it. The
        # one more is the recalculation's mark (rewards.pending), tried once and never retried.
        assert calls.attempts <= calls.ATTEMPTS_PER_TASK * calls.published + 1, (calls.attempts, calls.published)
        return response.status_code

    with publishing_to(own.url):
        assert [post(i, ana.code) for i in range(6)] == [201] * 6
        wait_until(
            lambda: settled(own.url, lambda: tier.grants.count() == 2 and ladder.milestones.count() == 1),
            timeout=120,
            what="the worker to grant the first two rewards",
        )

        own.stop()
        statuses = [post(i, ana.code if i % 4 else None) for i in range(6, 26)]

    assert statuses == [201] * 20
    assert Signup.objects.filter(program=program).count() == 26
    # Nothing reached a worker while the broker was down.
    assert tier.grants.count() == 2 and ladder.milestones.count() == 1

    restarted = redis_server(port=own.port)
    with publishing_to(restarted.url):
        report = reconcile()
        again = reconcile()

    ana_referrals = 6 + sum(1 for i in range(6, 26) if i % 4)
    assert ana_referrals == 21
    assert sorted(tier.grants.filter(ambassador=ana).values_list("occurrence", flat=True)) == list(range(1, 8))
    assert sorted(ladder.milestones.values_list("occurrence", flat=True)) == [1, 2, 3, 4, 5]
    assert (report.unlocked, report.milestones) == (5, 4)
    assert again.as_dict() == ZEROS
    actions = Counter(AuditEvent.objects.filter(program_id=program.pk).values_list("action", flat=True))
    assert (actions["reward.unlocked"], actions["milestone.reached"]) == (7, 5)
