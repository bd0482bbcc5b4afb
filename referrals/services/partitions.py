"""The click table's monthly partitions on PostgreSQL (migration referrals 0011 makes the table partitioned).

`referrals_click` is range-partitioned on `created_at`, one partition per UTC month
(`referrals_click_y2026m12` holds December 2026), plus a DEFAULT partition (`referrals_click_default`) that
catches a row no month partition covers: a clock far off, or history loaded for months before the
partitioning. Queries bounded in time (the analytics of a period, the visitor's clicks inside the
attribution window) read only the months they touch.

`click_partitions_ensure` creates the months ahead (CLICK_PARTITIONS_AHEAD, default 3), so that a redirect
never waits on DDL; beat runs it daily, `manage.py ensure_click_partitions` and every `migrate` too. It is
idempotent: a month that exists is left alone. Rows found in the default partition are moved to their own
month's partition (created for them), so that the default stays empty and a month can always be created:
PostgreSQL refuses to create a partition for a range the default already holds rows of.

On SQLite (the embedded default) the table is a plain table and every function here does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from core.clock import now as clock_now

TABLE = "referrals_click"
DEFAULT_PARTITION = f"{TABLE}_default"


@dataclass
class EnsureResult:
    """What one run did: the partitions it created, and the rows it moved out of the default partition."""

    created: list[str] = field(default_factory=list)
    moved: int = 0
    partitioned: bool = True


def month_start(value: date | datetime) -> date:
    if isinstance(value, datetime):
        value = value.astimezone(UTC).date() if value.tzinfo else value.date()
    return value.replace(day=1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def months_between(first: date, last: date) -> list[date]:
    """Every month from `first`'s to `last`'s, both included."""
    out, month, last = [], month_start(first), month_start(last)
    while month <= last:
        out.append(month)
        month = add_months(month, 1)
    return out


def partition_name(month: date, table: str = TABLE) -> str:
    return f"{table}_y{month.year:04d}m{month.month:02d}"


def _bound(month: date) -> str:
    """A partition bound: midnight UTC of the month's first day, as a timestamptz literal."""
    return f"{month.isoformat()} 00:00:00+00"


def is_partitioned(connection: Any, table: str = TABLE) -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
            [table],
        )
        return cursor.fetchone() is not None


def partitions(connection: Any, table: str = TABLE) -> dict[str, str]:
    """The partitions of `table`: name -> bound (`FOR VALUES FROM (...) TO (...)` or `DEFAULT`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = %s AND pg_table_is_visible(p.oid) ORDER BY c.relname",
            [table],
        )
        return dict(cursor.fetchall())


def create_month(cursor: Any, month: date, table: str = TABLE) -> str:
    """CREATE TABLE IF NOT EXISTS for one month's partition (the default must hold no row of that month)."""
    name = partition_name(month, table)
    cursor.execute(
        f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{table}" '
        f"FOR VALUES FROM ('{_bound(month)}') TO ('{_bound(add_months(month, 1))}')"
    )
    return name


def create_default(cursor: Any, table: str = TABLE) -> str:
    name = f"{table}_default"
    cursor.execute(f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{table}" DEFAULT')
    return name


def name_partition_indexes(cursor: Any, table: str = TABLE) -> int:
    """Name each partition's copy of an index after the index itself: `click_visitor_first_click_y2026m12`
    rather than PostgreSQL's `referrals_click_y2026m12_program_id_visitor_id_created_at_idx`, so that a plan
    says which index it reads. Keys keep their own names. Idempotent; returns how many it renamed."""
    cursor.execute(
        """
        SELECT child.relname, parent.relname, part.relname
        FROM pg_inherits i
        JOIN pg_class parent ON parent.oid = i.inhparent AND parent.relkind = 'I'
        JOIN pg_index x ON x.indexrelid = i.inhrelid
        JOIN pg_class child ON child.oid = i.inhrelid
        JOIN pg_class part ON part.oid = x.indrelid
        JOIN pg_inherits pi ON pi.inhrelid = part.oid
        WHERE pi.inhparent = %s::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.inhrelid)
        """,
        [table],
    )
    renamed = 0
    for child, parent, part in cursor.fetchall():
        suffix = "_" + part.removeprefix(f"{table}_")
        wanted = parent[: 63 - len(suffix)] + suffix
        if child != wanted:
            cursor.execute(f'ALTER INDEX "{child}" RENAME TO "{wanted}"')
            renamed += 1
    return renamed


def _months_in_default(cursor: Any, table: str) -> list[date]:
    """The UTC months of the rows the default partition holds (it is meant to be empty: a plain scan)."""
    cursor.execute(
        f"SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC')::date FROM \"{table}_default\""  # noqa: S608
    )
    return sorted(row[0] for row in cursor.fetchall())


def _split_default(cursor: Any, month: date, table: str) -> tuple[str, int]:
    """Move the default partition's rows of `month` into a new partition of their own (one transaction).

    PostgreSQL refuses CREATE TABLE ... PARTITION OF for a range the default holds rows of; so the month is
    built as a plain table, filled with those rows, the rows deleted from the default, and the table
    attached. A CHECK matching the bounds spares ATTACH its scan of the new table.
    """
    name, default = partition_name(month, table), f"{table}_default"
    lo, hi = _bound(month), _bound(add_months(month, 1))
    cursor.execute(f'LOCK TABLE "{default}" IN ACCESS EXCLUSIVE MODE')
    cursor.execute(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
    cursor.execute(
        f'WITH moved AS (DELETE FROM "{default}" WHERE created_at >= %s AND created_at < %s RETURNING *) '  # noqa: S608
        f'INSERT INTO "{name}" SELECT * FROM moved',
        [lo, hi],
    )
    moved = cursor.rowcount
    cursor.execute(
        f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_bounds" '
        f"CHECK (created_at IS NOT NULL AND created_at >= '{lo}' AND created_at < '{hi}')"
    )
    cursor.execute(f"ALTER TABLE \"{table}\" ATTACH PARTITION \"{name}\" FOR VALUES FROM ('{lo}') TO ('{hi}')")
    cursor.execute(f'ALTER TABLE "{name}" DROP CONSTRAINT "{name}_bounds"')
    return name, moved


def _lock(cursor: Any, table: str) -> None:
    """One maker of partitions at a time (a transaction-level advisory lock, keyed by the table's name)."""
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"parrain.partitions.{table}"])


def ensure_on(
    connection: Any,
    *,
    ahead: int,
    today: date | datetime,
    since: date | None = None,
    table: str = TABLE,
) -> EnsureResult:
    """The partitions of every month from `since` (default: this month) to `ahead` months after this one,
    the default partition, and the default's rows moved to their months. Only what is missing is created.

    Runs on `connection` as it is (a migration's schema editor connection too); each month is its own
    transaction (a savepoint inside an outer one).
    """
    if not is_partitioned(connection, table):
        return EnsureResult(partitioned=False)
    result = EnsureResult()
    this_month = month_start(today)
    wanted = set(months_between(month_start(since) if since else this_month, add_months(this_month, ahead)))
    existing = partitions(connection, table)
    with connection.cursor() as cursor:
        if f"{table}_default" not in existing:
            with transaction.atomic(using=connection.alias):
                _lock(cursor, table)
                if f"{table}_default" not in partitions(connection, table):
                    result.created.append(create_default(cursor, table))
        in_default = set(_months_in_default(cursor, table))
        for month in sorted(wanted | in_default):
            name = partition_name(month, table)
            if name in existing:
                continue
            with transaction.atomic(using=connection.alias):
                # Beat and a migrate may run at once: the second waits, then finds the month made.
                _lock(cursor, table)
                if name in partitions(connection, table):
                    continue
                if month in in_default:
                    name, moved = _split_default(cursor, month, table)
                    result.moved += moved
                else:
                    create_month(cursor, month, table)
            result.created.append(name)
        if result.created:
            with transaction.atomic(using=connection.alias):
                _lock(cursor, table)  # another maker may be renaming the same indexes
                name_partition_indexes(cursor, table)
    return result


def click_partitions_ensure(
    *, ahead: int | None = None, since: date | None = None, using: str = DEFAULT_DB_ALIAS
) -> EnsureResult:
    """The click table's partitions for this month, `ahead` months after it (CLICK_PARTITIONS_AHEAD when
    None) and, with `since`, every month from that one; rows in the default partition moved to their month.
    Nothing to do (partitioned False) on SQLite."""
    months = settings.CLICK_PARTITIONS_AHEAD if ahead is None else ahead
    if months < 0:
        raise ValueError("ahead must be 0 or more months")
    return ensure_on(connections[using], ahead=months, today=clock_now(), since=since)
