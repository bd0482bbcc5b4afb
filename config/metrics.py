"""Prometheus metrics at /metrics, for the operators' scraper only (METRICS_TOKEN or METRICS_ALLOWED_NETWORKS).

Requests and latency come from django-prometheus's middlewares, per process (PROMETHEUS_MULTIPROC_DIR
aggregates gunicorn's workers, see gunicorn.conf.py). Parrain's own figures are read when scraped, from
where they live, so every web process answers the same: the broker's queues (Redis LLEN), the webhook
backlog (database), the tasks run and failed (counted by Celery signals into the broker's Redis, since
workers run in other processes, often other machines) and the last reconciliation's drift (the cache).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# Counters shared by every process, in the broker's Redis: hash field = task name (or repair kind).
TASKS_RUN_KEY = "parrain:metrics:tasks_run"
TASKS_FAILED_KEY = "parrain:metrics:tasks_failed"
REPAIRS_KEY = "parrain:metrics:reconciliation_repairs"
# The last reconciliation, in the cache (CACHE_URL: shared by every process in production).
LAST_RECONCILIATION_KEY = "parrain:reconciliation:last"
# kombu's Redis transport keeps a queue's prioritised messages in sibling lists: "<queue>\x06\x16<priority>".
_PRIORITY_STEPS = (0, 3, 6, 9)


def broker_client() -> redis.Redis:
    """The broker's Redis, with timeouts short enough that a scrape or /health/ never hangs on it."""
    return redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1)


def queue_names() -> list[str]:
    return [getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")]


def queue_depths(client: redis.Redis) -> dict[str, int]:
    """Messages waiting in each queue, every priority included (not those a worker holds unacknowledged)."""
    depths = {}
    for queue in queue_names():
        names = [queue if p == 0 else f"{queue}\x06\x16{p}" for p in _PRIORITY_STEPS]
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.llen(name)
            depths[queue] = sum(pipe.execute())
    return depths


# --- Written by the workers and the reconciliation ---------------------------------------------------


def _count(key: str, field: str, amount: int = 1) -> None:
    """Best effort: a metric never fails the work it counts."""
    try:
        client = broker_client()
        try:
            client.hincrby(key, field, amount)
        finally:
            client.close()
    except redis.RedisError as exc:
        logger.warning("metrics: could not count %s %s: %s", key, field, exc.__class__.__name__)


def _on_task_postrun(sender: Any = None, task: Any = None, **kwargs: Any) -> None:
    if task is not None and not task.request.is_eager:
        _count(TASKS_RUN_KEY, task.name)


def _on_task_failure(sender: Any = None, **kwargs: Any) -> None:
    if sender is not None and not sender.request.is_eager:
        _count(TASKS_FAILED_KEY, sender.name)


def connect_task_signals() -> None:
    """Count every task a worker runs, and those that fail (eager tasks, in development, are not counted)."""
    from celery.signals import task_failure, task_postrun

    task_postrun.connect(_on_task_postrun, dispatch_uid="parrain-metrics-task-run", weak=False)
    task_failure.connect(_on_task_failure, dispatch_uid="parrain-metrics-task-failed", weak=False)


def reconciliation_record(*, repairs: dict[str, int], finished_at: datetime) -> None:
    """What a reconciliation repaired: kept for /health/ and check_parrain, counted for /metrics."""
    drift = sum(repairs.values())
    cache.set(
        LAST_RECONCILIATION_KEY,
        {"finished_at": finished_at.isoformat(), "drift": drift, "repairs": dict(repairs)},
        timeout=None,
    )
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return  # development: no broker to count in
    for kind, amount in repairs.items():
        if amount:
            _count(REPAIRS_KEY, kind, amount)


def last_reconciliation() -> dict[str, Any] | None:
    value = cache.get(LAST_RECONCILIATION_KEY)
    return value if isinstance(value, dict) else None


# --- Read when scraped ---------------------------------------------------------------------------------


class ParrainCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from self._broker()
        try:
            yield from self._backlog()
        except DatabaseError as exc:  # the scrape still says what it can; /health/ reports the database
            logger.warning("metrics: no webhook backlog: %s", exc.__class__.__name__)
        yield from self._reconciliation()

    def _broker(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("parrain_broker_up", "1 when the Celery broker (Redis) answered this scrape")
        if settings.CELERY_TASK_ALWAYS_EAGER:
            return
        try:
            client = broker_client()
            try:
                depths = queue_depths(client)
                unacked = client.zcard("unacked_index")
                run = client.hgetall(TASKS_RUN_KEY)
                failed = client.hgetall(TASKS_FAILED_KEY)
                repairs = client.hgetall(REPAIRS_KEY)
            finally:
                client.close()
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily(
            "parrain_celery_queue_length", "Tasks waiting in a Celery queue (Redis LLEN)", labels=["queue"]
        )
        for queue, value in depths.items():
            depth.add_metric([queue], value)
        yield depth
        yield GaugeMetricFamily(
            "parrain_celery_unacknowledged", "Tasks a worker has taken and not yet finished", value=unacked
        )
        yield self._hash_counter("parrain_celery_tasks_run", "Tasks run by the workers", "task", run)
        yield self._hash_counter("parrain_celery_tasks_failed", "Tasks that raised", "task", failed)
        yield self._hash_counter(
            "parrain_reconciliation_repairs", "What reconciliations repaired, by kind", "kind", repairs
        )

    @staticmethod
    def _hash_counter(name: str, documentation: str, label: str, values: dict[Any, Any]) -> Metric:
        counter = CounterMetricFamily(name, documentation, labels=[label])
        for key, value in sorted(values.items()):
            counter.add_metric([key.decode() if isinstance(key, bytes) else key], int(value))
        return counter

    def _backlog(self) -> Iterator[Metric]:
        from ambassadors.models import WebhookDelivery
        from core.models import OutboxMessage

        yield GaugeMetricFamily(
            "parrain_outbox_undispatched",
            "Outbox messages not yet handed to the webhook dispatcher",
            value=OutboxMessage.objects.filter(dispatched_at__isnull=True).count(),
        )
        yield GaugeMetricFamily(
            "parrain_webhook_deliveries_pending",
            "Webhook deliveries waiting for a first attempt or a retry",
            value=WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).count(),
        )

    def _reconciliation(self) -> Iterator[Metric]:
        last = last_reconciliation()
        if last is None:
            return
        yield GaugeMetricFamily(
            "parrain_reconciliation_last_drift",
            "Rows the last reconciliation repaired (0: no drift)",
            value=last["drift"],
        )
        yield GaugeMetricFamily(
            "parrain_reconciliation_last_finished_timestamp_seconds",
            "When the last reconciliation finished",
            value=datetime.fromisoformat(last["finished_at"]).timestamp(),
        )


def exposition() -> bytes:
    """Every metric in Prometheus' text format: this process's (or all gunicorn workers'), then Parrain's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        process_metrics = generate_latest(registry)
    else:
        process_metrics = generate_latest(REGISTRY)
    parrain = CollectorRegistry(auto_describe=False)
    parrain.register(ParrainCollector())
    return process_metrics + generate_latest(parrain)


# --- /metrics ------------------------------------------------------------------------------------------


def access_allowed(request: HttpRequest) -> bool:
    """The scraper's bearer token, or a direct connection from an allowed network; nobody else."""
    token = settings.METRICS_TOKEN
    scheme, _, presented = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
        return True
    # Behind a proxy every visitor would come from the proxy's address: a forwarded request needs the token.
    if settings.METRICS_ALLOWED_NETWORKS and "HTTP_X_FORWARDED_FOR" not in request.META:
        try:
            address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            return False
        return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)
    return False


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not access_allowed(request):
        raise Http404  # the same answer as a page that does not exist: nothing tells a visitor it is here
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
