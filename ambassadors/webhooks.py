"""Outbound webhooks (design section 7): endpoints, fan-out of the outbox, signed delivery with retries.

How an event travels:

1. The change that matters writes its audit event, and with it an outbox row (core.audit, core.outbox),
   in its own transaction.
2. Once that commits, `outbox_dispatch` (task `ambassadors.webhooks_dispatch`) claims the undispatched rows
   (`SELECT ... FOR UPDATE SKIP LOCKED`), creates one `WebhookDelivery` per subscribed active endpoint of
   the program (unique per endpoint and message: fan-out happens once) and marks the rows dispatched. A
   broker down at commit time loses nothing: the periodic sweep (`ambassadors.webhooks_sweep`, every
   minute) dispatches what is left and enqueues every delivery that is due.
3. Each delivery is its own task (`ambassadors.webhook_deliver`): one slow or dead receiver holds one
   task for at most the timeouts, never another endpoint's delivery. An attempt is claimed by a
   conditional update (the row's `next_attempt_at` moves to the end of a lease and `attempts` grows by
   one), so two workers handed the same delivery send it once; a worker that dies mid-send leaves a lease
   that expires, and the sweep sends it again: at least once to the receiver.
4. The POST is signed with the `standardwebhooks` library (headers `webhook-id`, `webhook-timestamp`,
   `webhook-signature`), sent without following redirects, with short timeouts, only to public addresses
   (checked when the endpoint is saved and again at connect time, on the very address connected to).
   Only 2xx succeeds; 410 disables the endpoint; anything else is tried again after RETRY_SCHEDULE, then
   abandoned. A delivery can be resent (`delivery_resend`).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F
from requests.adapters import HTTPAdapter
from standardwebhooks.webhooks import Webhook
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import create_connection

from ambassadors.models import Program, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from core import clock
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, InvalidInput
from core.models import OutboxMessage
from core.webhook_events import WEBHOOK_EVENTS

logger = logging.getLogger(__name__)

# Seconds to open the connection, and to wait for each read of the answer.
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 5.0
# After the n-th failed attempt, the next one comes RETRY_SCHEDULE[n - 1] later: 10 attempts over about
# three days (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 20 h: 71 h 35 min 5 s), then abandoned.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=20),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
# How long a claimed attempt is its worker's: past it, a worker that died mid-send is presumed gone.
LEASE = timedelta(seconds=60)
EXCERPT = 500
ENDPOINT_FIELDS = ("url", "description", "event_types", "is_active")


# --- Which addresses a delivery may reach (no SSRF) ---------------------------------------------------


class UnsafeAddress(Exception):
    """The host resolves to an address a webhook must not reach (private, loopback, link-local...)."""


def address_is_public(address: str) -> bool:
    """True for a globally routable unicast address; False for private, loopback, link-local, CGNAT,
    multicast, reserved, unspecified, and the IPv4-mapped IPv6 form of any of those."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (`fe80::1%eth0`) is not public
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return address_is_public(str(mapped))
    return bool(
        ip.is_global
        and not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast)
        and not (ip.is_reserved or ip.is_unspecified)
    )


def _private_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", False))


def resolve_checked(host: str, port: int) -> list[tuple[int, str]]:
    """Every address `host` resolves to, as (family, address); UnsafeAddress if any is not public.

    Every one, not the first: a name resolving to a public and a private address is refused, as the
    connection could reach either.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeAddress(f"The host {host} does not resolve.") from exc
    addresses: list[tuple[int, str]] = list(
        dict.fromkeys((int(family), str(sockaddr[0])) for family, _, _, _, sockaddr in infos)
    )
    if not addresses:
        raise UnsafeAddress(f"The host {host} does not resolve.")
    if not _private_allowed():
        for _, address in addresses:
            if not address_is_public(address):
                raise UnsafeAddress(f"The host {host} resolves to a non-public address ({address}).")
    return addresses


def url_check(url: str) -> str:
    """An endpoint URL: http(s), a host, and only public addresses behind it (at save time)."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidInput("Enter a valid http or https URL.", field="url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("Enter a valid http or https URL.", field="url")
    if parts.username or parts.password:
        raise InvalidInput("The URL must not carry credentials.", field="url")
    if len(url) > 500:
        raise InvalidInput("The URL is too long (500 characters at most).", field="url")
    try:
        resolve_checked(parts.hostname, port)
    except UnsafeAddress as exc:
        raise InvalidInput(f"Webhooks are sent only to public addresses: {exc}", field="url") from None
    return url


class _GuardedConnectionMixin:
    """Connect only to an address checked just now: the name is resolved once, each address checked,
    and the socket opened to that address (DNS changing between check and connect changes nothing).
    TLS still verifies the certificate against the host name."""

    _dns_host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any
    host: str

    def _new_conn(self) -> socket.socket:
        try:
            addresses = resolve_checked(self._dns_host, self.port)
        except UnsafeAddress as exc:
            raise NewConnectionError(self, str(exc)) from exc  # type: ignore[arg-type]
        error: OSError | None = None
        for _, address in addresses:
            try:
                return create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.") from exc
            except OSError as exc:
                error = exc
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}")  # type: ignore[arg-type]


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: the guard must see the receiver's address
    adapter = _GuardedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# --- Endpoints ----------------------------------------------------------------------------------------


def secret_generate() -> str:
    """A Standard Webhooks secret: `whsec_` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _event_types_check(value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not value:
        raise InvalidInput("Choose at least one event.", field="event_types")
    unknown = sorted({str(v) for v in value} - set(WEBHOOK_EVENTS))
    if unknown:
        raise InvalidInput(f"Unknown event: {unknown[0]}.", field="event_types")
    return [name for name in WEBHOOK_EVENTS if name in value]


def _endpoint_snapshot(endpoint: WebhookEndpoint) -> dict[str, Any]:
    # Never the secret: the audit trail is read by people who must not sign deliveries.
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "is_active": endpoint.is_active,
        "disabled_reason": endpoint.disabled_reason,
    }


def endpoint_create(
    *, program: Program, actor: Actor, url: str, event_types: list[str], description: str = ""
) -> WebhookEndpoint:
    url = url_check(url)
    types = _event_types_check(event_types)
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            program=program,
            url=url,
            description=(description or "").strip()[:200],
            event_types=types,
            secret=secret_generate(),
            created_at=clock.now(),
        )
        audit_record(
            actor=actor,
            action="webhook_endpoint.created",
            object_type="webhook_endpoint",
            object_id=endpoint.pk,
            program_id=program.pk,
            after=_endpoint_snapshot(endpoint),
        )
    return endpoint


def endpoint_update(*, endpoint: WebhookEndpoint, actor: Actor, **fields: Any) -> WebhookEndpoint:
    """Change the URL, description, events, or switch it on or off (switching on clears the reason)."""
    unknown = sorted(set(fields) - set(ENDPOINT_FIELDS))
    if unknown:
        raise InvalidInput("This field cannot be changed.", field=unknown[0])
    if "url" in fields:
        fields["url"] = url_check(fields["url"])
    if "event_types" in fields:
        fields["event_types"] = _event_types_check(fields["event_types"])
    if "description" in fields:
        fields["description"] = (fields["description"] or "").strip()[:200]
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        before = _endpoint_snapshot(locked)
        for name, value in fields.items():
            setattr(locked, name, value)
        if "is_active" in fields:
            if locked.is_active:
                locked.disabled_reason = ""
            elif before["is_active"]:
                locked.disabled_reason = f"Disabled by {actor.label}"[:200]
        after = _endpoint_snapshot(locked)
        if after == before:
            return locked
        locked.save()
        audit_record(
            actor=actor,
            action="webhook_endpoint.updated",
            object_type="webhook_endpoint",
            object_id=locked.pk,
            program_id=locked.program_id,
            before=before,
            after=after,
        )
    if locked.is_active and not before["is_active"]:
        # Deliveries that waited while it was off are due again.
        transaction.on_commit(lambda: _enqueue_due(endpoint_id=locked.pk))
    return locked


def endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    with transaction.atomic():
        before = _endpoint_snapshot(endpoint)
        audit_record(
            actor=actor,
            action="webhook_endpoint.deleted",
            object_type="webhook_endpoint",
            object_id=endpoint.pk,
            program_id=endpoint.program_id,
            before=before,
        )
        endpoint.delete()


# --- Fan-out: outbox rows to deliveries -----------------------------------------------------------------


def outbox_dispatch(*, batch: int = 200) -> list[int]:
    """Turn undispatched outbox rows into deliveries, one per subscribed active endpoint; returns the ids
    of the deliveries created. Concurrent callers take different rows (SKIP LOCKED)."""
    created: list[int] = []
    while True:
        with transaction.atomic():
            messages = list(
                OutboxMessage.objects.select_for_update(skip_locked=True)
                .filter(dispatched_at__isnull=True)
                .order_by("id")[:batch]
            )
            if not messages:
                return created
            programs = {m.program_id for m in messages if m.program_id is not None}
            endpoints = list(WebhookEndpoint.objects.filter(program_id__in=programs, is_active=True))
            now = clock.now()
            rows = [
                WebhookDelivery(
                    endpoint=endpoint,
                    message=message,
                    event_id=f"msg_{message.pk}",
                    next_attempt_at=now,
                    created_at=now,
                )
                for message in messages
                for endpoint in endpoints
                if endpoint.program_id == message.program_id and message.event in endpoint.event_types
            ]
            WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
            ids = [m.pk for m in messages]
            OutboxMessage.objects.filter(pk__in=ids).update(dispatched_at=now)
            fresh = list(
                WebhookDelivery.objects.filter(
                    message_id__in=ids, attempts=0, status=WebhookDelivery.Status.PENDING
                ).values_list("pk", flat=True)
            )
            created.extend(fresh)
        if len(messages) < batch:
            return created


def deliveries_due(*, limit: int = 500) -> list[int]:
    """Pending deliveries whose attempt is due (or whose last attempt's lease ran out)."""
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=clock.now(), endpoint__is_active=True
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def _enqueue_due(*, endpoint_id: int | None = None) -> None:
    from ambassadors.tasks import webhook_deliver

    due = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=clock.now(), endpoint__is_active=True
    )
    if endpoint_id is not None:
        due = due.filter(endpoint_id=endpoint_id)
    for delivery_id in due.values_list("pk", flat=True)[:500]:
        try:
            webhook_deliver.delay(delivery_id)
        except Exception:
            logger.warning("webhook delivery %s not enqueued: the sweep will", delivery_id)
            return


def outbox_announced(**_: Any) -> None:
    """Receiver of core.outbox.outbox_committed: fan out now (the sweep repairs a broker outage)."""
    from ambassadors.tasks import webhooks_dispatch

    try:
        webhooks_dispatch.delay()
    except Exception:
        logger.warning("webhook dispatch not enqueued: the periodic sweep will dispatch")


# --- Delivery -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptResult:
    """What one call of `delivery_attempt` did: `sent` False when it had nothing to send (not due,
    claimed by another worker, finished, endpoint off); `retry_in` when another attempt is scheduled."""

    sent: bool
    status: str = ""
    status_code: int | None = None
    retry_in: timedelta | None = None


def payload_body(message: OutboxMessage) -> str:
    return json.dumps(message.payload, separators=(",", ":"), sort_keys=True)


def sign(*, secret: str, msg_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt, signed by the library."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id=msg_id, timestamp=timestamp, data=body),
    }


def _excerpt(text: str) -> str:
    return " ".join(text.split())[:EXCERPT]


def _post(url: str, body: str, headers: dict[str, str]) -> tuple[int | None, str, str]:
    """(status code or None, error, response excerpt)."""
    session = _session()
    try:
        response = session.post(
            url,
            data=body.encode(),
            headers=headers,
            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            allow_redirects=False,
            stream=True,
        )
        try:
            raw = next(response.iter_content(EXCERPT * 2), b"")
        except requests.RequestException:
            raw = b""
        finally:
            response.close()
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
        return response.status_code, "", _excerpt(text)
    except requests.Timeout:
        return None, "timeout", ""
    except requests.ConnectionError as exc:
        reason = str(exc)
        if "non-public address" in reason or "does not resolve" in reason:
            return None, "address refused: not public", ""
        return None, _excerpt(f"connection failed: {reason}")[:200], ""
    except requests.RequestException as exc:
        return None, _excerpt(f"request failed: {exc}")[:200], ""
    finally:
        session.close()


def delivery_attempt(*, delivery_id: int) -> AttemptResult:
    """Send one attempt of a delivery if it is due and this caller claims it; record it; schedule the
    next one or finish it. Safe to call any number of times, from any number of workers."""
    now = clock.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id,
        status=WebhookDelivery.Status.PENDING,
        next_attempt_at__lte=now,
        endpoint__is_active=True,
    ).update(next_attempt_at=now + LEASE, attempts=F("attempts") + 1)
    if not claimed:
        return AttemptResult(sent=False)
    delivery = WebhookDelivery.objects.select_related("endpoint", "message").filter(pk=delivery_id).first()
    if delivery is None:  # its endpoint was deleted since the claim
        return AttemptResult(sent=False)
    endpoint = delivery.endpoint
    body = payload_body(delivery.message)
    headers = {
        "content-type": "application/json",
        "user-agent": "Parrain-Webhooks/1",
        **sign(secret=endpoint.secret, msg_id=delivery.event_id, timestamp=now, body=body),
    }
    started = time.monotonic()
    code, error, excerpt = _post(endpoint.url, body, headers)
    duration_ms = int((time.monotonic() - started) * 1000)
    finished = clock.now()
    update: dict[str, Any] = {"last_status_code": code, "last_response": (excerpt or error)[:EXCERPT]}
    retry_in: timedelta | None = None
    if code is not None and 200 <= code < 300:
        update |= {"status": WebhookDelivery.Status.SUCCEEDED, "next_attempt_at": None}
    elif code == 410:
        update |= {"status": WebhookDelivery.Status.FAILED, "next_attempt_at": None}
    elif delivery.attempts >= MAX_ATTEMPTS:
        update |= {"status": WebhookDelivery.Status.ABANDONED, "next_attempt_at": None}
    else:
        retry_in = RETRY_SCHEDULE[delivery.attempts - 1]
        update |= {"next_attempt_at": finished + retry_in}
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            at=now,
            status_code=code,
            error=error[:200],
            duration_ms=duration_ms,
            response_excerpt=excerpt,
        )
        # Only the claim's own state: a resend in the meantime (attempts back to 0) is left alone.
        WebhookDelivery.objects.filter(
            pk=delivery.pk, status=WebhookDelivery.Status.PENDING, attempts=delivery.attempts
        ).update(**update)
        if code == 410:
            WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
                is_active=False, disabled_reason="The receiver answered 410 Gone."
            )
            audit_record(
                actor=Actor.task("ambassadors.webhook_deliver"),
                action="webhook_endpoint.disabled",
                object_type="webhook_endpoint",
                object_id=endpoint.pk,
                program_id=endpoint.program_id,
                before={"is_active": True},
                after={"is_active": False, "disabled_reason": "The receiver answered 410 Gone."},
            )
    return AttemptResult(sent=True, status=str(update.get("status", "pending")), status_code=code, retry_in=retry_in)


def delivery_resend(*, delivery: WebhookDelivery, actor: Actor) -> WebhookDelivery:
    """Send a delivery again from the start of the schedule, whatever became of it (its attempts stay
    in the log). The receiver sees the same `webhook-id`, so it can tell a resend from a new event."""
    if not WebhookEndpoint.objects.filter(pk=delivery.endpoint_id, is_active=True).exists():
        raise Conflict("This endpoint is disabled: enable it before resending.")
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.PENDING, attempts=0, next_attempt_at=clock.now()
        )
        audit_record(
            actor=actor,
            action="webhook_delivery.resent",
            object_type="webhook_delivery",
            object_id=delivery.pk,
            program_id=delivery.endpoint.program_id,
            before={"status": delivery.status, "attempts": delivery.attempts},
        )

        def enqueue() -> None:
            from ambassadors.tasks import webhook_deliver

            try:
                webhook_deliver.delay(delivery.pk)
            except Exception:
                logger.warning("webhook delivery %s not enqueued: the sweep will", delivery.pk)

        transaction.on_commit(enqueue)
    delivery.refresh_from_db()
    return delivery
