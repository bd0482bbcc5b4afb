"""The Redis transport of Celery's broker, with one client per channel instead of one per message.

kombu's Redis channel builds a new `redis.Redis` client around its connection pool for every message it
publishes (`conn_or_acquire`), and building one (its response callbacks, its retry policy) costs more
Python than sending the message. A web request that enqueues a task after its commit (a signup: the
recalculation of its counters) paid for it on every call. This channel keeps the client it built and
builds a new one only when the pool it wraps was replaced (a reconnection). A `redis.Redis` client holds
no connection of its own: every command borrows one from the pool, so sharing it between threads is safe.

Used for `redis://` and `unix://` broker URLs (config/settings.py, CELERY_BROKER_TRANSPORT); the protocol,
the queues and the messages are kombu's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis


class Channel(redis.Channel):
    _publish_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        cached = self._publish_client
        if cached is None or cached.connection_pool is not self.pool:
            cached = self._publish_client = self._create_client()
        yield cached


class Transport(redis.Transport):
    Channel = Channel
