"""The click table partitioned by month on PostgreSQL (referrals.services.partitions says how it is kept).

`referrals_click` becomes a table range-partitioned on `created_at`: one partition per UTC month, from the
month of its oldest row to CLICK_PARTITIONS_AHEAD months after this one, and a DEFAULT partition for
anything outside. Its primary key becomes (id, created_at): PostgreSQL's keys on a partitioned table must
hold the partition key. For the ORM nothing changes (Click's pk is still its UUID, random, so unique).

A foreign key to a partitioned table must name the whole key, so Signup.click loses its database
constraint: Django's ORM still sets the signups' click to NULL when a click is deleted (on_delete=SET_NULL).

The conversion runs in this migration's transaction: the old table is renamed, the partitioned one created
with its partitions, the rows copied (INSERT ... SELECT), then the key, the indexes (on the parent:
PostgreSQL builds them on every partition) and the foreign keys; the old table dropped. Clicks cannot be
written meanwhile: on a large table, plan a maintenance window (rebuilding the key, indexes and foreign keys
of ten million clicks took about 140 s in bench/volume.py on two busy cores, and the copy comes on top). On
an empty database it takes a few milliseconds. SQLite, the embedded default, keeps a plain table: nothing runs.
"""

from datetime import UTC, datetime

from django.conf import settings
from django.db import migrations, models

from referrals.services import partitions

TABLE = partitions.TABLE
OLD = f"{TABLE}_unpartitioned"


def _definitions(cursor, table):
    """The indexes (not the key) and foreign keys of `table`, as statements that make them again."""
    cursor.execute(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u')) "
        "ORDER BY i.indexrelid",
        [table],
    )
    indexes = [row[0].replace(" ON ONLY ", " ON ") for row in cursor.fetchall()]
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
        [table],
    )
    fks = cursor.fetchall()
    cursor.execute(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u'))",
        [table],
    )
    index_names = [row[0] for row in cursor.fetchall()]
    cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype IN ('p', 'u')", [table])
    keys = [row[0] for row in cursor.fetchall()]
    return indexes, fks, index_names, keys


def _swap_out(cursor):
    """Rename the current table to OLD and free the names of its key and indexes; returns what to rebuild."""
    indexes, fks, index_names, keys = _definitions(cursor, TABLE)
    cursor.execute(f'ALTER TABLE "{TABLE}" RENAME TO "{OLD}"')
    for name in keys:
        cursor.execute(f'ALTER TABLE "{OLD}" DROP CONSTRAINT "{name}"')
    for name in index_names:
        cursor.execute(f'DROP INDEX "{name}"')
    return indexes, fks


def _rebuild(cursor, indexes, fks, key):
    cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{TABLE}_pkey" PRIMARY KEY ({key})')
    for statement in indexes:
        cursor.execute(statement)
    for name, definition in fks:
        cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{name}" {definition}')


def partition(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql" or partitions.is_partitioned(connection):
        return
    now = datetime.now(UTC)
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT min(created_at) FROM "{TABLE}"')  # noqa: S608
        oldest = cursor.fetchone()[0]
        indexes, fks = _swap_out(cursor)
        cursor.execute(
            f'CREATE TABLE "{TABLE}" (LIKE "{OLD}" INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMMENTS) '
            "PARTITION BY RANGE (created_at)"
        )
        first = partitions.month_start(min(oldest, now) if oldest else now)
        last = partitions.add_months(partitions.month_start(now), settings.CLICK_PARTITIONS_AHEAD)
        for month in partitions.months_between(first, last):
            partitions.create_month(cursor, month)
        partitions.create_default(cursor)
        # Rows first, then the indexes: one sorted build per partition rather than an insert each.
        cursor.execute(f'INSERT INTO "{TABLE}" SELECT * FROM "{OLD}"')  # noqa: S608
        _rebuild(cursor, indexes, fks, "id, created_at")
        partitions.name_partition_indexes(cursor)
        cursor.execute(f'DROP TABLE "{OLD}"')
        if oldest:
            cursor.execute(f'ANALYZE "{TABLE}"')


def unpartition(apps, schema_editor):
    """Back to one plain table keyed by id (the rows copied)."""
    connection = schema_editor.connection
    if connection.vendor != "postgresql" or not partitions.is_partitioned(connection):
        return
    with connection.cursor() as cursor:
        indexes, fks = _swap_out(cursor)
        cursor.execute(f'CREATE TABLE "{TABLE}" (LIKE "{OLD}" INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMMENTS)')
        cursor.execute(f'INSERT INTO "{TABLE}" SELECT * FROM "{OLD}"')  # noqa: S608
        _rebuild(cursor, indexes, fks, "id")
        cursor.execute(f'DROP TABLE "{OLD}" CASCADE')


class Migration(migrations.Migration):
    # After 0009_analytics_indexes (whose indexes it carries over), and after the other migrations of this
    # release (it merges their branches).
    dependencies = [
        ("referrals", "0010_ip_pepper"),
        ("referrals", "0012_analytics_rollups"),
    ]

    operations = [
        # First: a foreign key to the click table would stop the table's swap (and cannot point at a
        # partitioned table without created_at).
        migrations.AlterField(
            model_name="signup",
            name="click",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=models.deletion.SET_NULL,
                related_name="+",
                to="referrals.click",
            ),
        ),
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
