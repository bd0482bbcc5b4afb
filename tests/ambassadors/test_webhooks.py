"""Outbound webhooks (ambassadors.webhooks) against a real HTTP receiver on 127.0.0.1 started by the test.

The receiver is local, so these tests turn WEBHOOKS_ALLOW_PRIVATE_ADDRESSES on; the SSRF tests turn it off.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.db import transaction
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ambassadors.models import WebhookDelivery, WebhookEndpoint
from ambassadors.tasks import webhook_deliver, webhooks_dispatch, webhooks_sweep
from ambassadors.webhooks import (
    LEASE,
    MAX_ATTEMPTS,
    RETRY_SCHEDULE,
    address_is_public,
    delivery_attempt,
    delivery_resend,
    endpoint_create,
    outbox_dispatch,
)
from core import clock
from core.actors import Actor
from core.errors import Conflict, InvalidInput
from core.models import OutboxMessage
from core.webhook_events import webhook_events
from tests.factories import ProgramFactory, enroll
from tests.rewards.conftest import subscribe, voucher_tier

STAFF = Actor.system("tests")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """A local HTTP server: `/ok` answers 200, `/fail` 500, `/gone` 410, `/slow?s=N` waits N seconds,
    `/redirect` 302 to /ok. Every request is recorded."""

    port: int = 0
    received: list[Received] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path.split("?")[0] == path]


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            state.received.append(Received(self.path, dict(self.headers.items()), body, time.monotonic()))
            path, _, query = self.path.partition("?")
            if path == "/slow":
                time.sleep(float(query.removeprefix("s=") or 10))
            code = {"/ok": 200, "/fail": 500, "/gone": 410, "/redirect": 302, "/slow": 200}.get(path, 404)
            self.send_response(code)
            if code == 302:
                self.send_header("location", state.url("/ok"))
            answer = b"thanks" if code == 200 else b"no " * 400
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up (a timeout test)
                self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def an_event(program, *, event: str = "reward.unlocked") -> OutboxMessage:
    """An outbox row as a committed change writes it (core.audit)."""
    from core.audit import audit_record

    action = event
    audit_record(
        actor=STAFF,
        action=action,
        object_type="reward_grant",
        object_id=41,
        program_id=program.pk,
        after={"tier": 1, "ambassador": 2, "occurrence": 1, "status": "unlocked", "flagged": False},
    )
    return OutboxMessage.objects.filter(program_id=program.pk).latest("id")


def endpoint(program, receiver: Receiver, path: str = "/ok", events: list[str] | None = None) -> WebhookEndpoint:
    return endpoint_create(
        program=program, actor=STAFF, url=receiver.url(path), event_types=events or ["reward.unlocked"]
    )


def dispatched_delivery(program, receiver, path: str = "/ok") -> WebhookDelivery:
    target = endpoint(program, receiver, path)
    an_event(program)
    [delivery_id] = outbox_dispatch()
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert delivery.endpoint_id == target.pk
    return delivery


# --- The outbox: written with the change, and only if it commits ----------------------------------------


@pytest.mark.django_db
def test_a_referred_signup_writes_signup_attributed_to_the_outbox_in_its_transaction_without_personal_data():
    program = ProgramFactory(slug="outbox")
    ana = enroll(program, "ana@example.com")
    signup = subscribe(program, ana, email="friend@example.org")
    [message] = OutboxMessage.objects.filter(program_id=program.pk, event="signup.attributed")
    assert message.payload["type"] == "signup.attributed"
    assert message.payload["data"]["id"] == str(signup.pk)
    assert message.payload["data"]["ambassador"] == ana.code
    assert message.payload["data"]["program_id"] == program.pk
    assert "friend@example.org" not in json.dumps(message.payload)
    assert message.dispatched_at is None


Q, R, P = "qualified", "rejected", "pending_review"


@pytest.mark.parametrize(
    ("action", "before", "after", "events"),
    [
        ("signup.recorded", None, {"status": Q, "ambassador": "ANA"}, ["signup.attributed"]),
        ("signup.recorded", None, {"status": Q, "ambassador": None}, []),  # a walk-in: nobody is credited
        ("signup.recorded", None, {"status": R, "ambassador": "ANA"}, ["signup.rejected"]),
        ("signup.recorded", None, {"status": P, "ambassador": "ANA"}, []),
        ("signup.reviewed", {"status": P, "ambassador": "ANA"}, {"status": Q, "ambassador": "ANA"},
         ["signup.attributed"]),
        ("signup.reviewed", {"status": P, "ambassador": "ANA"}, {"status": R, "ambassador": "ANA"},
         ["signup.rejected"]),
        ("signup.overridden", {"status": Q, "ambassador": "ANA"}, {"status": Q, "ambassador": "BOB"},
         ["signup.attributed"]),
        ("signup.overridden", {"status": Q, "ambassador": "ANA"}, {"status": Q, "ambassador": None}, []),
        ("signup.status_changed", {"status": R, "ambassador": "ANA"}, {"status": R, "ambassador": "ANA"}, []),
        ("reward.unlocked", None, {}, ["reward.unlocked"]),
        ("reward.flagged", None, {}, []),
        ("contest.ended", None, {}, ["contest.ended"]),
        ("conversion.recorded", None, {}, []),  # pending: announced when approved
        ("program.updated", {}, {}, []),
    ],
)  # fmt: skip
def test_which_audited_changes_are_webhook_events(action, before, after, events):
    assert webhook_events(action=action, before=before, after=after) == events


@pytest.mark.django_db
def test_a_change_rolled_back_leaves_no_outbox_row():
    program = ProgramFactory(slug="rollback")
    ana = enroll(program, "ana@example.com")
    with pytest.raises(RuntimeError), transaction.atomic():
        subscribe(program, ana)
        raise RuntimeError("the change fails after its audit event")
    assert not OutboxMessage.objects.filter(program_id=program.pk).exists()


@pytest.mark.django_db
def test_the_dispatch_is_announced_once_per_transaction_whatever_its_number_of_events(
    django_capture_on_commit_callbacks,
):
    program = ProgramFactory(slug="once")
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        for _ in range(3):
            an_event(program)
    assert len(callbacks) == 1
    assert OutboxMessage.objects.filter(program_id=program.pk).count() == 3


@pytest.mark.django_db
def test_a_reward_unlocked_is_announced_and_an_unreferred_signup_is_not():
    program = ProgramFactory(slug="unlock")
    ana = enroll(program, "ana@example.com")
    voucher_tier(program, threshold=1)
    subscribe(program, None)
    assert not OutboxMessage.objects.filter(program_id=program.pk).exists()
    subscribe(program, ana)
    from rewards.services import ambassador_recalculate

    ambassador_recalculate(ambassador_id=ana.pk)
    events = set(OutboxMessage.objects.filter(program_id=program.pk).values_list("event", flat=True))
    assert events == {"signup.attributed", "reward.unlocked"}


@pytest.mark.django_db
def test_a_conversion_approved_then_reversed_names_its_order_and_amount():
    from referrals.services import conversion_approve, conversion_record, conversion_refund

    program = ProgramFactory(slug="orders")
    ana = enroll(program, "ana@example.com")
    subscribe(program, ana, email="buyer@example.org")
    conversion, _ = conversion_record(
        program=program, actor=STAFF, external_id="order/1001", amount="19.90", currency="EUR",
        email="buyer@example.org",
    )  # fmt: skip
    assert conversion_approve(conversion_id=conversion.pk, actor=STAFF)
    conversion_refund(program=program, external_id="order/1001", actor=STAFF)

    for event, status in (("conversion.approved", "approved"), ("conversion.reversed", "reversed")):
        data = OutboxMessage.objects.get(program_id=program.pk, event=event).payload["data"]
        assert data == {
            "object": "conversion", "id": str(conversion.pk), "program_id": program.pk, "status": status,
            "external_id": "order/1001", "amount": "19.90", "currency": "EUR", "signup": data["signup"],
            "ambassador": ana.code,
        }  # fmt: skip
        assert "buyer@example.org" not in json.dumps(data)


@pytest.mark.django_db
def test_fan_out_creates_one_delivery_per_subscribed_active_endpoint_once(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    program, other = ProgramFactory(slug="fan"), ProgramFactory(slug="other")
    url = "http://127.0.0.1:9/hook"
    subscribed = endpoint_create(program=program, actor=STAFF, url=url, event_types=["reward.unlocked"])
    endpoint_create(program=program, actor=STAFF, url=url, event_types=["contest.ended"])
    off = endpoint_create(program=program, actor=STAFF, url=url, event_types=["reward.unlocked"])
    WebhookEndpoint.objects.filter(pk=off.pk).update(is_active=False)
    endpoint_create(program=other, actor=STAFF, url=url, event_types=["reward.unlocked"])
    message = an_event(program)

    created = outbox_dispatch()

    assert [WebhookDelivery.objects.get(pk=pk).endpoint_id for pk in created] == [subscribed.pk]
    assert WebhookDelivery.objects.get(pk=created[0]).event_id == f"msg_{message.pk}"
    message.refresh_from_db()
    assert message.dispatched_at is not None
    assert outbox_dispatch() == []  # dispatched once
    assert WebhookDelivery.objects.count() == 1


# --- Signed delivery --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_delivery_is_signed_and_the_receiver_verifies_it_with_the_library(receiver):
    program = ProgramFactory(slug="signed")
    delivery = dispatched_delivery(program, receiver)

    result = delivery_attempt(delivery_id=delivery.pk)

    assert result.sent and result.status == "succeeded" and result.status_code == 200
    [request] = receiver.at("/ok")
    payload = Webhook(delivery.endpoint.secret).verify(request.body, request.headers)
    assert payload["type"] == "reward.unlocked"
    assert payload["data"] == {
        "object": "reward_grant", "id": "41", "program_id": program.pk, "tier": 1, "ambassador": 2,
        "occurrence": 1, "status": "unlocked", "flagged": False,
    }  # fmt: skip
    assert request.headers["webhook-id"] == delivery.event_id
    assert delivery.endpoint.secret.startswith("whsec_")
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(request.body, request.headers)  # another secret
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    [attempt] = delivery.attempt_log.all()
    assert attempt.status_code == 200 and attempt.response_excerpt == "thanks" and attempt.duration_ms >= 0
    # Done: handing the task the same delivery again sends nothing.
    assert not delivery_attempt(delivery_id=delivery.pk).sent
    assert len(receiver.received) == 1


@pytest.mark.django_db
def test_a_delivery_replayed_more_than_five_minutes_later_is_refused_by_the_documented_check(receiver):
    program = ProgramFactory(slug="replay")
    delivery = dispatched_delivery(program, receiver)
    delivery_attempt(delivery_id=delivery.pk)
    [request] = receiver.at("/ok")
    secret = delivery.endpoint.secret

    Webhook(secret).verify(request.body, request.headers)  # fresh: accepted
    later = clock.now() + timedelta(minutes=5, seconds=5)
    with time_machine.travel(later, tick=False), pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(request.body, request.headers)


def readme_receiver(monkeypatch, secret: str) -> Any:
    """The `receive` function of the README's Webhooks section, run as a receiver would."""
    text = (settings.BASE_DIR / "README.md").read_text()
    code = text.split("### Webhooks", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("PARRAIN_WEBHOOK_SECRET", secret)
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 (our own documentation)
    return namespace["receive"]


@pytest.mark.django_db
def test_the_readme_receiver_accepts_a_delivery_and_refuses_a_replay_or_a_forgery(receiver, monkeypatch):
    program = ProgramFactory(slug="readme")
    delivery = dispatched_delivery(program, receiver)
    delivery_attempt(delivery_id=delivery.pk)
    [request] = receiver.at("/ok")
    receive = readme_receiver(monkeypatch, delivery.endpoint.secret)

    assert receive(request.body, request.headers)["type"] == "reward.unlocked"
    assert receive(request.body.replace(b"41", b"42"), request.headers) is None
    with time_machine.travel(clock.now() + timedelta(minutes=4, seconds=50), tick=False):
        assert receive(request.body, request.headers) is not None
    with time_machine.travel(clock.now() + timedelta(minutes=5, seconds=10), tick=False):
        assert receive(request.body, request.headers) is None


@pytest.mark.django_db
def test_a_500_is_retried_on_the_schedule_then_abandoned(receiver):
    program = ProgramFactory(slug="retry")
    delivery = dispatched_delivery(program, receiver, "/fail")
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        for attempt, delay in enumerate(RETRY_SCHEDULE, start=1):
            result = delivery_attempt(delivery_id=delivery.pk)
            delivery.refresh_from_db()
            assert result.sent and result.status_code == 500 and result.retry_in == delay
            assert (delivery.status, delivery.attempts) == ("pending", attempt)
            assert delivery.next_attempt_at == clock.now() + delay
            # Not due yet: nothing is sent before the schedule says.
            traveller.shift(delay - timedelta(seconds=1))
            assert not delivery_attempt(delivery_id=delivery.pk).sent
            traveller.shift(timedelta(seconds=1))
        result = delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "abandoned" and delivery.attempts == MAX_ATTEMPTS == 10
    assert len(receiver.at("/fail")) == MAX_ATTEMPTS
    assert delivery.attempt_log.count() == MAX_ATTEMPTS
    assert delivery.last_status_code == 500 and len(delivery.last_response) <= 500
    # About three days from the first attempt to the last.
    assert timedelta(days=2, hours=22) < sum(RETRY_SCHEDULE, timedelta()) < timedelta(days=3, hours=2)


@pytest.mark.django_db
def test_a_receiver_that_times_out_is_retried_and_the_attempt_is_cut_short(receiver, monkeypatch):
    monkeypatch.setattr("ambassadors.webhooks.READ_TIMEOUT", 0.5)
    program = ProgramFactory(slug="timeout")
    delivery = dispatched_delivery(program, receiver, "/slow?s=3")

    started = time.monotonic()
    result = delivery_attempt(delivery_id=delivery.pk)

    assert time.monotonic() - started < 2
    assert result.sent and result.status_code is None and result.retry_in == RETRY_SCHEDULE[0]
    [attempt] = delivery.attempt_log.all()
    assert attempt.error == "timeout"
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at > clock.now()


@pytest.mark.django_db
def test_a_redirect_is_not_followed_and_counts_as_a_failure(receiver):
    program = ProgramFactory(slug="redirect")
    delivery = dispatched_delivery(program, receiver, "/redirect")
    result = delivery_attempt(delivery_id=delivery.pk)
    assert result.status_code == 302 and result.retry_in is not None
    assert receiver.at("/ok") == []


@pytest.mark.django_db
def test_410_disables_the_endpoint_and_its_other_deliveries_wait(receiver):
    program = ProgramFactory(slug="gone")
    delivery = dispatched_delivery(program, receiver, "/gone")
    an_event(program)
    [waiting] = outbox_dispatch()

    result = delivery_attempt(delivery_id=delivery.pk)

    assert result.status_code == 410 and result.retry_in is None
    delivery.refresh_from_db()
    target = delivery.endpoint
    assert delivery.status == "failed"
    assert not target.is_active and "410" in target.disabled_reason
    assert not delivery_attempt(delivery_id=waiting).sent  # the endpoint is off: nothing more is sent
    assert len(receiver.at("/gone")) == 1
    with pytest.raises(Conflict):
        delivery_resend(delivery=delivery, actor=STAFF)


@pytest.mark.django_db
def test_a_delivery_can_be_resent_from_the_start_and_keeps_its_log(receiver):
    program = ProgramFactory(slug="resend")
    delivery = dispatched_delivery(program, receiver)
    delivery_attempt(delivery_id=delivery.pk)

    delivery = delivery_resend(delivery=delivery, actor=STAFF)
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    delivery_attempt(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempt_log.count() == 2
    first, second = receiver.at("/ok")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.event_id


@pytest.mark.django_db
def test_a_claimed_attempt_is_sent_once_and_a_lost_one_again_after_its_lease(receiver):
    program = ProgramFactory(slug="lease")
    delivery = dispatched_delivery(program, receiver, "/fail")
    start = clock.now()
    with time_machine.travel(start, tick=False) as traveller:
        # A worker claimed the attempt and died before recording it.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=1, next_attempt_at=start + LEASE)
        assert not delivery_attempt(delivery_id=delivery.pk).sent  # held by the lease
        traveller.shift(LEASE)
        assert delivery_attempt(delivery_id=delivery.pk).sent
    assert len(receiver.at("/fail")) == 1


@pytest.mark.django_db(transaction=True)
def test_the_committed_event_is_dispatched_and_delivered_by_the_tasks(receiver):
    # Eager tasks here: on commit, dispatch, then one delivery task per delivery.
    program = ProgramFactory(slug="eager")
    target = endpoint(program, receiver, "/ok", ["signup.attributed"])
    ana = enroll(program, "ana@example.com")
    subscribe(program, ana)
    [request] = receiver.at("/ok")
    assert Webhook(target.secret).verify(request.body, request.headers)["type"] == "signup.attributed"
    assert webhooks_dispatch() == 0 and webhooks_sweep() == 0
    assert WebhookDelivery.objects.get().status == "succeeded"
    assert webhook_deliver(WebhookDelivery.objects.get().pk) == "skipped"
    assert len(receiver.received) == 1


# --- SSRF ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.1/hook",
        "http://2130706433/hook",  # 127.0.0.1 in decimal
        "http://0177.0.0.1/hook",  # in octal
        "http://0x7f000001/hook",
        "http://0.0.0.0/hook",
        "http://10.0.0.5/hook",
        "http://172.16.3.4/hook",
        "http://192.168.1.1/hook",
        "http://100.64.0.1/hook",  # CGNAT
        "http://169.254.169.254/latest/meta-data/",  # link-local: cloud metadata
        "http://224.0.0.1/hook",  # multicast
        "http://240.0.0.1/hook",  # reserved
        "http://[::1]/hook",
        "http://[::]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://[fc00::1]/hook",
        "http://[fd12:3456::1]/hook",
        "http://localhost:8000/hook",
        "https://localhost/hook",
    ],
)
@pytest.mark.django_db
def test_an_endpoint_on_a_non_public_address_is_refused(url, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    program = ProgramFactory(slug="ssrf")
    with pytest.raises(InvalidInput) as refused:
        endpoint_create(program=program, actor=STAFF, url=url, event_types=["reward.unlocked"])
    assert refused.value.field == "url"
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "file:///etc/passwd", "gopher://x/", "example.com/hook",
                                 "http://user:pw@example.com/hook", "http:///hook"])  # fmt: skip
@pytest.mark.django_db
def test_only_http_and_https_urls_are_accepted(url, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    with pytest.raises(InvalidInput):
        endpoint_create(program=ProgramFactory(slug="scheme"), actor=STAFF, url=url, event_types=["reward.unlocked"])


def fake_dns(monkeypatch, answers: dict[str, list[str]]) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            return [
                (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in answers[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.django_db
def test_a_name_resolving_to_loopback_or_to_one_private_address_among_public_ones_is_refused(settings, monkeypatch):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    fake_dns(monkeypatch, {"evil.example": ["127.0.0.1"], "mixed.example": ["93.184.215.14", "10.1.2.3"],
                           "fine.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]})  # fmt: skip
    program = ProgramFactory(slug="dns")
    for host in ("evil.example", "mixed.example"):
        with pytest.raises(InvalidInput):
            endpoint_create(program=program, actor=STAFF, url=f"https://{host}/hook", event_types=["reward.unlocked"])
    ok = endpoint_create(program=program, actor=STAFF, url="https://fine.example/hook", event_types=["reward.unlocked"])
    assert ok.url == "https://fine.example/hook"


@pytest.mark.django_db
def test_a_name_that_turns_to_loopback_after_it_was_saved_is_not_connected_to(receiver, settings, monkeypatch):
    # DNS rebinding: public when saved, loopback when sent. The check at connect time refuses it.
    program = ProgramFactory(slug="rebind")
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    fake_dns(monkeypatch, {"rebind.example": ["93.184.215.14"]})
    target = endpoint_create(
        program=program, actor=STAFF, url=f"http://rebind.example:{receiver.port}/ok", event_types=["reward.unlocked"]
    )
    fake_dns(monkeypatch, {"rebind.example": ["127.0.0.1"]})
    an_event(program)
    [delivery_id] = outbox_dispatch()

    result = delivery_attempt(delivery_id=delivery_id)

    assert result.sent and result.status_code is None and result.retry_in is not None
    assert receiver.received == []
    [attempt] = WebhookDelivery.objects.get(pk=delivery_id).attempt_log.all()
    assert attempt.error == "address refused: not public"
    assert target.pk


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("8.8.8.8", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("fe80::1", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("169.254.1.1", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 (an address checked, not bound)
        ("255.255.255.255", False),
        ("ff02::1", False),
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
    ],
)
def test_which_addresses_are_public(address, public):
    assert address_is_public(address) is public


@pytest.mark.django_db
def test_the_setting_lets_private_addresses_through_for_development(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    target = endpoint_create(
        program=ProgramFactory(slug="dev"), actor=STAFF, url="http://localhost:8000/hook", event_types=["contest.ended"]
    )
    assert target.is_active


@pytest.mark.django_db
def test_unknown_or_no_events_are_refused(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    program = ProgramFactory(slug="events")
    for events in ([], ["signup.created"], "reward.unlocked"):
        with pytest.raises(InvalidInput) as refused:
            endpoint_create(program=program, actor=STAFF, url="http://localhost/h", event_types=events)  # type: ignore[arg-type]
        assert refused.value.field == "event_types"
