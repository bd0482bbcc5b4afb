"""The velocity limit: more signups from one address or visitor than the program allows go to review.

The concurrent tests run on PostgreSQL with real threads, one connection each. Every thread is held at a
barrier inside `Signup.objects.create`, after it has counted the recent signups: without a lock taken
before the count, all sixteen count the same few rows and all qualify. With it, a thread counts only
once the one before it has committed, so the barrier never fills and each passes once it gives up.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.test import Client

from ambassadors.models import ProgramCounters
from referrals.models import Signup
from tests.conftest import bearer
from tests.referrals.helpers import at_once, counters_of

THREADS = 16


@contextlib.contextmanager
def held_after_counting(parties: int) -> Iterator[None]:
    """Nobody inserts a signup before everybody has screened theirs (or the gate gives up, after 5 s)."""
    gate = threading.Barrier(parties, timeout=5)
    real_create = Signup.objects.create

    def create(**kwargs: Any) -> Any:
        with contextlib.suppress(threading.BrokenBarrierError):
            gate.wait()
        return real_create(**kwargs)

    with mock.patch.object(Signup.objects, "create", side_effect=create):
        yield


def held_message(number: str, limit: int) -> str:
    return f"{number} signup from the same IP address or visitor in 24 hours; the limit is {limit}: held for review."


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "source",
    [pytest.param({"referee_ip": "203.0.113.9"}, id="one-ip"), pytest.param({"visitor_id": "v-1"}, id="one-visitor")],
)
def test_sixteen_concurrent_signups_from_one_source_qualify_only_up_to_the_limit(
    program, ambassador, track_key, source
):
    assert program.velocity_limit == 5
    path = f"/api/v1/programs/{program.slug}/signups"

    def sign_up(client: Client, i: int) -> Any:
        body = {"email": f"friend{i}@example.org", "referral_code": ambassador.code, **source}
        return client.post(path, json.dumps(body), content_type="application/json", **bearer(track_key))

    with held_after_counting(THREADS):
        responses = at_once(sign_up, THREADS)

    assert [r.status_code for r in responses] == [201] * THREADS
    assert Counter(r.json()["status"] for r in responses) == {"qualified": 5, "pending_review": 11}
    held = Signup.objects.filter(status=Signup.Status.PENDING_REVIEW)
    assert set(held.values_list("reason", flat=True)) == {Signup.Reason.VELOCITY}
    # Serialised, each held signup knew exactly how many came before it: the 6th to the 16th.
    assert sorted(held.values_list("reason_detail", flat=True)) == sorted(
        held_message(f"{n}th", 5) for n in range(6, 17)
    )
    assert counters_of(ambassador).qualified == 5
    assert ProgramCounters.objects.get(program=program).qualified == 5


@pytest.mark.django_db
def test_the_signup_over_the_limit_says_which_one_it_is_and_what_the_limit_is(program, ambassador, tracker):
    path = f"/api/v1/programs/{program.slug}/signups"
    for i in range(6):
        tracker.post(path, {"email": f"f{i}@example.org", "referee_ip": "203.0.113.9"}, format="json")

    sixth = Signup.objects.get(email="f5@example.org")
    assert (sixth.status, sixth.reason) == (Signup.Status.PENDING_REVIEW, Signup.Reason.VELOCITY)
    assert sixth.reason_detail == held_message("6th", 5)


@pytest.mark.django_db
@pytest.mark.parametrize(("limit", "number"), [(1, "2nd"), (2, "3rd"), (20, "21st"), (21, "22nd"), (11, "12th")])
def test_the_held_signup_is_counted_in_plain_words(program, tracker, limit, number):
    program.velocity_limit = limit
    program.save()
    path = f"/api/v1/programs/{program.slug}/signups"
    for i in range(limit + 1):
        tracker.post(path, {"email": f"f{i}@example.org", "visitor_id": "v-1"}, format="json")

    assert Signup.objects.get(email=f"f{limit}@example.org").reason_detail == held_message(number, limit)
