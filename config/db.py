"""Hand-written SQL for the referral redirect, the one path where the ORM's query building dominates.

Every shared link lands on `/r/<code>`: look the link up, INSERT the click. Built by the ORM, the two
statements cost more Python than everything else the redirect does, and PostgreSQL parses and plans
them anew each time. Here they are fixed strings (referrals.selectors.LINK_RESOLVE_SQL and
referrals.services.click_record, which on PostgreSQL sends both as one statement) sent with
server-side binding, which psycopg prepares on their first run on a connection (`prepare_threshold` 0,
set in config/settings.py). The ORM keeps Django's client-side binding, which never prepares: not all
its queries survive server-side binding. Behind a pooler in transaction mode that cannot keep prepared
statements, set PREPARED_STATEMENTS=false.

Django's per-request health check (`CONN_HEALTH_CHECKS`) costs a round trip of its own. The redirect
skips it: a statement that fails on a connection the server has dropped is retried once on a new one,
which gives the same protection for free when the connection is fine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.db.backends import utils
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper


def _cursor(connection: BaseDatabaseWrapper) -> CursorWrapper:
    """A Django cursor (queries logged, errors translated) with server-side binding on PostgreSQL."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    # Missing from django-stubs; Django defines it whenever psycopg 3 is installed.
    from django.db.backends.postgresql.base import ServerBindingCursor  # type: ignore[attr-defined]

    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        raw = ServerBindingCursor(connection.connection)
    if connection.queries_logged:
        return _DebugCursor(raw, connection)
    return connection.make_cursor(raw)


class _DebugCursor(utils.CursorDebugWrapper):
    """Logs the statement as written (with %s): a prepared run leaves psycopg no query text to report."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(sql, params):
            return utils.CursorWrapper.execute(self, sql, params)


def is_postgresql() -> bool:
    return connections[DEFAULT_DB_ALIAS].vendor == "postgresql"


def in_transaction() -> bool:
    """Whether a statement sent now runs inside a transaction opened by the caller (not autocommit)."""
    return connections[DEFAULT_DB_ALIAS].in_atomic_block


def fetch_one(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """The first row of a statement safe to repeat (a read, or an idempotent write), retried once if the
    connection turns out to be dead."""
    # One lookup of the thread's connection: each attribute read through django.db.connection costs one.
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        with _cursor(connection) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    except (OperationalError, InterfaceError):
        # Only a dead connection is worth a second try (not a timeout or a deadlock), and only outside a
        # transaction: inside one, the statement cannot be replayed alone.
        if connection.in_atomic_block or connection.is_usable():
            raise
        connection.close()
        with _cursor(connection) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()


def execute(sql: str, params: Sequence[Any]) -> None:
    """Runs a write. No retry: the caller decides whether its write may be repeated."""
    with _cursor(connections[DEFAULT_DB_ALIAS]) as cursor:
        cursor.execute(sql, params)


def prep_value(field: Any, value: Any) -> Any:
    """`value` as the database stores it for `field` (a UUID on SQLite is text, say)."""
    return field.get_db_prep_save(value, connections[DEFAULT_DB_ALIAS])
