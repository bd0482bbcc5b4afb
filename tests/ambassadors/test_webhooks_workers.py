"""Webhooks through real Celery workers (tests/rewards/conftest.py) and a real local receiver: a broker
down at event time, and a slow receiver next to a healthy one."""

from __future__ import annotations

import time

import pytest
import redis
from django.conf import settings
from standardwebhooks.webhooks import Webhook

from ambassadors.models import WebhookDelivery
from ambassadors.tasks import webhooks_sweep
from ambassadors.webhooks import endpoint_create, endpoint_update
from core.actors import Actor
from core.models import OutboxMessage
from tests.ambassadors.test_webhooks import receiver  # noqa: F401 (a fixture)
from tests.factories import ProgramFactory, enroll
from tests.rewards.conftest import publishing_to, queue_drained, start_worker, subscribe, wait_until  # noqa: F401

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]

BROKER = settings.CELERY_BROKER_URL
DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1
WORKER_ENV = {"WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true"}


@pytest.fixture
def broker() -> str:
    client = redis.Redis.from_url(BROKER)
    client.delete("celery", "unacked", "unacked_index", "unacked_mutex")
    client.close()
    return BROKER


def test_an_event_committed_while_the_broker_is_down_is_delivered_once_when_it_is_back(
    receiver,  # noqa: F811
    broker,
    start_worker,  # noqa: F811
):
    program = ProgramFactory(slug="outage")
    target = endpoint_create(
        program=program, actor=Actor.system("t"), url=receiver.url("/ok"), event_types=["signup.attributed"]
    )
    ana = enroll(program, "ana@example.com")

    with publishing_to(DEAD_BROKER):
        signup = subscribe(program, ana)  # commits; the dispatch it enqueues on commit is lost
    [message] = OutboxMessage.objects.filter(program_id=program.pk, event="signup.attributed")
    assert message.dispatched_at is None and not WebhookDelivery.objects.exists()
    assert receiver.received == []

    start_worker(broker, **WORKER_ENV)
    with publishing_to(broker):
        webhooks_sweep.delay()  # what beat sends every minute
        wait_until(lambda: receiver.at("/ok"), timeout=30, what="the delivery after the outage")
        # The sweep again, twice, as beat would: nothing is sent twice.
        webhooks_sweep.delay()
        webhooks_sweep.delay()
        wait_until(lambda: queue_drained(broker), timeout=30, what="the sweeps to run")
        time.sleep(0.5)
    [request] = receiver.at("/ok")
    payload = Webhook(target.secret).verify(request.body, request.headers)
    assert payload["type"] == "signup.attributed" and payload["data"]["id"] == str(signup.pk)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)
    assert request.headers["webhook-id"] == f"msg_{message.pk}"


def test_a_slow_receiver_does_not_delay_a_healthy_one(receiver, broker, start_worker):  # noqa: F811
    program = ProgramFactory(slug="slowpoke")
    actor = Actor.system("t")
    slow = endpoint_create(
        program=program, actor=actor, url=receiver.url("/slow?s=8"), event_types=["signup.attributed"]
    )
    ana = enroll(program, "ana@example.com")
    start_worker(broker, **WORKER_ENV)
    start_worker(broker, **WORKER_ENV)

    with publishing_to(broker):
        subscribe(program, ana)  # on commit: the dispatch, then the slow receiver's delivery
        wait_until(lambda: receiver.at("/slow"), timeout=20, what="the slow receiver to be called")
        # While it holds its delivery (it answers after 8 s), an event for a healthy receiver.
        endpoint_update(endpoint=slow, actor=actor, event_types=["contest.ended"])
        healthy = endpoint_create(
            program=program, actor=actor, url=receiver.url("/ok"), event_types=["signup.attributed"]
        )
        started = time.monotonic()
        subscribe(program, ana)
        wait_until(lambda: receiver.at("/ok"), timeout=20, what="the healthy receiver's delivery")
        healthy_after = time.monotonic() - started
        slow_delivery = WebhookDelivery.objects.get(endpoint=slow)
        assert not slow_delivery.attempt_log.exists(), "the slow attempt ended before the healthy one was sent"
        # The read timeout cuts the slow attempt at 5 s; it is tried again later.
        wait_until(slow_delivery.attempt_log.exists, timeout=20, what="the slow attempt to be cut")
    assert healthy_after < 4, f"the healthy receiver waited {healthy_after:.1f}s"
    assert WebhookDelivery.objects.get(endpoint=healthy).status == "succeeded"
    slow_delivery.refresh_from_db()
    [attempt] = slow_delivery.attempt_log.all()
    assert attempt.error == "timeout" and 4500 <= attempt.duration_ms < 7000
    assert slow_delivery.status == "pending" and slow_delivery.next_attempt_at is not None
