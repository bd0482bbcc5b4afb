"""/metrics: refused to everyone but the scraper, and Parrain's figures say what is really there."""

from __future__ import annotations

import ipaddress

import pytest
import redis
from django.conf import settings as django_settings

from ambassadors.models import AmbassadorCounters
from ambassadors.webhooks import endpoint_create, outbox_dispatch
from config import metrics
from core.actors import Actor
from core.audit import audit_record
from rewards.services import reconcile
from tests.ops.conftest import METRICS_TOKEN

pytestmark = pytest.mark.django_db


# --- Who may read it -----------------------------------------------------------------------------------


@pytest.fixture
def guarded(settings):
    settings.METRICS_TOKEN = METRICS_TOKEN
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.1.2.0/24")]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="anonymous"),
        pytest.param({"HTTP_AUTHORIZATION": "Bearer not-the-token-not-the-token-123"}, id="wrong-token"),
        pytest.param({"HTTP_AUTHORIZATION": f"Bearer {METRICS_TOKEN}x"}, id="token-with-more"),
        pytest.param({"HTTP_AUTHORIZATION": f"Basic {METRICS_TOKEN}"}, id="not-bearer"),
        pytest.param({"REMOTE_ADDR": "203.0.113.9"}, id="public-address"),
        pytest.param({"REMOTE_ADDR": "127.0.0.1"}, id="loopback-not-listed"),
        # From an allowed network, but through a proxy: every visitor would look like the proxy.
        pytest.param({"REMOTE_ADDR": "10.1.2.3", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}, id="forwarded"),
    ],
)
def test_metrics_are_refused_with_404_to_the_public(client, guarded, headers):
    response = client.get("/metrics", **headers)

    assert response.status_code == 404
    assert b"parrain_" not in response.content


def test_metrics_are_refused_to_everyone_when_neither_token_nor_network_is_configured(client):
    assert (django_settings.METRICS_TOKEN, django_settings.METRICS_ALLOWED_NETWORKS) == ("", [])

    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_metrics_are_served_with_the_token(client, guarded):
    client.get("/health/")  # one request counted by django-prometheus before the scrape

    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}", REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    assert "django_http_requests_total_by_view_transport_method_total" in text
    assert "django_http_requests_latency_seconds_by_view_method_bucket" in text
    assert "parrain_webhook_deliveries_pending" in text


def test_metrics_are_served_to_an_allowed_network(client, guarded):
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200


# --- What they say -------------------------------------------------------------------------------------


@pytest.mark.redis
def test_queue_length_is_what_waits_in_the_broker(scraper, broker, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # the collector reads the broker only when tasks go through it
    client = redis.Redis.from_url(broker)
    client.lpush("celery", *[f"message {i}" for i in range(7)])
    client.lpush("celery\x06\x163", "a prioritised message")  # kombu's list for priority 3 of that queue

    samples = scraper()

    assert samples[("parrain_celery_queue_length", (("queue", "celery"),))] == 8
    assert samples[("parrain_broker_up", ())] == 1
    client.delete("celery")
    assert scraper()[("parrain_celery_queue_length", (("queue", "celery"),))] == 1


def test_broker_down_is_reported_not_raised(scraper, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    samples = scraper()

    assert samples[("parrain_broker_up", ())] == 0
    assert not any(name == "parrain_celery_queue_length" for name, _ in samples)


def test_webhook_backlog_counts_undispatched_outbox_rows_and_pending_deliveries(scraper, program, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    system = Actor.system("tests")
    endpoint_create(program=program, actor=system, url="http://127.0.0.1:9/hook", event_types=["reward.unlocked"])
    before = scraper()

    for occurrence in (1, 2):  # two events a committed change would announce, through the audit trail
        audit_record(
            actor=system,
            action="reward.unlocked",
            object_type="reward_grant",
            object_id=occurrence,
            program_id=program.pk,
            after={"tier": 1, "ambassador": 2, "occurrence": occurrence, "status": "unlocked", "flagged": False},
        )
    waiting = scraper()
    outbox_dispatch()  # each becomes a delivery to the endpoint, waiting for its first attempt
    dispatched = scraper()

    assert waiting[("parrain_outbox_undispatched", ())] == before[("parrain_outbox_undispatched", ())] + 2
    assert dispatched[("parrain_outbox_undispatched", ())] == before[("parrain_outbox_undispatched", ())]
    assert dispatched[("parrain_webhook_deliveries_pending", ())] == (
        before[("parrain_webhook_deliveries_pending", ())] + 2
    )


@pytest.mark.redis
def test_reconciliation_drift_is_recorded_and_counted(scraper, broker, ambassador, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # counted in the broker's Redis, as the workers' runs are
    AmbassadorCounters.objects.filter(ambassador=ambassador).update(signups=5)  # a lost increment, inverted

    reconcile()
    drifted = scraper()
    reconcile()  # nothing left to repair
    clean = scraper()

    assert drifted[("parrain_reconciliation_last_drift", ())] == 1
    assert drifted[("parrain_reconciliation_repairs_total", (("kind", "ambassadors_repaired"),))] == 1
    assert clean[("parrain_reconciliation_last_drift", ())] == 0
    assert clean[("parrain_reconciliation_repairs_total", (("kind", "ambassadors_repaired"),))] == 1
    assert metrics.last_reconciliation()["repairs"]["ambassadors_repaired"] == 0


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_tasks_run_and_failed_are_counted_from_a_real_worker(broker, start_worker, scraper, settings):
    from tests.ops.conftest import publishing_to, wait_until

    settings.CELERY_TASK_ALWAYS_EAGER = False
    start_worker(broker)
    with publishing_to(broker) as app:
        app.send_task("rewards.freeze_ended_contests")  # succeeds: nothing has ended
        app.send_task("rewards.recalculate", kwargs={"no_such_argument": 1})  # raises TypeError in the worker

    client = redis.Redis.from_url(broker)
    wait_until(lambda: client.hget(metrics.TASKS_FAILED_KEY, "rewards.recalculate"), timeout=30, what="the failure")
    wait_until(lambda: client.hlen(metrics.TASKS_RUN_KEY) == 2, timeout=30, what="both runs counted")
    samples = scraper()

    assert samples[("parrain_celery_tasks_failed_total", (("task", "rewards.recalculate"),))] == 1
    assert ("parrain_celery_tasks_failed_total", (("task", "rewards.freeze_ended_contests"),)) not in samples
    assert samples[("parrain_celery_tasks_run_total", (("task", "rewards.recalculate"),))] == 1
    assert samples[("parrain_celery_tasks_run_total", (("task", "rewards.freeze_ended_contests"),))] == 1
