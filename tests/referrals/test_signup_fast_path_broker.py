"""The broker's Redis transport (config/celery_redis.py): one client per channel, messages delivered as
kombu's own transport delivers them, a new client after a reconnection. Against the real Redis."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from kombu import Connection

from config.celery_redis import Transport

pytestmark = pytest.mark.redis


@pytest.fixture
def broker():
    with Connection(settings.CELERY_BROKER_URL, transport=Transport) as connection:
        yield connection


def test_the_app_publishes_through_this_transport():
    from config.celery import app

    assert settings.CELERY_BROKER_URL.startswith("redis://")
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)


def test_one_client_serves_every_publish_of_a_channel_and_a_new_pool_gets_a_new_one(broker):
    channel = broker.default_channel
    with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
        assert first is second
        assert first.ping()
    given = object()
    with channel.conn_or_acquire(given) as client:
        assert client is given  # a client passed in (a pipeline) is used as it is
    channel._pool = None  # what a reconnection does: kombu builds a new pool
    with channel.conn_or_acquire() as third:
        assert third is not first and third.connection_pool is channel.pool
        assert third.ping()


def test_messages_go_through_and_come_back_in_order(broker):
    name = f"parrain-test-{uuid.uuid4().hex}"
    queue = broker.SimpleQueue(name)
    try:
        for n in range(3):
            queue.put({"n": n})
        received = []
        for _ in range(3):
            message = queue.get(timeout=5)
            received.append(message.payload["n"])
            message.ack()
        assert received == [0, 1, 2]
        with broker.default_channel.conn_or_acquire() as client:
            assert client.llen(name) == 0
    finally:
        queue.queue.delete()
        queue.close()
