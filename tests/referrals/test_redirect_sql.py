"""The redirect's two hand-written statements (config/db.py): prepared once per connection, retried on a
connection the server has dropped, and kept in step with the Click model."""

from __future__ import annotations

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from referrals import services
from referrals.models import Click
from referrals.selectors import LINK_RESOLVE_SQL, link_resolve
from referrals.services import link_create
from tests.referrals.helpers import browser
from tests.test_settings_and_health import run


def server_side_prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_lookup_and_the_insert_are_prepared_on_the_connection(ambassador):
    assert browser().get(f"/r/{ambassador.code}").status_code == 302
    assert browser().get(f"/r/{ambassador.code}").status_code == 302

    prepared = server_side_prepared()
    assert len(prepared) == 2
    assert any(s.startswith("SELECT a.id, a.program_id") for s in prepared)
    assert any(s.startswith(f"INSERT INTO {Click._meta.db_table}") for s in prepared)
    assert Click.objects.filter(ambassador=ambassador).count() == 2


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

    # Logged as written, so that debugging tools show what ran.
    assert own.captured_queries[0]["sql"] == channel.captured_queries[0]["sql"] == LINK_RESOLVE_SQL
    assert (mine.ambassador_id, mine.link_id) == (ambassador.pk, None)
    assert (theirs.ambassador_id, theirs.link_id) == (ambassador.pk, link.pk)
    assert theirs.code == mine.code == ambassador.code


def test_a_click_field_the_insert_does_not_write_stops_the_redirect(monkeypatch):
    services._click_insert_sql.cache_clear()
    monkeypatch.setattr(services, "_CLICK_FIELDS", tuple(f for f in services._CLICK_FIELDS if f != "referer_host"))
    try:
        with pytest.raises(ImproperlyConfigured, match="referer_host"):
            services._click_insert_sql()
    finally:
        services._click_insert_sql.cache_clear()


def test_prepared_statements_can_be_turned_off_for_a_pooler():
    code = "import config.settings as s; print(s.DATABASES['default'].get('OPTIONS', {}).get('prepare_threshold'))"
    pg = "postgres://postgres@127.0.0.1:5432/parrain"
    on = run(["-c", code], DEBUG="true", DATABASE_URL=pg)
    off = run(["-c", code], DEBUG="true", DATABASE_URL=pg, PREPARED_STATEMENTS="false")
    bad = run(["-c", code], DEBUG="true", DATABASE_URL=pg, PREPARED_STATEMENTS="sometimes")

    assert (on.stdout.strip(), off.stdout.strip()) == ("0", "None"), on.stderr + off.stderr
    assert bad.returncode != 0
    assert "PREPARED_STATEMENTS" in bad.stderr
