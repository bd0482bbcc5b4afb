"""What the Stripe tests share: events signed the way Stripe signs them (with the library's own helper),
and a local stand-in for the Stripe API that records each request (never the network)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import stripe
from django.test import Client
from django.urls import reverse

SECRET = "whsec_" + "T3stS1gn1ngS3cr3tF0rParra1n0123"
OTHER_SECRET = "whsec_" + "An0therS3cr3tNobodyG4veUs999999"
API_KEY = "rk_test_" + "51ParrainTestKey0123456789abcdef"


def signed_headers(payload: str, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    """The Stripe-Signature header Stripe would send: computed by the library that verifies it."""
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)
    return {"HTTP_STRIPE_SIGNATURE": header}


def deliver(program_slug: str, event: dict[str, Any], *, secret: str = SECRET, timestamp: int | None = None) -> Any:
    """POST one event to the program's endpoint, as Stripe does (its own client, no CSRF token)."""
    payload = json.dumps(event, indent=2, ensure_ascii=False)  # as Stripe sends it: pretty-printed UTF-8
    client = Client(enforce_csrf_checks=True, REMOTE_ADDR="54.187.174.169")
    url = reverse("stripe-webhook", kwargs={"slug": program_slug})
    return client.post(
        url, payload, content_type="application/json", **signed_headers(payload, secret=secret, timestamp=timestamp)
    )


def event(
    event_type: str, obj: dict[str, Any], *, event_id: str = "evt_1", created: int | None = None
) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": created or int(time.time()) - 5,
        "livemode": False,
        "type": event_type,
        "data": {"object": obj},
    }


def checkout_session(
    session_id: str = "cs_test_1",
    *,
    amount_total: int = 1990,
    currency: str = "eur",
    email: str | None = "friend@example.org",
    client_reference_id: str | None = None,
    metadata: dict[str, str] | None = None,
    mode: str = "payment",
    payment_status: str = "paid",
    payment_intent: str | None = "pi_1",
    invoice: str | None = None,
    discounts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "id": session_id,
        "object": "checkout.session",
        "amount_total": amount_total,
        "currency": currency,
        "client_reference_id": client_reference_id,
        "customer_details": {"email": email, "name": "Zoë Friend"} if email else None,
        "customer_email": None,
        "metadata": metadata or {},
        "mode": mode,
        "payment_status": payment_status,
        "payment_intent": payment_intent,
        "invoice": invoice,
        "subscription": "sub_1" if mode == "subscription" else None,
        "discounts": discounts or [],
    }


def invoice(
    invoice_id: str = "in_1",
    *,
    amount_paid: int = 990,
    currency: str = "eur",
    email: str = "friend@example.org",
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "id": invoice_id,
        "object": "invoice",
        "amount_paid": amount_paid,
        "currency": currency,
        "customer": "cus_1",
        "customer_email": email,
        "metadata": metadata or {},
        "status": "paid",
        "status_transitions": {"paid_at": int(time.time()) - 10},
        "parent": {"type": "subscription_details", "subscription_details": {"metadata": {}, "subscription": "sub_1"}},
        "discounts": [],
    }


def charge(
    charge_id: str = "ch_1", *, payment_intent: str = "pi_1", refunded: bool = True, amount: int = 1990
) -> dict[str, Any]:
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_refunded": amount if refunded else amount // 2,
        "currency": "eur",
        "payment_intent": payment_intent,
        "refunded": refunded,
    }


# --- A local Stripe API -----------------------------------------------------------------------------------


@dataclass
class StripeStub:
    """Answers POST /v1/coupons and /v1/promotion_codes like Stripe (idempotency keys included: the same key
    answers the first answer again); `fail` makes the next N calls of a path answer 500."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)
    answers: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]

    def answer(self, method: str, path: str, headers: Any, body: str) -> tuple[int, dict[str, Any]]:
        params = dict(parse_qsl(body, keep_blank_values=True))
        key = headers.get("Idempotency-Key") or ""
        with self.lock:
            self.requests.append({"method": method, "path": path, "params": params, "idempotency_key": key,
                                  "authorization": headers.get("Authorization", "")})  # fmt: skip
            if self.fail.get(path, 0) > 0:
                self.fail[path] -= 1
                return 500, {"error": {"type": "api_error", "message": "Stripe is having a bad day."}}
            if key and key in self.answers:
                return self.answers[key]
            number = len(self.requests)
            if path == "/v1/coupons":
                answer = (200, {"id": f"coupon_{number}", "object": "coupon", **params})
            elif path == "/v1/promotion_codes":
                answer = (200, {"id": f"promo_{number}", "object": "promotion_code", "code": params.get("code"),
                                "active": True})  # fmt: skip
            else:
                answer = (404, {"error": {"type": "invalid_request_error", "message": "Unrecognized request URL."}})
            if key:
                self.answers[key] = answer
            return answer


@contextmanager
def stripe_stub() -> Iterator[StripeStub]:
    stub = StripeStub()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            status, answer = stub.answer("POST", self.path, self.headers, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
