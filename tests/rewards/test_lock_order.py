"""The lock order of core/locking.py, on PostgreSQL with real threads (one connection each).

Each race pins the interleaving that deadlocked in production: a recalculation holds an ambassador's
counters and is about to create a referee's welcome voucher (whose foreign key to the signup is checked
at COMMIT), while a refund or an override already holds that signup and waits for the same counters.
The test waits until the second thread really waits for the lock (pg_stat_activity), then lets the
recalculation commit. Before the lock order, PostgreSQL broke that cycle by killing one of them: a 500.
The tests also check that no attempt was retried: the order prevents the deadlock, the retry only
absorbs what no order can (below, two transactions taking two rows in opposite order).
"""

from __future__ import annotations

import logging
import threading
from decimal import Decimal
from unittest import mock

import psycopg
import pytest
from django.db import OperationalError, connection, transaction
from django.db.models import F

from ambassadors.models import AmbassadorCounters
from core.models import AuditEvent
from referrals.models import Conversion, Signup
from referrals.services import conversion_record, conversion_refund, signup_override
from rewards.models import RewardGrant
from rewards.services import ambassador_recalculate
from tests.factories import enroll
from tests.rewards.conftest import SHOP, subscribe, voucher_tier
from tests.rewards.interleaving import Threads, around_statement, wait_blocked

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# The statement with which a recalculation takes its ambassador's counters row.
COUNTERS_LOCKED = r'FROM "ambassadors_ambassadorcounters".* FOR (NO KEY )?UPDATE'


@pytest.fixture
def messages_lost():
    """Recalculation messages are lost: each test runs the recalculation itself, in its own thread."""
    with mock.patch("rewards.services.recalculation_enqueue") as enqueue:
        yield enqueue


@pytest.fixture
def double_sided(program):
    """Referees get a welcome voucher; the ambassador's own reward is far away (5 friends)."""
    program.hold_period_days = 0  # purchases are approved as they are recorded
    program.save()
    return voucher_tier(program, threshold=5, referee_reward_type="percent_voucher", referee_reward_value=Decimal(10))


@pytest.fixture
def retries(caplog):
    """The retry helper's warnings: one per attempt that hit a deadlock or a serialization failure."""
    caplog.set_level(logging.WARNING, logger="core.locking")
    return lambda: [r for r in caplog.records if r.name == "core.locking"]


def recalculation_paused_holding_counters(ambassador_id: int, go: threading.Event, held: threading.Event):
    """A recalculation that stops right after locking the ambassador's counters, until `go`."""

    def pause() -> None:
        held.set()
        assert go.wait(20), "never released"

    def run():
        with around_statement(COUNTERS_LOCKED, after=pause):
            return ambassador_recalculate(ambassador_id=ambassador_id)

    return run


def test_a_refund_and_a_recalculation_of_the_same_ambassador_do_not_deadlock(
    program, ambassador, double_sided, messages_lost, retries
):
    friend = subscribe(program, ambassador)
    conversion_record(
        program=program, actor=SHOP, external_id="order-1", email=friend.email, amount="30.00", currency="EUR"
    )
    assert Conversion.objects.get().status == "approved"
    assert not RewardGrant.objects.exists(), "the lost message left the referee without a welcome voucher"
    go, held = threading.Event(), threading.Event()
    threads = Threads()

    threads.start("recalculation", recalculation_paused_holding_counters(ambassador.pk, go, held))
    assert held.wait(20)
    threads.start(
        "refund",
        lambda: conversion_refund(program=program, external_id="order-1", actor=SHOP, reason="chargeback"),
    )
    wait_blocked(threads.pid("refund"), "the refund to wait for the counters the recalculation holds")
    go.set()  # the recalculation creates the welcome voucher and commits, checking its key to the signup
    threads.join()

    assert threads.errors == {}
    assert Conversion.objects.get().status == "reversed"
    assert AuditEvent.objects.filter(action="conversion.reversed").count() == 1
    assert AmbassadorCounters.objects.get(ambassador=ambassador).conversions == 0
    assert RewardGrant.objects.get().referee_signup_id == friend.pk
    assert retries() == [], "the lock order, not a retry, kept them apart"


def test_an_override_and_a_recalculation_of_the_same_ambassador_do_not_deadlock(
    program, ambassador, double_sided, messages_lost, retries
):
    bob = enroll(program, "bob@example.com")
    friend = subscribe(program, ambassador)
    go, held = threading.Event(), threading.Event()
    threads = Threads()

    threads.start("recalculation", recalculation_paused_holding_counters(ambassador.pk, go, held))
    assert held.wait(20)
    threads.start(
        "override",
        lambda: signup_override(signup=friend, ambassador=bob, reason="Bob sent the link first", actor=SHOP),
    )
    wait_blocked(threads.pid("override"), "the override to wait for the counters the recalculation holds")
    go.set()
    threads.join()

    assert threads.errors == {}
    assert Signup.objects.get().ambassador_id == bob.pk
    assert AuditEvent.objects.filter(action="signup.overridden").count() == 1
    counters = {c.ambassador_id: c.qualified for c in AmbassadorCounters.objects.all()}
    assert counters == {ambassador.pk: 0, bob.pk: 1}
    assert retries() == []


# --- The retry helper, on a real deadlock ---------------------------------------------------------------


def deadlocking_pair(first: AmbassadorCounters, second: AmbassadorCounters, *, outer_atomic: bool):
    """Two transactions updating the same two counters rows in opposite order, both holding their first row
    when they ask for the second: PostgreSQL must abort one of them."""
    from core.locking import transaction_retry

    both_hold_one = threading.Barrier(2, timeout=20)
    attempts: dict[str, int] = {"a": 0, "b": 0}
    committed: list[str] = []

    @transaction_retry(max_attempts=3)
    def move(name: str, rows: tuple[int, int]) -> str:
        attempts[name] += 1
        with transaction.atomic():
            transaction.on_commit(lambda: committed.append(name))
            AmbassadorCounters.objects.filter(pk=rows[0]).update(signups=F("signups") + 1)
            if attempts[name] == 1:
                both_hold_one.wait()
            AmbassadorCounters.objects.filter(pk=rows[1]).update(signups=F("signups") + 1)
        return name

    def call(name: str, rows: tuple[int, int]):
        def run():
            if outer_atomic:
                with transaction.atomic():
                    return move(name, rows)
            return move(name, rows)

        return run

    threads = Threads()
    threads.start("a", call("a", (first.pk, second.pk)))
    threads.start("b", call("b", (second.pk, first.pk)))
    threads.join()
    return threads, attempts, committed


def test_the_retry_helper_runs_a_deadlocked_transaction_again_and_both_succeed(program, retries):
    rows = [AmbassadorCounters.objects.get(ambassador=enroll(program, f"a{i}@example.com")) for i in range(2)]

    threads, attempts, committed = deadlocking_pair(*rows, outer_atomic=False)

    assert threads.errors == {}
    assert sorted(threads.results.values()) == ["a", "b"]
    assert sorted(attempts.values()) == [1, 2], "the deadlock's victim ran once more"
    assert sorted(committed) == ["a", "b"], "the failed attempt's on_commit callbacks were dropped with it"
    assert [c.signups for c in AmbassadorCounters.objects.order_by("pk")] == [2, 2]
    assert len(retries()) == 1 and "deadlock" in retries()[0].getMessage()


def test_the_retry_helper_never_retries_part_of_an_outer_transaction(program, retries):
    rows = [AmbassadorCounters.objects.get(ambassador=enroll(program, f"a{i}@example.com")) for i in range(2)]

    threads, attempts, committed = deadlocking_pair(*rows, outer_atomic=True)

    assert list(attempts.values()) == [1, 1]
    (victim,) = threads.errors.values()
    assert isinstance(victim, OperationalError)
    assert isinstance(victim.__cause__, psycopg.errors.DeadlockDetected)
    assert len(committed) == 1
    assert retries() == []


def test_after_its_last_attempt_the_retry_helper_raises_a_domain_error():
    from core.errors import ParrainError
    from core.locking import transaction_retry

    calls = []

    @transaction_retry(max_attempts=3, backoff=0)
    def always_deadlocked() -> None:
        calls.append(1)
        with connection.cursor() as cursor:
            # A deadlock as PostgreSQL reports it, without a second transaction: SQLSTATE 40P01.
            cursor.execute("DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END $$")

    assert not connection.in_atomic_block
    with pytest.raises(ParrainError) as raised:
        always_deadlocked()

    assert len(calls) == 3
    assert raised.value.status_code == 503
    assert isinstance(raised.value.__cause__.__cause__, psycopg.errors.DeadlockDetected)
