"""The redirect's hand-written SQL (config/db.py): lookup and INSERT in one statement prepared once per
connection on PostgreSQL, retried harmlessly on a connection the server has dropped, and kept in step with
the Click model."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connection
from django.utils import timezone

from config import db
from referrals.models import Click
from referrals.selectors import LINK_RESOLVE_SQL, link_resolve, link_resolve_params
from referrals.services import clicks as services
from referrals.services import link_create
from tests.referrals.helpers import browser
from tests.test_settings_and_health import run


def server_side_prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_lookup_and_the_insert_are_one_prepared_statement(ambassador, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert browser().get(f"/r/{ambassador.code}").status_code == 302
    assert browser().get(f"/r/{ambassador.code}").status_code == 302

    prepared = server_side_prepared()
    assert len(prepared) == 1
    assert prepared[0].startswith("WITH target AS (SELECT a.id AS ambassador_id")
    assert f"INSERT INTO {Click._meta.db_table}" in prepared[0]
    assert Click.objects.filter(ambassador=ambassador).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_statement_run_twice_records_the_click_once(ambassador):
    # What a retry after a dropped connection does when the first run had reached the database.
    _insert, resolve_and_insert = services._click_sql()
    params = (*link_resolve_params(ambassador.code), uuid.uuid4(), timezone.now(), "visitor", "", "Firefox", "", False)

    first = db.fetch_one(resolve_and_insert, params)
    second = db.fetch_one(resolve_and_insert, params)

    assert first == second
    assert first[0] == ambassador.pk
    assert Click.objects.filter(ambassador=ambassador).count() == 1


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


class Sent:
    """The statements this connection sends, as written."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.statements.append(sql)
        return execute(sql, params, many, context)


ASYNC = "set_config('synchronous_commit', 'off', true)"


def redirect_statements(code: str) -> list[str]:
    """A browser's GET /r/<code> (a 302), and the statements it sent."""
    sent = Sent()
    with connection.execute_wrapper(sent):
        assert browser().get(f"/r/{code}").status_code == 302
    return sent.statements


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("async_commit", [True, False])
def test_a_click_is_committed_before_its_answer_waiting_for_the_disk_or_not(ambassador, settings, async_commit):
    settings.CLICK_ASYNC_COMMIT = async_commit
    statements = redirect_statements(ambassador.code)

    assert len(statements) == 1
    assert (ASYNC in statements[0]) is async_commit
    # Committed before the answer: another connection sees the click.
    with psycopg.connect(connection.connection.info.dsn, autocommit=True) as other:
        clicks = other.execute("SELECT count(*) FROM referrals_click WHERE ambassador_id = %s", (ambassador.pk,))
        assert clicks.fetchone()[0] == 1
    # The setting lasted the click's own transaction: what this connection sends next (a signup, say)
    # waits for the disk again.
    assert synchronous_commit() == "on"


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_click_recorded_inside_a_callers_transaction_commits_as_the_caller_does(ambassador, settings):
    settings.CLICK_ASYNC_COMMIT = True
    sent = Sent()
    with connection.execute_wrapper(sent):  # the test's own transaction is open around it
        recorded = services.click_record(
            code=ambassador.code, ip="192.0.2.1", user_agent="Mozilla/5.0 Firefox/128.0", referer="", visitor_id="v"
        )

    assert recorded is not None
    assert not any(ASYNC in sql for sql in sent.statements)
    assert synchronous_commit() == "on"


@pytest.mark.django_db
def test_a_link_that_leads_nowhere_records_nothing(ambassador):
    ambassador.is_active = False
    ambassador.save(update_fields=["is_active"])

    recorded = services.click_record(
        code=ambassador.code, ip="192.0.2.1", user_agent="Mozilla/5.0 Firefox/128.0", referer="", visitor_id="v"
    )

    assert recorded is None
    assert not Click.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db
def test_orm_queries_are_never_prepared(ambassador):
    for _ in range(10):  # twice psycopg's default threshold
        list(Click.objects.filter(ambassador=ambassador))

    assert server_side_prepared() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_connection_dropped_by_the_server_costs_no_click(ambassador):
    assert browser().get(f"/r/{ambassador.code}").status_code == 302
    backend_pid = connection.connection.info.backend_pid
    # The database restarts, or a firewall cuts an idle connection: the server side is gone.
    dsn = connection.connection.info.dsn
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (backend_pid,))

    response = browser().get(f"/r/{ambassador.code}")

    assert response.status_code == 302
    assert connection.connection.info.backend_pid != backend_pid
    assert Click.objects.filter(ambassador=ambassador).count() == 2


@pytest.mark.django_db
def test_a_channel_link_and_an_ambassadors_own_code_resolve_in_the_same_statement(
    ambassador, django_assert_num_queries
):
    link = link_create(ambassador=ambassador, channel="instagram")

    with django_assert_num_queries(1) as own:
        mine = link_resolve(ambassador.code.lower())
    with django_assert_num_queries(1) as channel:
        theirs = link_resolve(link.code)

    # Logged as written (on PostgreSQL, with %s), so that debugging tools show what ran.
    statement = LINK_RESOLVE_SQL.split("%s")[0]
    assert own.captured_queries[0]["sql"].startswith(statement)
    assert channel.captured_queries[0]["sql"].startswith(statement)
    assert (mine.ambassador_id, mine.link_id) == (ambassador.pk, None)
    assert (theirs.ambassador_id, theirs.link_id) == (ambassador.pk, link.pk)
    assert theirs.code == mine.code == ambassador.code


def test_a_click_field_the_insert_does_not_write_stops_the_redirect(monkeypatch):
    services._click_sql.cache_clear()
    own = tuple(f for f in services._CLICK_OWN_FIELDS if f != "referer_host")
    monkeypatch.setattr(services, "_CLICK_OWN_FIELDS", own)
    try:
        with pytest.raises(ImproperlyConfigured, match="referer_host"):
            services._click_sql()
    finally:
        services._click_sql.cache_clear()


def test_prepared_statements_can_be_turned_off_for_a_pooler():
    code = "import config.settings as s; print(s.DATABASES['default'].get('OPTIONS', {}).get('prepare_threshold'))"
    pg = "postgres://postgres@127.0.0.1:5432/parrain"
    on = run(["-c", code], DEBUG="true", DATABASE_URL=pg)
    off = run(["-c", code], DEBUG="true", DATABASE_URL=pg, PREPARED_STATEMENTS="false")
    bad = run(["-c", code], DEBUG="true", DATABASE_URL=pg, PREPARED_STATEMENTS="sometimes")

    assert (on.stdout.strip(), off.stdout.strip()) == ("0", "None"), on.stderr + off.stderr
    assert bad.returncode != 0
    assert "PREPARED_STATEMENTS" in bad.stderr


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_error_on_a_live_connection_is_not_retried():
    sent = []

    def count(execute, sql, *rest):
        sent.append(sql)
        return execute(sql, *rest)

    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 10")
    try:
        with connection.execute_wrapper(count), pytest.raises(OperationalError, match="statement timeout"):
            db.fetch_one("SELECT pg_sleep(1)", ())
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")

    assert sent == ["SELECT pg_sleep(1)"]
