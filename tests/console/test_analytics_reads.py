"""How console.analytics reads a million signups fast (bench/consoles.py): the covering indexes of migration
referrals 0009 serve its very queries off the index alone, PostgreSQL knows how many UTC days a period holds,
and the queries run with JIT compilation off, in a transaction that ends with them (the setting with it).
The figures themselves are proved against hand-computed numbers in test_analytics.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from console import analytics
from console.analytics import Period, ambassadors_overview, program_analytics, signup_days, sources, value_stream
from core.actors import Actor
from referrals.models import Click, Signup
from referrals.services import signup_record
from referrals.services.rollups import rollup_due
from tests.factories import ProgramFactory, enroll

SYSTEM = Actor.system("test")
PERIOD = Period(first=date(2026, 3, 1), last=date(2026, 3, 31))
WIDE = Period(first=date(2025, 12, 1), last=date(2026, 3, 31))  # the bulk rows too
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans and settings")


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


@pytest.fixture
def program(time_machine) -> Any:
    time_machine.move_to(at(1, 9), tick=False)
    program = ProgramFactory(slug="reads")
    people = [enroll(program, f"amb{n}@example.com") for n in range(3)]
    for n, ambassador in enumerate(people):
        for day in (2, 3):
            Click.objects.create(program=program, ambassador=ambassador, created_at=at(day))
        Click.objects.create(program=program, ambassador=ambassador, created_at=at(4), is_bot=True)
        time_machine.move_to(at(5 + n), tick=False)
        signup_record(program=program, email=f"friend{n}@example.org", referral_code=ambassador.code, actor=SYSTEM)
    signup_record(program=program, email="walkin@example.org", referral_code=None, actor=SYSTEM)
    time_machine.move_to(at(31, 20), tick=False)
    return program


def _sql_of(run: Any) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        run()
    reads = ("SELECT", "WITH", "(SELECT")  # a UNION starts with its first part in parentheses
    return [q["sql"] for q in captured.captured_queries if q["sql"].lstrip().upper().startswith(reads)]


def _bulk(program: Any, count: int = 3000) -> None:
    """Rows enough, over four months and in two programs, that the planner chooses as on the bench (on a
    handful of rows any index, or none, costs about the same)."""
    other = ProgramFactory(slug="reads-other")
    for where, people in ((program, list(program.ambassadors.all())), (other, [enroll(other, "o@example.com")])):
        Click.objects.bulk_create(
            Click(program=where, ambassador=people[n % len(people)], created_at=at(1) - timedelta(hours=n),
                  is_bot=n % 10 == 0)
            for n in range(count)
        )  # fmt: skip
        Signup.objects.bulk_create(
            Signup(
                program=where,
                ambassador=people[n % len(people)] if n % 4 else None,
                email=f"bulk{n}@example.org",
                email_canonical=f"bulk{n}@example.org",
                created_at=at(1) - timedelta(hours=n),
            )
            for n in range(count)
        )


ANALYTICS_INDEXES = ("signup_analytics", "click_human_analytics", "daily_signups_period", "daily_clicks_period",
                     "weekly_signups_period", "weekly_clicks_period")  # fmt: skip


def _plan(sql: str) -> str:
    """The plan PostgreSQL takes, the tables vacuumed (as autovacuum keeps them), with no table scan and no
    other index to choose from (dropped in a transaction rolled back; those behind constraints stay): an
    index-only scan of an analytics index shows that index answers the query alone (its predicate implied by
    the query's, every column read carried). On a few thousand rows any index costs about the same, so the
    planner would otherwise pick one at random; on the bench it picks these (bench/README.md, consoles.py)."""
    tables = ("referrals_signup", "referrals_click", "referrals_dailysignups", "referrals_dailyclicks",
              "referrals_weeklysignups", "referrals_weeklyclicks")  # fmt: skip
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")  # outside a transaction: these tests commit
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
               LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid
               WHERE t.relname = ANY(%s) AND k.oid IS NULL AND NOT (i.indexrelid::regclass::text = ANY(%s))""",
            [list(tables), list(ANALYTICS_INDEXES)],
        )
        for (index,) in cursor.fetchall():
            cursor.execute(f"DROP INDEX {index}")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


def _half_rolled_up(program: Any) -> Any:
    """The days up to 31 January rolled up (the weeks up to the one of 19 January summed), the others read
    from the rows: the period's reads use all three."""
    rollup_due(programs=[program], now=datetime(2026, 2, 2, tzinfo=UTC))
    read = sources(program, WIDE)
    assert read.signup_days and read.raw_signups and read.click_days and read.raw_clicks
    assert read.signup_weeks and read.click_weeks
    return read


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_signups_per_day_are_counted_off_the_covering_indexes(program):
    _bulk(program)
    read = _half_rolled_up(program)
    (sql,) = _sql_of(lambda: signup_days(program, WIDE, read=read))

    plan = _plan(sql)

    assert "Index Only Scan using signup_analytics" in plan  # the days read from the signups
    # The rolled-up days' totals came with the period's sources: one row per day, no roll-up read here.
    assert "referrals_dailysignups" not in sql and "referrals_weeklysignups" not in sql


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_clicks_and_recruits_per_ambassador_are_counted_off_the_covering_indexes(program):
    _bulk(program)
    read = _half_rolled_up(program)
    (sql,) = _sql_of(lambda: ambassadors_overview(program, WIDE, value_limit=5, reach_limit=5, read=read))

    plan = _plan(sql)

    assert "Index Only Scan using click_human_analytics" in plan  # human clicks: the partial index, bots left out
    assert "Index Only Scan using signup_analytics" in plan  # qualified recruits per ambassador
    assert "Index Only Scan using daily_clicks_period" in plan  # and the rolled-up days of both
    assert "Index Only Scan using daily_signups_period" in plan
    assert "Index Only Scan using weekly_clicks_period" in plan  # and their whole weeks
    assert "Index Only Scan using weekly_signups_period" in plan


@postgres_only
@pytest.mark.django_db
def test_postgresql_has_statistics_on_a_signups_utc_day():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_statisticsobjdef(oid) FROM pg_statistic_ext WHERE stxname = %s", ["signup_utc_day"]
        )
        (definition,) = cursor.fetchone()

    # The expression TruncDate("created_at", tzinfo=UTC) gives, that signup_days groups by.
    assert "created_at AT TIME ZONE 'UTC'" in definition and "::date" in definition


def _jit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        return str(cursor.fetchone()[0])


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_reading_turns_jit_off_inside_one_transaction_that_ends_with_it():
    before = _jit()
    assert not connection.in_atomic_block

    with analytics._reading():
        assert connection.in_atomic_block
        assert _jit() == "off"
        with analytics._reading():  # nested: joins the same transaction, no savepoint
            assert _jit() == "off"
        assert _jit() == "off"

    assert not connection.in_atomic_block
    assert _jit() == before


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_page_model_and_a_stream_left_half_read_leave_no_transaction_open(program):
    before = _jit()

    result = program_analytics(program, PERIOD)
    assert result.funnel.clicks == 6 and result.funnel.signups == 3 and result.funnel.walk_ins == 1
    assert not connection.in_atomic_block and _jit() == before

    rows = value_stream(program, PERIOD)
    assert next(rows)[3] == 1  # one qualified recruit each
    rows.close()  # a client that goes away mid-CSV

    assert not connection.in_atomic_block and _jit() == before


@pytest.mark.django_db(transaction=True)
def test_the_streams_read_every_row_outside_a_transaction_as_inside(program):
    outside = list(value_stream(program, PERIOD))

    assert len(outside) == 3
    assert [row[3] for row in outside] == [1, 1, 1]
    assert not connection.in_atomic_block
