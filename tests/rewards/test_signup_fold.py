"""The program's counters are folded in by workers: signups never queue on the program's one counters row.

A signup inserts a ProgramCounterDelta row in its own transaction; program_recalculate (the task each
signup enqueues after commit, the 30 s sweep `rewards.fold_counts`, the reconciliation) deletes the
committed delta rows and adds them to the counters row under that row's lock, in the transaction that
then records the milestones. On PostgreSQL, with real threads and one connection each.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ambassadors.models import ProgramCounterDelta, ProgramCounters
from core.models import AuditEvent
from referrals.models import Signup
from referrals.services import signup_record
from rewards import tasks
from rewards.models import Milestone
from rewards.services import program_recalculate, reconcile
from tests.referrals.helpers import at_once
from tests.rewards.conftest import SHOP, price_ladder, subscribe
from tests.rewards.interleaving import Threads, around_statement

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# The statement with which a fold (or a repair) takes the program's counters row.
PROGRAM_COUNTERS_LOCKED = r'FROM "ambassadors_programcounters".* FOR (NO KEY )?UPDATE'


@pytest.fixture
def messages_lost():
    """Recalculation messages are lost (a broker restart): nothing folds unless a test runs it."""
    with mock.patch("rewards.services.recalculation_enqueue") as enqueue:
        yield enqueue


def counters(program) -> tuple[int, int]:
    row = ProgramCounters.objects.get(program=program)
    return row.signups, row.qualified


def test_a_signup_writes_a_delta_row_and_never_touches_the_program_counters_row(program, ambassador, messages_lost):
    with CaptureQueriesContext(connection) as captured:
        signup_record(program=program, email="friend@example.org", actor=SHOP)
        signup_record(program=program, email="other@example.org", referral_code=ambassador.code, actor=SHOP)

    sql = [q["sql"] for q in captured.captured_queries]
    assert not [s for s in sql if "ambassadors_programcounters" in s]
    # The unattributed signup writes its row, audit event and delta in one statement (a WITH ... INSERT).
    assert len([s for s in sql if 'INSERT INTO "ambassadors_programcounterdelta"' in s]) == 2
    # The attributed signup still moves its ambassador's counters row, last before its COMMIT.
    updates = [i for i, s in enumerate(sql) if s.startswith('UPDATE "ambassadors_ambassadorcounters"')]
    assert len(updates) == 1
    assert sql[updates[0] + 1] == "COMMIT" or updates[0] == len(sql) - 1
    assert counters(program) == (0, 0), "not folded yet: the message was lost"
    assert list(ProgramCounterDelta.objects.values_list("signups", "qualified")) == [(1, 1), (1, 1)]


def test_a_signup_commits_while_a_worker_holds_the_program_counters_row(program, messages_lost):
    # What every signup of a launch queued behind before: the program's counters row, locked by another
    # transaction (here a fold, paused right after taking the row) until it ends.
    subscribe(program)
    held, go = threading.Event(), threading.Event()

    def fold() -> int:
        def pause() -> None:
            held.set()
            assert go.wait(20), "never released"

        with around_statement(PROGRAM_COUNTERS_LOCKED, after=pause):
            return program_recalculate(program_id=program.pk)

    threads = Threads()
    threads.start("fold", fold)
    assert held.wait(10)
    signed_up = threading.Event()

    def signup() -> None:
        signup_record(program=program, email="during@example.org", actor=SHOP)
        signed_up.set()

    threads.start("signup", signup)
    try:
        assert signed_up.wait(5), "the signup waited for the program's counters row"
    finally:
        go.set()
        threads.join()
    assert not threads.errors
    # The fold, resumed, took every delta row committed by then (its DELETE reads after the lock): each once.
    assert counters(program) == (2, 2)
    assert not ProgramCounterDelta.objects.exists()
    program_recalculate(program_id=program.pk)
    assert counters(program) == (2, 2)


def test_thirty_signups_at_once_are_each_counted_once_and_each_milestone_reached_once(program, track_key):
    # Every signup's recalculation runs as it commits (eager tasks): thirty folds race for the counters
    # row while signups keep inserting their delta rows.
    price_ladder(program, step=5)
    path = f"/api/v1/programs/{program.slug}/signups"

    statuses = at_once(
        lambda client, i: client.post(
            path, {"email": f"friend{i}@example.org"}, content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {track_key}",
        ).status_code,
        30,
    )  # fmt: skip

    assert Counter(statuses) == {201: 30}
    assert counters(program) == (30, 30)
    assert not ProgramCounterDelta.objects.exists()
    assert sorted(Milestone.objects.values_list("occurrence", flat=True)) == [1, 2, 3, 4, 5, 6]
    assert AuditEvent.objects.filter(action="milestone.reached").count() == 6


def test_a_lost_message_is_folded_by_the_sweep_with_its_milestone(program, messages_lost):
    price_ladder(program, step=5)
    for _ in range(6):
        subscribe(program)
    assert counters(program) == (0, 0)
    assert response_subscribers(program) == 0, "the public count is the folded one"

    assert tasks.fold_counts() == 1

    assert counters(program) == (6, 6)
    assert response_subscribers(program) == 6
    assert Milestone.objects.filter(program=program).count() == 1
    assert tasks.fold_counts() == 0, "nothing left to fold"
    assert Milestone.objects.filter(program=program).count() == 1


def response_subscribers(program) -> int:
    from django.test import Client

    return Client().get(f"/api/v1/programs/{program.slug}/price").json()["subscribers"]


def test_reconciliation_folds_what_is_pending_without_calling_it_drift(program, messages_lost):
    for _ in range(3):
        subscribe(program)

    report = reconcile(program=program)

    assert report.programs_repaired == 0
    assert counters(program) == (3, 3)
    assert not ProgramCounterDelta.objects.exists()
    assert not AuditEvent.objects.filter(action="counters.repaired").exists()


def test_reconciliation_repairs_drift_and_takes_the_pending_rows_with_it(program, messages_lost):
    for _ in range(3):
        subscribe(program)
    ProgramCounters.objects.filter(program=program).update(signups=40, qualified=40)  # drifted

    report = reconcile(program=program)

    assert report.programs_repaired == 1
    assert counters(program) == (3, 3)
    assert not ProgramCounterDelta.objects.exists(), "the pending rows are in the recount: never added again"
    event = AuditEvent.objects.get(action="counters.repaired", object_type="program")
    assert (event.before, event.after) == ({"signups": 43, "qualified": 43}, {"signups": 3, "qualified": 3})
    program_recalculate(program_id=program.pk)
    assert counters(program) == (3, 3)
    assert reconcile(program=program).programs_repaired == 0


def test_a_signup_committing_while_the_repair_holds_the_row_is_counted_once(program, messages_lost):
    subscribe(program)
    ProgramCounters.objects.filter(program=program).update(signups=9, qualified=9)  # drifted
    held, go = threading.Event(), threading.Event()

    def repair() -> object:
        def pause() -> None:
            held.set()
            assert go.wait(20), "never released"

        with around_statement(PROGRAM_COUNTERS_LOCKED, after=pause):
            return reconcile(program=program)

    threads = Threads()
    threads.start("repair", repair)
    assert held.wait(10)
    signup_record(program=program, email="meanwhile@example.org", actor=SHOP)  # commits: no wait
    go.set()
    threads.join()
    assert not threads.errors

    program_recalculate(program_id=program.pk)
    assert counters(program) == (2, 2) == (Signup.objects.count(), Signup.objects.count())


def test_an_unqualified_signup_counts_as_a_signup_only(program, ambassador, messages_lost):
    signup_record(program=program, email=ambassador.email, referral_code=ambassador.code, actor=SHOP)  # self
    signup_record(program=program, email="x@mailinator.com", actor=SHOP)  # disposable: held for review

    program_recalculate(program_id=program.pk)

    assert counters(program) == (2, 0)


def statement_kinds(captured: CaptureQueriesContext) -> list[str]:
    """Each statement as its verb and table: `INSERT referrals_signup`, `SELECT ambassadors_apikey`..."""
    kinds = []
    for query in captured.captured_queries:
        sql = query["sql"]
        verb = sql.split(None, 1)[0].upper()
        table = re.search(r'(?:FROM|INTO|UPDATE) "(\w+)"', sql)
        kinds.append(f"{verb} {table.group(1)}" if table else verb)
    return kinds


def test_the_signup_api_statements_pinned(program, ambassador, track_key, messages_lost):
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {track_key}")
    path = f"/api/v1/programs/{program.slug}/signups"
    client.post(path, {"email": "warm@example.org"}, content_type="application/json")  # the key's last use

    with CaptureQueriesContext(connection) as plain:
        assert client.post(path, {"email": "a@example.org"}, content_type="application/json").status_code == 201
    with CaptureQueriesContext(connection) as referred:
        body = {"email": "b@example.org", "referral_code": ambassador.code}
        assert client.post(path, body, content_type="application/json").status_code == 201

    # The key with its program (one read), then one transaction of INSERTs: before, an UPDATE of the
    # program's counters row sat in it, holding that row until COMMIT for every other signup of the
    # program. No read of the mailbox first: the unique constraint finds a repeat. An unattributed signup
    # from no known source is one statement, its own transaction: its row, audit event and delta row
    # (referrals.services.signups._record_unattributed), with no BEGIN and COMMIT around it.
    reads = ["SELECT ambassadors_apikey"]
    kinds = statement_kinds(plain)
    assert kinds[:2] == [*reads, "WITH referrals_signup"]
    assert kinds[2:3] != ["COMMIT"], kinds  # no COMMIT of its own: what follows is the eager tasks
    assert until_commit(referred) == [
        *reads,
        "SELECT ambassadors_ambassador",  # the referral code
        "BEGIN",
        "INSERT referrals_signup",
        "INSERT core_auditevent",
        "INSERT core_outboxmessage",  # the signup.attributed webhook
        "INSERT ambassadors_programcounterdelta",
        "UPDATE ambassadors_ambassadorcounters",  # the one lock, held for the COMMIT only
        "COMMIT",
    ]


def until_commit(captured: CaptureQueriesContext) -> list[str]:
    """The request's own statements: what the eager tasks run after its COMMIT is left out."""
    kinds = statement_kinds(captured)
    return kinds[: kinds.index("COMMIT") + 1]


def test_an_unattributed_signup_that_would_announce_a_webhook_is_written_by_the_orm_with_its_outbox_row(
    program, messages_lost, monkeypatch
):
    # No walk-in is a webhook event today. Were one to become one, the one-statement path (which writes no
    # outbox row) must step aside: the rule of which changes are announced lives in core.webhook_events alone.
    from core.models import OutboxMessage
    from core.webhook_events import webhook_events as announced

    def walk_ins_too(*, action: str, before: dict | None, after: dict) -> list[str]:
        events = announced(action=action, before=before, after=after)
        return events or (["signup.walk_in"] if action == "signup.recorded" else [])

    monkeypatch.setattr("referrals.services.signups.webhook_events", walk_ins_too)
    monkeypatch.setattr("core.audit.webhook_events", walk_ins_too)
    with CaptureQueriesContext(connection) as captured:
        signup, created = signup_record(program=program, email="walk-in@example.org", actor=SHOP)

    assert created and signup.ambassador_id is None
    assert "WITH referrals_signup" not in statement_kinds(captured)
    assert OutboxMessage.objects.filter(program_id=program.pk, event="signup.walk_in").count() == 1
    assert ProgramCounterDelta.objects.filter(program=program).count() == 1
