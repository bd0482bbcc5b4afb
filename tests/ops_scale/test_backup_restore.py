"""Backups: a custom-format pg_dump of a populated database, restored into a fresh one, is whole.

What the README's "Backups and restore" tells an operator to do, done for real with pg_dump and
pg_restore: the restored copy has every row, its audit trail is still append-only, and the
reconciliation (`manage.py reconcile_rewards`, run against the copy) finds nothing to repair there, while
it does repair a counter drifted on purpose: the check could fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from psycopg import sql

from core.actors import Actor
from referrals.services import conversion_record, conversion_refund
from tests.factories import ProgramFactory, enroll
from tests.rewards.conftest import database_url_for_workers, price_ladder, subscribe, voucher_tier

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SHOP = Actor.system("shop integration")
TABLES = [
    "ambassadors_ambassador",
    "ambassadors_ambassadorcounters",
    "ambassadors_programcounters",
    "referrals_signup",
    "referrals_conversion",
    "rewards_rewardgrant",
    "rewards_milestone",
    "core_auditevent",
]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (apt-get install postgresql-client)")
    return path


def url_of(database: str) -> str:
    return database_url_for_workers().rsplit("/", 1)[0] + "/" + database


def counts(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        return {
            table: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
            for table in TABLES
        }


def reconcile_in(database_url: str) -> dict[str, int]:
    """`manage.py reconcile_rewards` run by a separate process against `database_url`: its figures."""
    env = dict(os.environ) | {
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url,
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "CONN_MAX_AGE": "0",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "reconcile_rewards"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = {name: int(value) for name, value in re.findall(r"(\w+)=(\d+)", done.stdout)}
    assert {"ambassadors_repaired", "programs_repaired", "unlocked", "revoked", "milestones"} <= set(figures), (
        done.stdout
    )
    return figures


@pytest.fixture
def restored_name() -> Iterator[str]:
    name = f"{connection.settings_dict['NAME']}_restored"
    admin = url_of("postgres")
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(drop)
    yield name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(drop)


def test_a_dump_restored_into_a_fresh_database_is_whole_and_reconciles_to_nothing(tmp_path, restored_name):
    program = ProgramFactory(slug="backed-up", hold_period_days=0)
    ana = enroll(program, "ana@example.com", display_name="Ana")
    bob = enroll(program, "bob@example.com", display_name="Bob")
    voucher_tier(program, threshold=2, repeat_every=Decimal(2))
    voucher_tier(program, threshold=1, name="A purchase", metric="approved_conversions")
    ladder = price_ladder(program, step=3)
    for i in range(7):
        signup = subscribe(program, ana if i % 3 else bob)
        if i % 2 == 0:
            conversion_record(
                program=program,
                actor=SHOP,
                external_id=f"order-{i}",
                amount="19.90",
                currency="EUR",
                email=signup.email,
            )
    conversion_refund(program=program, external_id="order-0", actor=SHOP, reason="returned")
    source = counts(database_url_for_workers())
    assert source["rewards_rewardgrant"] >= 4 and source["rewards_milestone"] == ladder.milestones.count() == 2

    # The nightly backup: custom format (compressed, restorable table by table), no owners or privileges
    # tied to this server's roles.
    dump = tmp_path / "parrain.dump"
    subprocess.run(
        [
            tool("pg_dump"),
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            f"--file={dump}",
            database_url_for_workers(),
        ],
        check=True,
        capture_output=True,
    )
    assert dump.stat().st_size > 0
    # The restore: into a fresh database, never over the live one.
    with psycopg.connect(url_of("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(restored_name)))
    restored = url_of(restored_name)
    subprocess.run(
        [tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", f"--dbname={restored}", str(dump)],
        check=True,
        capture_output=True,
    )

    assert counts(restored) == source
    # The audit trail came back with its trigger: still append-only.
    with psycopg.connect(restored) as conn, pytest.raises(psycopg.Error):
        conn.execute("UPDATE core_auditevent SET action = 'tampered'")
    # Every migration the code knows is recorded as applied: the copy needs no `migrate` to serve.
    with psycopg.connect(restored) as conn:
        applied = conn.execute("SELECT count(*) FROM django_migrations").fetchone()[0]
    assert applied == counts_of_migrations()

    nothing = reconcile_in(restored)
    assert {k: v for k, v in nothing.items() if v} == {}

    # The check can fail: a counter drifted in the copy is found and repaired.
    with psycopg.connect(restored) as conn:
        conn.execute(
            "UPDATE ambassadors_ambassadorcounters SET qualified = qualified + 1 WHERE ambassador_id = %s", [ana.pk]
        )
    repaired = reconcile_in(restored)
    assert repaired["ambassadors_repaired"] == 1
    assert reconcile_in(restored)["ambassadors_repaired"] == 0


def counts_of_migrations() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_migrations")
        return cursor.fetchone()[0]
