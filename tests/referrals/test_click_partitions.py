"""The click table partitioned by month on PostgreSQL (referrals migration 0011, referrals.services.partitions):
rows land in their UTC month, the months ahead are made by an idempotent task, what the default partition
caught moves to its month, the redirect and the attribution work as before, and a period's reads touch only
its months."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from ambassadors.models import Program
from referrals.models import Click, Signup
from referrals.services import attribution_decide
from referrals.services.partitions import (
    DEFAULT_PARTITION,
    TABLE,
    click_partitions_ensure,
    partition_name,
    partitions,
)
from referrals.tasks import ensure_click_partitions
from tests.referrals.helpers import browser, visit

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

UTC = dt.UTC
# Far from the day the test database was migrated: none of these months has a partition yet.
JAN_2031 = dt.datetime(2031, 1, 10, 12, 0, tzinfo=UTC)


def months(*pairs: tuple[int, int]) -> set[str]:
    return {partition_name(dt.date(y, m, 1)) for y, m in pairs}


def partition_of(click_id: uuid.UUID | str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {TABLE} WHERE id = %s", [str(click_id)])  # noqa: S608
        return cursor.fetchone()[0]


def make_click(program: Program, ambassador, at: dt.datetime, **fields) -> Click:
    return Click.objects.create(
        id=uuid.uuid4(), program=program, ambassador=ambassador, created_at=at, visitor_id="v-1", **fields
    )


@pytest.fixture
def signup_factory(program):
    def make(click: Click) -> Signup:
        return Signup.objects.create(
            program=program,
            email=f"friend-{uuid.uuid4().hex[:8]}@example.org",
            email_canonical=f"friend-{uuid.uuid4().hex[:8]}@example.org",
            ambassador=click.ambassador,
            method=Signup.Method.API,
            click=click,
            created_at=click.created_at,
        )

    return make


def plan_relations(sql: str) -> set[str]:
    """The tables an EXPLAIN (FORMAT JSON) of `sql` reads."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
        raw = cursor.fetchone()[0]
    found: set[str] = set()

    def walk(node):
        if "Relation Name" in node:
            found.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk((raw if isinstance(raw, list) else json.loads(raw))[0]["Plan"])
    return found


def test_the_click_table_is_partitioned_by_month_with_its_key_indexes_and_a_default():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.partstrat, a.attname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0] WHERE c.relname = %s",
            [TABLE],
        )
        assert cursor.fetchall() == [("r", "created_at")]
        cursor.execute(
            "SELECT array_agg(a.attname ORDER BY k.n) FROM pg_constraint c "
            "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY k(attnum, n) "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
            "WHERE c.conrelid = %s::regclass AND c.contype = 'p'",
            [TABLE],
        )
        assert cursor.fetchone()[0] == ["id", "created_at"]
        # The indexes of migrations 0005 and 0009, on the parent and built on every partition.
        cursor.execute(
            "SELECT c.relname, (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = c.oid) FROM pg_index x "
            "JOIN pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = %s::regclass",
            [TABLE],
        )
        indexes = dict(cursor.fetchall())
        # Each partition's copy of an index bears the index's name, so that plans say which one they read.
        cursor.execute(
            "SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass ORDER BY 1",
            [DEFAULT_PARTITION],
        )
        default_indexes = [row[0] for row in cursor.fetchall()]
        # Nothing points at the click table with a database constraint (Signup.click has db_constraint=False).
        cursor.execute("SELECT conrelid::regclass::text FROM pg_constraint WHERE confrelid = %s::regclass", [TABLE])
        referencing = cursor.fetchall()
    existing = partitions(connection)
    assert {"click_visitor_first_click", "click_human_analytics", f"{TABLE}_pkey"} <= set(indexes)
    assert all(n == len(existing) for n in indexes.values()), (indexes, existing)
    assert existing[DEFAULT_PARTITION] == "DEFAULT"
    this_month = dt.datetime.now(UTC).date().replace(day=1)
    assert partition_name(this_month) in existing
    assert referencing == []
    assert {"click_visitor_first_click_default", "click_human_analytics_default"} <= set(default_indexes)


def test_a_click_lands_in_its_utc_month_at_the_boundary(program, ambassador, time_machine):
    time_machine.move_to(JAN_2031, tick=False)
    click_partitions_ensure()
    paris = dt.timezone(dt.timedelta(hours=1))
    last_instant_of_march = make_click(program, ambassador, dt.datetime(2031, 3, 31, 23, 59, 59, 999999, tzinfo=UTC))
    first_instant_of_april = make_click(program, ambassador, dt.datetime(2031, 4, 1, 0, 0, tzinfo=UTC))
    # Half past midnight on 1 April in Paris is still March in UTC.
    april_in_paris = make_click(program, ambassador, dt.datetime(2031, 4, 1, 0, 30, tzinfo=paris))

    assert partition_of(last_instant_of_march.pk) == partition_name(dt.date(2031, 3, 1))
    assert partition_of(first_instant_of_april.pk) == partition_name(dt.date(2031, 4, 1))
    assert partition_of(april_in_paris.pk) == partition_name(dt.date(2031, 3, 1))
    # The ORM sees one table, and finds a click by its id alone.
    assert Click.objects.get(pk=first_instant_of_april.pk).created_at == first_instant_of_april.created_at


def test_the_task_makes_the_months_ahead_once_and_more_as_time_moves(time_machine):
    time_machine.move_to(JAN_2031, tick=False)

    created = ensure_click_partitions.delay().get()

    assert set(created) == months((2031, 1), (2031, 2), (2031, 3), (2031, 4)), "this month and 3 ahead"
    assert ensure_click_partitions.delay().get() == [], "idempotent: nothing new the second time"
    before = partitions(connection)

    time_machine.move_to(dt.datetime(2031, 2, 20, tzinfo=UTC), tick=False)
    assert set(ensure_click_partitions.delay().get()) == months((2031, 5))
    after = partitions(connection)
    assert set(after) - set(before) == months((2031, 5))
    assert after[partition_name(dt.date(2031, 5, 1))] == (
        "FOR VALUES FROM ('2031-05-01 00:00:00+00') TO ('2031-06-01 00:00:00+00')"
    )

    with override_settings(CLICK_PARTITIONS_AHEAD=5):
        out = StringIO()
        call_command("ensure_click_partitions", stdout=out)
    assert "created 2 partition(s)" in out.getvalue()
    assert months((2031, 6), (2031, 7)) <= set(partitions(connection))


def test_a_row_the_default_partition_caught_moves_to_its_month(program, ambassador, signup_factory):
    stray = make_click(program, ambassador, dt.datetime(2035, 7, 10, 8, 0, tzinfo=UTC))
    signup = signup_factory(click=stray)
    assert partition_of(stray.pk) == DEFAULT_PARTITION, "no July 2035 partition yet: the default catches it"

    result = click_partitions_ensure()

    assert partition_name(dt.date(2035, 7, 1)) in result.created
    assert result.moved == 1
    assert partition_of(stray.pk) == partition_name(dt.date(2035, 7, 1))
    assert Signup.objects.get(pk=signup.pk).click == stray, "the signup still finds its click by id"
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{DEFAULT_PARTITION}"')  # noqa: S608
        assert cursor.fetchone()[0] == 0
    assert click_partitions_ensure().created == []


def test_deleting_a_click_sets_its_signups_click_to_null(program, ambassador, signup_factory):
    click = make_click(program, ambassador, dt.datetime.now(UTC))
    signup = signup_factory(click=click)

    click.delete()

    signup.refresh_from_db()
    assert signup.click_id is None


def test_redirect_and_attribution_by_click_id_and_first_click_still_work(program, ambassador, bob, tracker):
    program.attribution_model = Program.AttributionModel.FIRST_CLICK
    program.save()
    visitor = browser()
    _, first_id = visit(visitor, ambassador.code)
    _, last_id = visit(visitor, bob.code)
    this_month = partition_name(dt.datetime.now(UTC).date())
    assert partition_of(first_id) == partition_of(last_id) == this_month

    # Another browser (no cookie): the integration passes the last click's id; first click wins.
    response = tracker.post(
        f"/api/v1/programs/{program.slug}/signups", {"email": "friend@example.org", "click_id": last_id}, format="json"
    )

    assert response.status_code == 201, response.content
    assert (response.json()["ambassador"], response.json()["method"]) == (ambassador.code, "api")
    assert str(Signup.objects.get(email="friend@example.org").click_id) == first_id


def test_a_period_reads_only_its_months(program, ambassador, time_machine):
    """The visitor's first-click lookup (the attribution window) and the staff analytics of a period: the plans
    read the partitions of the months they cover, not the others (pruned when the statement is planned)."""
    from console.analytics import Period, program_analytics

    time_machine.move_to(dt.datetime(2031, 9, 15, 12, 0, tzinfo=UTC), tick=False)
    click_partitions_ensure(since=dt.date(2031, 1, 1))
    program.attribution_model = Program.AttributionModel.FIRST_CLICK
    program.save()
    for month in range(1, 10):
        make_click(program, ambassador, dt.datetime(2031, month, 14, 9, 0, tzinfo=UTC))
    last = make_click(program, ambassador, dt.datetime(2031, 9, 15, 11, 0, tzinfo=UTC))
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {TABLE}")

    now = dt.datetime(2031, 9, 15, 12, 0, tzinfo=UTC)
    with CaptureQueriesContext(connection) as attribution_queries:
        attribution_decide(program=program, referral_code=None, cookie_click_id=None, click_id=str(last.pk), now=now)
    visitor_lookup = [q["sql"] for q in attribution_queries.captured_queries if '"visitor_id" =' in q["sql"]]
    with CaptureQueriesContext(connection) as analytics_queries:
        program_analytics(program, Period(first=dt.date(2031, 7, 1), last=dt.date(2031, 7, 31)))
    on_clicks = [q["sql"] for q in analytics_queries.captured_queries if TABLE in q["sql"]]

    assert len(visitor_lookup) == 1
    # A 30-day window on 15 September: August and September only.
    window_read = {r for r in plan_relations(visitor_lookup[0]) if r.startswith(TABLE)}
    assert window_read == months((2031, 8), (2031, 9)), window_read
    assert on_clicks, "the analytics of a period not rolled up read the click table"
    for sql in on_clicks:
        read = {r for r in plan_relations(sql) if r.startswith(TABLE)}
        assert read and read <= months((2031, 7)), (read, sql[:300])


@pytest.mark.django_db(transaction=True)
def test_two_makers_at_once_create_each_month_once(time_machine):
    """Beat's task and a migrate may run together: each month is made by one of them, neither fails."""
    import threading

    time_machine.move_to(dt.datetime(2040, 1, 10, tzinfo=UTC), tick=False)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def maker():
        try:
            barrier.wait(timeout=10)
            results.append(click_partitions_ensure(ahead=2).created)
        except Exception as exc:  # noqa: BLE001 (reported by the assertion below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=maker) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        made = sorted(name for created in results for name in created)
        assert made == sorted(months((2040, 1), (2040, 2), (2040, 3))), "each month made once, by one maker"
    finally:
        with connection.cursor() as cursor:
            for name in months((2040, 1), (2040, 2), (2040, 3)):
                cursor.execute(f'DROP TABLE IF EXISTS "{name}"')
