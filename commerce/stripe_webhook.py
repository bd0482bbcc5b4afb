"""POST /integrations/stripe/<program-slug>/webhook: Stripe's events for one program.

The signature (`Stripe-Signature`) is verified by the `stripe` library with the program's signing secret
and its default tolerance (5 minutes): a bad, missing or too old signature answers 400 and records nothing.
A verified event is applied by commerce.stripe_events and answers 200, also when Parrain has no use for it
(Stripe would otherwise retry it for days). Bad signatures count against the caller's address: past
RATE_LIMIT_STRIPE_WEBHOOK_FAILURES, 429 with Retry-After.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import stripe
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ambassadors.models import Program
from commerce.models import StripeAccount
from commerce.stripe_accounts import stripe_event_seen
from commerce.stripe_events import stripe_event_handle
from core.ratelimits import rate_limit_wait
from referrals.client import client_ip

logger = logging.getLogger(__name__)

FAILURES_GROUP = "parrain.stripe_webhook_failures"
MAX_BODY = 512 * 1024  # Stripe's events are a few kB; its largest well under this


def _client_ip_key(group: str, request: Any) -> str:
    return client_ip(request) or ""


def _too_many_failures(request: HttpRequest, *, increment: bool) -> HttpResponse | None:
    wait = rate_limit_wait(
        request,
        group=FAILURES_GROUP,
        key=_client_ip_key,
        rate=settings.RATE_LIMIT_STRIPE_WEBHOOK_FAILURES,
        increment=increment,
    )
    if wait is None:
        return None
    response = JsonResponse({"detail": "Too many invalid signatures from this address. Try again later."}, status=429)
    response["Retry-After"] = str(wait)
    return response


def _refused(request: HttpRequest, message: str) -> HttpResponse:
    return _too_many_failures(request, increment=True) or JsonResponse({"detail": message}, status=400)


@csrf_exempt  # Stripe signs its requests; it has no CSRF token to send
@require_POST
def stripe_webhook(request: HttpRequest, slug: str) -> HttpResponse:
    if limited := _too_many_failures(request, increment=False):
        return limited
    program = Program.objects.filter(slug=slug).first()
    if program is None:
        raise Http404("No program with this slug.")
    secret = StripeAccount.objects.filter(program=program).values_list("webhook_secret", flat=True).first()
    if not secret:
        return _refused(request, "This program has no Stripe signing secret yet: staff set it in the console.")
    if len(request.body) > MAX_BODY:
        return _refused(request, "The body is too large for a Stripe event.")
    try:
        payload = request.body.decode("utf-8")
        # The library checks the HMAC and that the timestamp is within its tolerance (replays).
        stripe.Webhook.construct_event(payload, request.headers.get("Stripe-Signature", ""), secret)
        event = json.loads(payload)
    except (stripe.SignatureVerificationError, UnicodeDecodeError):
        return _refused(request, "The Stripe-Signature header does not verify with this program's signing secret.")
    except ValueError:
        return _refused(request, "The body is not a Stripe event.")
    if not isinstance(event, dict):
        return JsonResponse({"detail": "The body is not a Stripe event."}, status=400)
    stripe_event_seen(program=program, event_type=str(event.get("type", "")))
    outcome = stripe_event_handle(program=program, event=event)
    logger.info("stripe event %s (%s) for %s: %s", event.get("id"), event.get("type"), program.slug, outcome.note)
    return JsonResponse({"received": True, "recorded": outcome.recorded, "note": outcome.note})
