"""Races on PostgreSQL, with real threads and one connection each: the database settles them.

Each race first holds every thread at a barrier inside `create`, after the "already there?" check: so
all twenty really did pass that check, and only the unique constraint stands between them and a
duplicate. Without it this is the race that would record twenty rows.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from django.test import Client

from ambassadors.models import AmbassadorCounters, ProgramCounters
from core.actors import Actor
from core.models import AuditEvent
from referrals.models import Conversion, Signup
from referrals.services import signup_record
from tests.conftest import bearer
from tests.referrals.helpers import at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 20


def held_at_create(manager: Any, parties: int) -> Any:
    """Patch manager.create so nobody inserts before everybody has checked for an existing row."""
    gate = threading.Barrier(parties, timeout=5)
    real_create = manager.create

    def create(**kwargs: Any) -> Any:
        # A thread that found the row already never gets here: a short gate must not hang the others.
        with contextlib.suppress(threading.BrokenBarrierError):
            gate.wait()
        return real_create(**kwargs)

    return mock.patch.object(manager, "create", side_effect=create)


def race(call: Callable[[Client], Any], threads: int = THREADS) -> list[int]:
    return [response.status_code for response in at_once(lambda client, _i: call(client), threads)]


def post_json(client: Client, path: str, body: dict[str, Any], key: str) -> Any:
    return client.post(path, json.dumps(body), content_type="application/json", **bearer(key))


def test_twenty_identical_signups_at_once_make_one_row_one_201_and_nineteen_200(program, ambassador, track_key):
    body = {"email": "friend@example.org", "referral_code": ambassador.code}
    path = f"/api/v1/programs/{program.slug}/signups"

    with held_at_create(Signup.objects, THREADS) as create:
        statuses = race(lambda client: post_json(client, path, body, track_key))

    assert create.call_count == THREADS, "every thread got past the existence check: the race was real"

    assert Counter(statuses) == {201: 1, 200: THREADS - 1}
    assert Signup.objects.count() == 1
    assert AuditEvent.objects.filter(action="signup.recorded").count() == 1
    assert ProgramCounters.objects.get(program=program).signups == 1
    assert AmbassadorCounters.objects.get(ambassador=ambassador).qualified == 1


def test_twenty_identical_conversions_at_once_make_one_row_one_201_and_nineteen_200(program, ambassador, track_key):
    program.hold_period_days = 0
    program.save()
    signup_record(program=program, email="friend@example.org", referral_code=ambassador.code, actor=Actor.system())
    body = {"external_id": "order-1", "email": "friend@example.org", "amount": "19.90", "currency": "EUR"}
    path = f"/api/v1/programs/{program.slug}/conversions"

    with held_at_create(Conversion.objects, THREADS) as create:
        statuses = race(lambda client: post_json(client, path, body, track_key))

    assert create.call_count == THREADS, "every thread got past the existence check: the race was real"

    assert Counter(statuses) == {201: 1, 200: THREADS - 1}
    assert Conversion.objects.count() == 1
    assert AuditEvent.objects.filter(action="conversion.recorded").count() == 1
    assert AuditEvent.objects.filter(action="conversion.approved").count() == 1
    counters = AmbassadorCounters.objects.get(ambassador=ambassador)
    assert (counters.conversions, str(counters.converted_amount)) == (1, "19.90")
