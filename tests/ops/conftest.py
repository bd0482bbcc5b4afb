"""Fixtures of the operations tests: the real workers and Redis helpers of the rewards tests, and /metrics' token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from config import metrics
from tests.rewards.conftest import publishing_to, start_worker, wait_until  # noqa: F401 (fixtures and helpers)

METRICS_TOKEN = "scraper-token-for-the-tests-0123456789"


@pytest.fixture
def broker() -> Iterator[str]:
    """The Redis database this run was given, as the broker, without the queues and counters of other runs."""
    keys = ("celery", "unacked", "unacked_index", "unacked_mutex", *metrics_keys())
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(*keys)
    yield settings.CELERY_BROKER_URL
    client.delete(*keys)
    client.close()


def metrics_keys() -> tuple[str, ...]:
    priority_queues = tuple(f"celery\x06\x16{p}" for p in (3, 6, 9))
    return (metrics.TASKS_RUN_KEY, metrics.TASKS_FAILED_KEY, metrics.REPAIRS_KEY, *priority_queues)


@pytest.fixture
def scraper(client, settings):
    """`scraper()` fetches /metrics as the scraper does, and returns {(name, labels): value} of the samples."""
    settings.METRICS_TOKEN = METRICS_TOKEN

    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
        assert response.status_code == 200, response.status_code
        samples = {}
        for family in text_string_to_metric_families(response.content.decode()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    return scrape
