"""Recalculations coalesced per program (rewards.pending), against the real Redis and a real worker.

The marks only say where to look; the counters, grants and milestones still come from the database. These
tests show that coalescing loses nothing: a change committed after a task took the marks is published
again, an ambassador marked again while being recalculated stays marked, a lost message is made up by the
sweep, and a burst of signups is counted exactly with far fewer messages than signups.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import redis
from celery.signals import before_task_publish
from django.conf import settings
from django.test import Client

from ambassadors.models import AmbassadorCounters, ProgramCounters
from ambassadors.services import api_key_create
from core.actors import Actor
from core.models import AuditEvent
from referrals.models import Signup
from rewards import pending, tasks
from rewards.models import Milestone, RewardGrant
from tests.conftest import bearer
from tests.factories import ProgramFactory, enroll
from tests.rewards.conftest import price_ladder, publishing_to, subscribe, voucher_tier, wait_until
from tests.rewards.test_workers import post_signups, settled

BROKER = settings.CELERY_BROKER_URL


@pytest.fixture
def broker():
    """The run's Redis database as the broker: no queued message and no mark left by another test."""
    client = redis.Redis.from_url(BROKER)
    client.delete("celery", "unacked", "unacked_index", "unacked_mutex")
    with publishing_to(BROKER) as app:  # also forgets every mark, before and after
        yield app
    client.delete("celery", "unacked", "unacked_index", "unacked_mutex")
    client.close()


@pytest.fixture
def published():
    """Counter of the task names this process publishes (the messages themselves still go)."""
    names: Counter[str] = Counter()

    def sent(sender=None, **kwargs) -> None:
        names[sender] += 1

    before_task_publish.connect(sent, weak=False)
    yield names
    before_task_publish.disconnect(sent)


@pytest.mark.redis
class TestMarks:
    """The two Redis transactions, alone."""

    def test_the_first_change_publishes_and_the_next_ones_join_it(self, broker):
        assert pending.mark(9001, [1]) is True
        assert pending.mark(9001, [2]) is False
        assert pending.mark(9001, []) is False
        assert pending.mark(9002, []) is True, "another program has its own mark"

    def test_a_change_after_the_take_publishes_again(self, broker):
        pending.mark(9001, [1, 2])
        taken = pending.take(9001)
        assert sorted(taken) == [1, 2]
        # The task has unmarked the program before reading: whatever commits now needs a message of its own.
        assert pending.mark(9001, [3]) is True

    def test_an_ambassador_marked_again_while_recalculated_stays_marked(self, broker):
        pending.mark(9001, [1, 2])
        taken = pending.take(9001)
        pending.mark(9001, [2])  # a new referral of 2, committed while the task was running
        assert pending.clear(9001, taken) == 1  # 1 is done; 2 is not
        assert sorted(pending.take(9001)) == [2]

    def test_a_lost_message_does_not_hold_the_program_for_longer_than_the_flag_lives(self, broker, monkeypatch):
        monkeypatch.setattr(pending, "FLAG_TTL", 1)
        assert pending.mark(9001, [1]) is True  # ... and its message never arrives
        assert pending.mark(9001, [1]) is False
        time.sleep(1.2)
        assert pending.mark(9001, [1]) is True
        assert 9001 in pending.pending_programs(), "the ambassador waits for the sweep meanwhile"


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_signups_is_counted_exactly_with_few_messages(broker, published, start_worker):
    program = ProgramFactory(slug="burst")
    ana = enroll(program, "ana@example.com")
    tier = voucher_tier(program, threshold=10, repeat_every=Decimal(10))
    ladder = price_ladder(program, step=5)
    key = api_key_create(actor=Actor.system("tests"), program=program, scopes=["track"])[1]
    start_worker(BROKER)
    published.clear()  # the tiers' own recalculations

    emails = [(f"friend{i}@example.org", ana.code if i % 2 else None) for i in range(60)]
    statuses = post_signups(program, key, emails, threads=4)
    assert statuses == [201] * 60
    wait_until(
        lambda: settled(BROKER, lambda: ladder.milestones.count() == 12 and tier.grants.count() == 3),
        timeout=120,
        what="12 milestones and 3 grants",
    )
    assert ProgramCounters.objects.get(program=program).qualified == 60
    assert AmbassadorCounters.objects.get(ambassador=ana).qualified == 30
    assert sorted(Milestone.objects.filter(tier=ladder).values_list("occurrence", flat=True)) == list(range(1, 13))
    assert sorted(tier.grants.values_list("occurrence", flat=True)) == [1, 2, 3]
    actions = Counter(AuditEvent.objects.filter(program_id=program.pk).values_list("action", flat=True))
    assert (actions["milestone.reached"], actions["reward.unlocked"]) == (12, 3)
    # One message per run of the worker, not one per signup; the old per-change task is not sent at all.
    assert 1 <= published["rewards.recalculate_pending"] < 60, published
    assert published["rewards.recalculate"] == 0, published
    assert pending.pending_programs() == [] and pending.mark(program.pk, []) is True, "nothing left marked"


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_sweep_recalculates_what_a_lost_message_left_marked(broker):
    program = ProgramFactory(slug="lost")
    ana = enroll(program, "ana@example.com")
    tier = voucher_tier(program, threshold=3)
    ladder = price_ladder(program, step=2)
    key = api_key_create(actor=Actor.system("tests"), program=program, scopes=["track"])[1]
    client = Client()
    for i in range(4):
        response = client.post(
            f"/api/v1/programs/{program.slug}/signups",
            {"email": f"friend{i}@example.org", "referral_code": ana.code},
            content_type="application/json",
            **bearer(key),
        )
        assert response.status_code == 201
    # No worker runs: the message waits in the queue; drop it, as a broker that lost it would.
    assert redis.Redis.from_url(BROKER).delete("celery") == 1
    assert Signup.objects.filter(program=program).count() == 4
    assert (tier.grants.count(), ladder.milestones.count()) == (0, 0)
    assert pending.pending_programs() == [program.pk]

    assert tasks.fold_counts() == 1  # what beat runs every 30 s

    assert AmbassadorCounters.objects.get(ambassador=ana).qualified == 4
    assert ProgramCounters.objects.get(program=program).qualified == 4
    assert tier.grants.count() == 1 and ladder.milestones.count() == 2
    assert pending.pending_programs() == []
    assert tasks.fold_counts() == 0, "nothing left for the next sweep"
    assert RewardGrant.objects.filter(tier=tier).count() == 1


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_recalculation_is_due_the_configured_delay_after_the_change(broker, settings):
    settings.RECALCULATION_DELAY_MS = 5000
    program = ProgramFactory(slug="delayed")
    ana = enroll(program, "ana@example.com")
    before = datetime.now(UTC)
    subscribe(program, ana)  # committed: its recalculation is published, no worker takes it

    messages = [json.loads(raw) for raw in redis.Redis.from_url(BROKER).lrange("celery", 0, -1)]
    due = [m["headers"]["eta"] for m in messages if m["headers"]["task"] == "rewards.recalculate_pending"]
    assert len(due) == 1, messages
    delay = (datetime.fromisoformat(due[0]) - before).total_seconds()
    assert 4.5 <= delay <= 6.0, delay
