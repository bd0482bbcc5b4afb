"""A read replica for the staff analytics (config.db_router) and the settings behind a pooler.

The replica here is a real second PostgreSQL database: a copy of the test database taken at one moment,
then made read-only, while the primary moves on. What the analytics show then says which one they read.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from django.conf import settings
from django.db import connection, connections
from django.test import override_settings
from django.urls import reverse
from psycopg import sql

from ambassadors.models import Ambassador, Program
from config.db_router import REPLICA, reading_replica
from core.actors import Actor
from referrals.models import Signup
from referrals.services import signup_record
from tests.factories import ProgramFactory, enroll, staff_user
from tests.rewards.conftest import database_url_for_workers

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SHOP = Actor.system("shop integration")
ROUTER = "config.db_router.ReplicaRouter"


def subscribe(program: Program, ambassador: Ambassador, email: str) -> None:
    signup_record(program=program, email=email, referral_code=ambassador.code, actor=SHOP)


@pytest.fixture
def replica() -> Iterator[str]:
    """A read-only copy of the test database as it is now, registered as the `replica` alias with the
    router, as DATABASE_REPLICA_URL does; dropped afterwards."""
    primary = connection.settings_dict["NAME"]
    name = f"{primary}_replica"
    admin_url = database_url_for_workers().rsplit("/", 1)[0] + "/postgres"
    connection.close()  # CREATE DATABASE ... TEMPLATE needs the template without sessions
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(primary)))
        admin.execute(sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(sql.Identifier(name)))
    alias = copy.deepcopy(connections.settings["default"])
    alias["NAME"] = name
    connections.settings[REPLICA] = alias
    # Connected here: the test case allows only the aliases it knew when it started to connect later.
    connections[REPLICA].connect()
    try:
        with override_settings(DATABASE_ROUTERS=[ROUTER]):
            yield name
    finally:
        connections[REPLICA].close()
        del connections[REPLICA]
        del connections.settings[REPLICA]
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def shop():
    """A program with Ana and three referred subscribers, and a marketer who reads its analytics."""
    program = ProgramFactory(slug="jam-club")
    ana = enroll(program, "ana@example.com", display_name="Ana")
    for i in range(3):
        subscribe(program, ana, f"friend{i}@example.org")
    return program, ana, staff_user("marketer", group="marketing")


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def funnel_counts(client, table: str = "funnel") -> dict[str, str]:
    url = reverse("staff-analytics-csv", kwargs={"slug": "jam-club", "table": table})
    response = client.get(url, {"days": 7})
    assert response.status_code == 200
    return {row[0]: row[1] for row in csv_rows(response)[1:]}


def test_the_analytics_read_the_replica_and_everything_else_the_primary(shop, replica, client):
    program, ana, marketer = shop
    # Written after the copy: on the primary only, as if the replica had not replayed it yet.
    for i in range(3, 5):
        subscribe(program, ana, f"friend{i}@example.org")
    bob = enroll(program, "bob@example.com", display_name="Bob")
    client.force_login(marketer)

    page = client.get(reverse("staff-analytics", kwargs={"slug": "jam-club"}), {"days": 7})
    funnel = funnel_counts(client)
    value = csv_rows(
        client.get(reverse("staff-analytics-csv", kwargs={"slug": "jam-club", "table": "value"}), {"days": 7})
    )

    assert page.status_code == 200
    assert page.context["result"].funnel.steps[1].count == 3  # referred signups, as the replica has them
    assert funnel["signups"] == "3"
    assert [row[1] for row in value[1:]] == ["Ana"]  # Bob joined after the copy
    # The primary has the rest; outside the analytics everything reads it.
    assert Signup.objects.filter(program=program).count() == 5
    assert Ambassador.objects.filter(pk=bob.pk).exists()
    with reading_replica():
        assert Signup.objects.filter(program=program).count() == 3
        assert not Ambassador.objects.filter(pk=bob.pk).exists()
    assert Signup.objects.filter(program=program).count() == 5


def test_a_write_inside_the_replica_block_fails_there_and_nothing_is_lost_on_the_primary(shop, replica):
    program, ana, _ = shop

    with reading_replica(), pytest.raises(Exception, match="read-only transaction"):
        subscribe(program, ana, "late@example.org")

    assert connection.settings_dict["NAME"] != replica  # the primary is back once the block ends
    subscribe(program, ana, "late@example.org")
    assert Signup.objects.filter(program=program, email="late@example.org").count() == 1


def test_without_a_replica_the_block_changes_nothing(shop, client):
    program, ana, marketer = shop
    assert REPLICA not in connections.settings
    assert settings.DATABASE_ROUTERS == []
    subscribe(program, ana, "friend9@example.org")
    client.force_login(marketer)

    with reading_replica():
        assert connection.settings_dict["NAME"] == connections["default"].settings_dict["NAME"]
        assert Signup.objects.filter(program=program).count() == 4
    assert funnel_counts(client)["signups"] == "4"


def test_exports_stream_through_a_client_side_cursor_behind_a_pooler(shop, client, monkeypatch):
    """DISABLE_SERVER_SIDE_CURSORS (set with DATABASE_POOLER=pgbouncer): the streamed CSVs still work, from a
    client-side cursor; without it they stream from a named (server-side) one."""
    program, ana, marketer = shop
    client.force_login(marketer)
    wrapper = connections["default"]
    named: list[str | None] = []
    real_create_cursor = wrapper.create_cursor

    def create_cursor(name=None):
        named.append(name)
        return real_create_cursor(name)

    monkeypatch.setattr(wrapper, "create_cursor", create_cursor)

    def value_csv() -> list[list[str]]:
        url = reverse("staff-analytics-csv", kwargs={"slug": "jam-club", "table": "value"})
        return csv_rows(client.get(url, {"days": 7}))

    streamed = value_csv()
    assert any(named), "without the setting the export declares a server-side cursor"

    named.clear()
    monkeypatch.setitem(wrapper.settings_dict, "DISABLE_SERVER_SIDE_CURSORS", True)
    behind_pooler = value_csv()

    assert named and not any(named)
    assert behind_pooler == streamed
    assert [row[:4] for row in behind_pooler[1:]] == [[ana.code, "Ana", "ana@example.com", "3"]]


def settings_in_a_process(**env: str) -> dict:
    """config.settings as a process started with `env` builds them."""
    script = (
        "import json; from config import settings as s; "
        "print(json.dumps({'databases': s.DATABASES, 'routers': s.DATABASE_ROUTERS}, default=str))"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "DJANGO_"))}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=base | {"DEBUG": "true"} | env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_settings_behind_pgbouncer_with_a_replica():
    built = settings_in_a_process(
        DATABASE_URL="postgres://parrain:pw@pgbouncer:6432/parrain",
        DATABASE_REPLICA_URL="postgres://parrain:pw@postgres-replica:5432/parrain",
        DATABASE_POOLER="pgbouncer",
    )
    default, replica = built["databases"]["default"], built["databases"]["replica"]

    assert built["routers"] == [ROUTER]
    for alias in (default, replica):
        assert alias["OPTIONS"]["prepare_threshold"] is None  # psycopg 3 never prepares
        assert alias["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert (default["HOST"], default["PORT"]) == ("pgbouncer", 6432)
    assert replica["HOST"] == "postgres-replica"
    assert replica["TEST"] == {"MIRROR": "default"}


def test_settings_without_the_new_variables_are_unchanged():
    built = settings_in_a_process(DATABASE_URL="postgres://parrain:pw@postgres:5432/parrain")

    assert list(built["databases"]) == ["default"]
    assert built["routers"] == []
    assert built["databases"]["default"]["OPTIONS"] == {"prepare_threshold": 0}
    assert "DISABLE_SERVER_SIDE_CURSORS" not in built["databases"]["default"]


def test_an_unknown_pooler_stops_the_process():
    script = "import config.settings"
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=dict(os.environ) | {"DEBUG": "true", "DATABASE_POOLER": "pgpool"},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "DATABASE_POOLER='pgpool'" in done.stderr
