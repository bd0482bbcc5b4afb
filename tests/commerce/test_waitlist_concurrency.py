"""Waitlist places under concurrent referrals and admissions, on PostgreSQL with real threads: every reading
is a line numbered 1..n with no gap and no tie, equal to the rule recomputed from the rows; two admissions at
once never admit one subscriber twice."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from ambassadors.models import Ambassador
from commerce.models import WaitlistAdmission
from commerce.waitlist import WaitlistLine, waitlist_admit, waitlist_configure, waitlist_lines
from core.actors import Actor
from referrals.models import Signup
from referrals.services import signup_record
from tests.commerce import support_embed_waitlist as support
from tests.conftest import bearer
from tests.factories import enroll
from tests.referrals.helpers import at_once

key = support.key

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 12
PLACES = 3
STAFF = Actor.system("test")


def expected_line(program: Any) -> list[int]:
    """The rule, recomputed in Python from the rows: signup order minus PLACES x qualified referrals."""
    signups = list(Signup.objects.filter(program=program).order_by("created_at", "id"))
    order = {s.pk: n for n, s in enumerate(signups, start=1)}
    mailbox_of = dict(Ambassador.objects.filter(program=program).values_list("pk", "email_canonical"))
    referrals: dict[str, int] = {}
    for s in signups:
        if s.ambassador_id and s.status == Signup.Status.QUALIFIED:
            referrals[mailbox_of[s.ambassador_id]] = referrals.get(mailbox_of[s.ambassador_id], 0) + 1
    admitted = set(WaitlistAdmission.objects.values_list("signup_id", flat=True))
    waiting = [s for s in signups if s.status != Signup.Status.REJECTED and s.pk not in admitted]
    waiting.sort(key=lambda s: (order[s.pk] - PLACES * referrals.get(s.email_canonical, 0), s.created_at, s.pk))
    return [s.pk for s in waiting]


def assert_a_line(lines: list[WaitlistLine]) -> None:
    assert [line.position for line in lines] == list(range(1, len(lines) + 1))
    assert len({line.signup_id for line in lines}) == len(lines)
    assert {line.total for line in lines} <= {len(lines)}


def test_places_stay_a_permutation_while_referrals_pour_in(program):
    waitlist_configure(program=program, actor=STAFF, enabled=True, places_per_referral=PLACES)
    referrers = []
    for i in range(6):
        signup_record(program=program, email=f"early{i}@example.org", actor=STAFF)
        referrers.append(enroll(program, f"early{i}@example.org"))
    track = key(program, "track")
    readings: list[list[WaitlistLine]] = []
    stop = threading.Event()

    def read_while_writing() -> None:
        try:
            while not stop.is_set():
                readings.append(waitlist_lines(program, limit=10_000))
        finally:
            connection.close()

    def sign_up(client: Client, i: int) -> Any:
        body = {"email": f"friend{i}@example.org", "referral_code": referrers[i % 5].code}
        if i % 4 == 3:
            body["email"] = f"friend{i}@mailinator.com"  # held for review: moves nobody
        return client.post(
            f"/api/v1/programs/{program.slug}/signups", json.dumps(body), content_type="application/json",
            **bearer(track),
        )  # fmt: skip

    reader = threading.Thread(target=read_while_writing)
    reader.start()
    try:
        responses = at_once(sign_up, THREADS)
    finally:
        stop.set()
        reader.join(timeout=60)

    assert [r.status_code for r in responses] == [201] * THREADS
    assert readings, "the reader read nothing"
    for reading in readings:
        assert_a_line(reading)
    final = waitlist_lines(program, limit=10_000)
    assert_a_line(final)
    assert len(final) == 6 + THREADS
    assert [line.signup_id for line in final] == expected_line(program)
    # Five referrers brought friends; the sixth brought none and fell behind those who did.
    by_email = {line.email: line for line in final}
    # Friend i went to referrer i % 5, and every fourth was held for review: that one moves nobody.
    expected = {r: sum(1 for i in range(THREADS) if i % 5 == r and i % 4 != 3) for r in range(6)}
    assert {r: by_email[f"early{r}@example.org"].referrals for r in range(6)} == expected
    assert (
        sum(line.referrals for line in final)
        == Signup.objects.filter(program=program, status=Signup.Status.QUALIFIED, ambassador__isnull=False).count()
    )


def test_two_admissions_at_once_admit_different_people(program):
    waitlist_configure(program=program, actor=STAFF, enabled=True, places_per_referral=PLACES)
    for i in range(10):
        signup_record(program=program, email=f"w{i}@example.org", actor=STAFF)
    top_six = [line.signup_id for line in waitlist_lines(program, limit=6)]

    def admit(client: Client, i: int) -> list[int]:
        return [a.signup_id for a in waitlist_admit(program=program, count=3, actor=STAFF)]

    batches = at_once(admit, 2)

    assert sorted(batches[0] + batches[1]) == sorted(top_six)
    assert WaitlistAdmission.objects.count() == 6
    assert_a_line(waitlist_lines(program, limit=100))
    assert len(waitlist_lines(program, limit=100)) == 4


def test_the_line_is_never_planned_as_nested_loops(program):
    """Fresh tables have no statistics (as right after a launch's burst): the planner then believed each side
    held one row and looped over every signup once per subscriber, minutes for 20,000 of them. The query
    runs with nested loops off: every step is a scan, a sort or a hash join."""
    from commerce import waitlist

    waitlist_configure(program=program, actor=STAFF, enabled=True, places_per_referral=PLACES)
    for i in range(30):
        signup_record(program=program, email=f"p{i}@example.org", actor=STAFF)

    with waitlist._line_cursor() as cursor:
        cursor.execute("EXPLAIN " + waitlist._sql(one=False, limited=True), [*waitlist._params(program, 3, 0), 50])
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "Nested Loop" not in plan, plan
    # Sides joined whole, by hashing or merging (which one the planner picks depends on the statistics).
    assert re.search(r"(Hash|Merge) (Left|Right) Join", plan), plan
