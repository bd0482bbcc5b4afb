"""Stripe delivers at least once, sometimes the same event twice at the same moment: on PostgreSQL, with real
threads and one connection each, the same event delivered eight times at once is one signup and one
conversion (the services' unique constraints settle it), and every delivery answers 200."""

from __future__ import annotations

from collections import Counter

import pytest

from commerce.models import StripeAccount, StripePaymentLink
from core.models import AuditEvent
from referrals.models import Conversion, Signup
from tests.commerce.stripe_support import SECRET, checkout_session, deliver, event
from tests.referrals.helpers import at_once
from tests.referrals.test_concurrency import held_at_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8


def test_the_same_event_delivered_eight_times_at_once_is_one_conversion(program, ambassador):
    StripeAccount.objects.create(program=program, webhook_secret=SECRET)
    body = event("checkout.session.completed", checkout_session(client_reference_id=ambassador.code))

    with held_at_create(Conversion.objects, THREADS) as create:
        responses = at_once(lambda _client, _i: deliver(program.slug, body), THREADS)

    assert create.call_count > 1, "more than one delivery got past the existence check: the race was real"
    assert Counter(r.status_code for r in responses) == {200: THREADS}
    assert Signup.objects.count() == 1 and Conversion.objects.count() == 1
    assert AuditEvent.objects.filter(action="conversion.recorded").count() == 1
    assert AuditEvent.objects.filter(action="signup.recorded").count() == 1
    assert list(StripePaymentLink.objects.values_list("stripe_id", flat=True)) == ["pi_1"]
