"""A no-op Celery task for bench/rewards.py: the broker round trip any recalculation pays at least.

The worker loads it with `celery -A config worker --include bench.tasks`; nothing in the application
imports it. There is no result backend, so the task marks its run with a short-lived key in the
broker's Redis database, which the benchmark polls like it polls for a reward grant.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from celery import shared_task
from django.conf import settings

PING_KEY = "parrain:bench:ping:{token}"


@lru_cache(maxsize=1)
def _redis() -> Any:
    import redis

    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


@shared_task(name="bench.ping", ignore_result=True)
def ping(token: str) -> None:
    _redis().set(PING_KEY.format(token=token), "1", ex=300)
