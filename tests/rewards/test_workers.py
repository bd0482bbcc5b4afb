"""The engine against real Celery worker processes on PostgreSQL and Redis: races, redelivery, faults.

Workers run `celery -A config worker -P solo` on the test database; the test process publishes to the
same broker. Each test waits until the broker has nothing queued or unacknowledged, then counts rows.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone

from ambassadors.models import Ambassador, AmbassadorCounters, ProgramCounters
from ambassadors.normalise import code_key
from ambassadors.services import api_key_create
from referrals.models import AuditEvent, Signup
from rewards.models import Milestone, RewardGrant
from rewards.services import ReconcileReport, reconcile
from rewards.tasks import recalculate
from tests.conftest import bearer
from tests.factories import ProgramFactory, enroll
from tests.rewards.conftest import price_ladder, publishing_to, queue_drained, subscribe, voucher_tier, wait_until

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
    key = api_key_create(program=program, scopes=["track"])[1]
    first, second = start_worker(broker), start_worker(broker)

    with publishing_to(broker):
        statuses = post_signups(program, key, [(f"friend{i}@example.org", ana.code) for i in range(50)], threads=5)
        wait_until(
            lambda: settled(
                broker,
                lambda: RewardGrant.objects.filter(tier=tier).count() >= 5 and ladder.milestones.count() >= 10,
            ),
            timeout=60,
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
    # Both workers took a share of the 50 recalculations: the race was real.
    assert "rewards.recalculate" in first.log() and "rewards.recalculate" in second.log()


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
            Ambassador(program=program, user=user, code=f"BULK{i}", code_key=code_key(f"BULK{i}"), email=user.email)
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
                ambassador=a,
                method=Signup.Method.CODE,
                status=Signup.Status.QUALIFIED,
                created_at=now,
            )
            for i, a in enumerate(ambassadors)
        ]
    )
    ProgramCounters.objects.filter(program=program).update(signups=count, qualified=count)


def test_worker_killed_in_the_middle_of_a_recalculation_loses_no_reward_and_grants_none_twice(
    redis_server, start_worker
):
    ambassadors = 300
    program = ProgramFactory(slug="crash")
    bulk_referred_ambassadors(program, ambassadors)
    own = redis_server()
    # A short visibility timeout: the next worker takes back the message the killed one never acknowledged.
    doomed = start_worker(own.url, CELERY_VISIBILITY_TIMEOUT="2")

    with publishing_to(own.url):
        tier = voucher_tier(program, threshold=1)  # a new tier recalculates every ambassador of the program
        wait_until(lambda: tier.grants.count() >= 30, timeout=30, interval=0.02, what="the recalculation to start")
        doomed.kill()
        killed = time.monotonic()
        granted_before_the_kill = tier.grants.count()
        assert granted_before_the_kill < ambassadors, "the recalculation ended before the kill: make it longer"

        # When it starts, the successor takes back the messages unacknowledged for longer than the
        # visibility timeout: the killed worker received this one before it was killed.
        time.sleep(max(0.0, killed + 2.2 - time.monotonic()))
        successor = start_worker(own.url, CELERY_VISIBILITY_TIMEOUT="2")
        wait_until(
            lambda: settled(own.url, lambda: tier.grants.count() >= ambassadors),
            timeout=60,
            what="the redelivered recalculation to finish",
        )

    assert "rewards.recalculate" in successor.log(), "the killed worker's message was not delivered again"
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
        wait_until(lambda: settled(broker, lambda: True), timeout=30, what="the worker to run the 20 messages")

    assert worker.log().count("rewards.recalculate") >= 40  # 20 received, 20 succeeded
    assert set(tier.grants.values_list("id", "occurrence", "status", "voucher_code")) == grants
    assert ladder.milestones.count() == 2
    assert AuditEvent.objects.count() == events


def test_signups_keep_being_recorded_while_the_broker_is_down_and_reconciliation_grants_what_was_missed(
    redis_server, start_worker
):
    program = ProgramFactory(slug="outage")
    ana = enroll(program, "ana@example.com")
    tier = voucher_tier(program, threshold=3, repeat_every=Decimal(3))
    ladder = price_ladder(program, step=5)
    key = api_key_create(program=program, scopes=["track"])[1]
    own = redis_server()
    start_worker(own.url)
    client = Client()

    def post(i: int, code: str | None) -> int:
        body = {"email": f"friend{i}@example.org"} | ({"referral_code": code} if code else {})
        started = time.monotonic()
        response = client.post(
            f"/api/v1/programs/{program.slug}/signups", body, content_type="application/json", **bearer(key)
        )
        assert time.monotonic() - started < 5, "a broker that is down must not hold the request"
        return response.status_code

    with publishing_to(own.url):
        assert [post(i, ana.code) for i in range(6)] == [201] * 6
        wait_until(
            lambda: settled(own.url, lambda: tier.grants.count() == 2 and ladder.milestones.count() == 1),
            timeout=30,
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
