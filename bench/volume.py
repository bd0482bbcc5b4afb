"""Volume: the consoles' heaviest reads on 50 million clicks and 5 million signups, the click table partitioned.

Set-up: a database of its own (`--db`, default parrain_bench_volume) migrated by the project's migrations, so
the click table is partitioned by month (referrals migration 0011); two programs made by the real services
(one with nine tenths of the traffic); the partitions of every month of the history made by
`referrals.services.partitions` (as `manage.py ensure_click_partitions --since` would); then, with PostgreSQL
COPY and the tables' indexes and keys dropped meanwhile: the ambassadors (with their users, a channel link for
one in five), the signups and the clicks, generated as they are streamed (two COPYs side by side on two
connections, a megabyte at a time: nothing grows with the row count in this process). Clicks spread over
`--months` months (a few ambassadors bring a large share, as in real programs), 4 % bots; a signup referred
by a cookie or the API has its click. Then the keys and indexes are built again (on the partitioned table's
parent: PostgreSQL builds them on every partition), VACUUM ANALYZE, and `manage.py rollup_analytics` when
Parrain has that command (the staff analytics read its daily roll-ups).

Measured in this process through django.test.Client (DEBUG off), each page `--runs` times after a warm-up,
median and p95: the ambassador dashboard (the ambassador with the most clicks, and an ordinary one), the audit
search by e-mail and by ambassador code (admin), the staff analytics of the last 90 days (admin); beside the
floor: /health/ through the same client and a `SELECT 1` round trip. For every SELECT a page sends to the
click or signup table, EXPLAIN (FORMAT JSON) walked: sequential scans of those tables, the indexes read,
and how many click partitions the plan reads of those that exist (pruned at planning or at run time).

A full run (50M clicks) needs about 15 GB of disk and takes tens of minutes on two cores: it is not part of
`make bench` (bench/run.sh runs it with BENCH_VOLUME=1). `--drop` drops the database at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402  (the repository root must be importable first)
    DB_PREFIX,
    add_store_options,
    bench_begin,
    celery_purge,
    django_in_process,
    manage,
    parrain_env,
    say,
    table,
)
from bench.consoles import (  # noqa: E402
    AGENTS,
    FIRST,
    NULL,
    REFERERS,
    Copier,
    Page,
    address,
    code_for,
    drop_indexes,
    time_page,
)

SLUG = "bench-volume"
SMALL_SLUG = "bench-volume-small"
DAY = 86400.0
# A database this script made carries this comment: it may recreate or drop that one, and any parrain_bench*.
MARK = "parrain bench volume: throwaway"
BIG_TABLES = ("referrals_click", "referrals_signup")


@dataclass(frozen=True)
class Sizes:
    clicks: int = 50_000_000
    signups: int = 5_000_000
    ambassadors: int = 50_000
    months: int = 12


@dataclass
class Loaded:
    program_id: int = 0
    top_user_id: int = 0  # the ambassador with the most clicks
    mid_user_id: int = 0  # an ordinary one
    top_code: str = ""
    mid_code: str = ""
    sample_email: str = ""
    end_day: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


# --- The database -------------------------------------------------------------------------------------


def server(pg: str, db: str = "postgres") -> str:
    return f"{pg.rstrip('/')}/{db}"


def recreate(pg: str, db: str) -> None:
    """A fresh `db`: dropped first only when it is a parrain_bench* one or one this script made (its comment)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server(pg), autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [db]
        ).fetchone()
        if row is not None:
            if not (db.startswith(DB_PREFIX) or row[0] == MARK):
                raise SystemExit(f"refusing to drop {db!r}: not a {DB_PREFIX}* database, nor one this script made")
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(db), sql.Literal(MARK)))


def drop(pg: str, db: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(server(pg), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))


# --- Generation ---------------------------------------------------------------------------------------


class Randoms:
    """Random hex drawn from os.urandom a block at a time, and a pool of IP hashes (visitors come back)."""

    def __init__(self, rng: random.Random) -> None:
        self.buf = ""
        self.pos = 0
        self.ips = [f"{rng.getrandbits(256):064x}" for _ in range(65_536)]

    def hex(self, n: int) -> str:
        if self.pos + n > len(self.buf):
            self.buf, self.pos = os.urandom(1 << 20).hex(), 0
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def uuid(self) -> str:
        h = self.hex(32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"


def ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def setup_programs() -> tuple[Any, Any]:
    from ambassadors.services import program_create
    from core.actors import Actor

    bench = Actor.system("bench")
    program = program_create(
        actor=bench, slug=SLUG, name="Bench volume", destination_url="https://shop.example.com/welcome"
    )
    small = program_create(actor=bench, slug=SMALL_SLUG, name="Bench volume (small)")
    return program, small


def check_columns(cursor: Any, table_name: str, columns: list[str]) -> None:
    """A column added to the table with neither a default nor a NULL would make the COPY fail: say it first."""
    cursor.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND is_nullable = 'NO' "
        "AND column_default IS NULL",
        [table_name],
    )
    missing = sorted({row[0] for row in cursor.fetchall()} - set(columns))
    if missing:
        raise SystemExit(f"bench/volume.py does not fill {table_name}.{', '.join(missing)}: update its loader")


CLICK_COLUMNS = [
    "id", "program_id", "ambassador_id", "link_id", "created_at", "visitor_id", "ip_hash", "user_agent_family",
    "referer_host", "is_bot", "flood",
]  # fmt: skip
SIGNUP_COLUMNS = [
    "id", "program_id", "email", "email_canonical", "external_id", "ambassador_id", "method", "click_id", "link_id",
    "status", "reason", "reason_detail", "ip_hash", "visitor_id", "created_at", "wants_price_news",
]  # fmt: skip


def load(sizes: Sizes, *, dsn: str, seed: int = 5) -> Loaded:
    """Everything but the programs, with COPY; the indexes rebuilt after. Django is set up (for the services)."""
    import psycopg
    from django.db import connection

    from ambassadors.mailbox import canonical_mailbox
    from ambassadors.normalise import code_key
    from referrals.services.partitions import click_partitions_ensure, name_partition_indexes

    rng = random.Random(seed)
    rand = Randoms(rng)
    loaded = Loaded()
    now = datetime.now(UTC).replace(microsecond=0)
    end = now.timestamp() - 3600
    start = end - sizes.months * 30.4 * DAY
    t0 = start - 30 * DAY  # the first ambassadors joined a month before the history
    join_span = (end - t0) * 0.8

    t = time.perf_counter()
    program, small = setup_programs()
    loaded.program_id = program.pk
    made = click_partitions_ensure(since=datetime.fromtimestamp(t0, UTC).date())
    loaded.seconds["programs, partitions"] = time.perf_counter() - t
    say(f"  partitions made: {len(made.created)} ({made.created[0]} .. {made.created[-1]})")
    connection.close()

    plan = [(program.pk, 0.9), (small.pk, 0.1)]  # (program, share of everything)
    with psycopg.connect(dsn, autocommit=True) as conn, psycopg.connect(dsn) as conn2:
        cur = conn.cursor()
        for table_name, columns in (("referrals_click", CLICK_COLUMNS), ("referrals_signup", SIGNUP_COLUMNS)):
            check_columns(cur, table_name, columns)
        t = time.perf_counter()
        with conn.transaction():
            rebuild = [s.replace(" ON ONLY ", " ON ") for s in drop_indexes(cur, list(BIG_TABLES))]
        loaded.seconds["drop indexes"] = time.perf_counter() - t

        # Ambassadors, with a user each and a channel link for one in five.
        t = time.perf_counter()
        ids = {}
        for name in ("auth_user", "ambassadors_ambassador", "referrals_referrallink", "referrals_signup"):
            cur.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {name}")  # noqa: S608
            ids[name] = int(cur.fetchone()[0])
        # Per program: the ambassadors' (id, user id, link id or 0, joined), in order of joining.
        people: dict[int, list[tuple[int, int, int, float]]] = {}
        user_id, amb_id, link_id = ids["auth_user"], ids["ambassadors_ambassador"], ids["referrals_referrallink"]
        serial = 0
        with (
            cur.copy(
                "COPY auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, "
                "is_active, date_joined) FROM STDIN"
            ) as users,
        ):
            out = Copier(users)
            for program_id, share in plan:
                n = max(3, int(sizes.ambassadors * share))
                people[program_id] = []
                for i in range(n):
                    joined = t0 + (i + rng.random()) / n * join_span
                    email = f"ambassador{amb_id}@example.com"
                    out.row(f"{user_id}\t!\tf\t{email}\t\t\t{email}\tf\tt\t{ts(t0 - DAY)}")
                    people[program_id].append((amb_id, user_id, link_id if i % 5 == 0 else 0, joined))
                    link_id += 1 if i % 5 == 0 else 0
                    serial += 1
                    user_id += 1
                    amb_id += 1
            out.flush()
        with cur.copy(
            "COPY ambassadors_ambassador (id, program_id, user_id, code, code_key, email, email_canonical, "
            "display_name, is_active, created_at, claimed_at) FROM STDIN"
        ) as copy:
            out = Copier(copy)
            for program_id, _ in plan:
                for a_id, u_id, _, joined in people[program_id]:
                    code = code_for(a_id)
                    email = f"ambassador{a_id}@example.com"
                    out.row(
                        f"{a_id}\t{program_id}\t{u_id}\t{code}\t{code_key(code)}\t{email}\t{email}\t"
                        f"{FIRST[a_id % len(FIRST)].title()}\tt\t{ts(joined)}\t{ts(joined + 600)}"
                    )
            out.flush()
        with cur.copy(
            "COPY referrals_referrallink (id, ambassador_id, channel, code, code_key, created_at) FROM STDIN"
        ) as copy:
            out = Copier(copy)
            for program_id, _ in plan:
                for a_id, _, l_id, joined in people[program_id]:
                    if l_id:
                        code = f"{code_for(a_id)}-IG"
                        out.row(f"{l_id}\t{a_id}\tinstagram\t{code}\t{code_key(code)}\t{ts(joined + 3600)}")
            out.flush()
        loaded.counts["ambassadors"] = amb_id - ids["ambassadors_ambassador"]
        loaded.seconds["ambassadors"] = time.perf_counter() - t

        # Signups and clicks, streamed side by side: a signup referred by a cookie or the API has its click.
        t = time.perf_counter()
        clicks_of: dict[int, int] = {}
        signup_id = ids["referrals_signup"]
        cur2 = conn2.cursor()
        click_sql = f"COPY referrals_click ({', '.join(CLICK_COLUMNS)}) FROM STDIN"
        signup_sql = f"COPY referrals_signup ({', '.join(SIGNUP_COLUMNS)}) FROM STDIN"
        with cur.copy(click_sql) as click_copy, cur2.copy(signup_sql) as signup_copy:
            clicks, signups = Copier(click_copy), Copier(signup_copy)
            for program_id, share in plan:
                crowd = people[program_id]
                n_amb = len(crowd)
                n_signups = int(sizes.signups * share)
                n_clicks = int(sizes.clicks * share)
                # Signups come in time order; the clicks that did not convert are spread among them.
                filler_per_signup = max(0.0, (n_clicks - n_signups * 0.7 * 0.6) / n_signups)
                owed = 0.0
                last_report = time.perf_counter()
                for n in range(n_signups):
                    at = start + (n + rng.random()) / n_signups * (end - start)
                    joined = max(1, min(n_amb, int((at - t0) / join_span * n_amb)))
                    owed += filler_per_signup
                    while owed >= 1:
                        owed -= 1
                        cat = at - rng.random() * 3600
                        a_id, _, l_id, _ = crowd[int(joined * rng.random() ** 2)]
                        bot = rng.random() < 0.04
                        link = l_id if l_id and rng.random() < 0.4 else NULL
                        clicks.row(
                            f"{rand.uuid()}\t{program_id}\t{a_id}\t{link}\t{ts(cat)}\t{'' if bot else rand.uuid()}\t"
                            f"{rand.ips[rng.getrandbits(16)]}\t{'bot' if bot else rng.choice(AGENTS)}\t"
                            f"{rng.choice(REFERERS)}\t{'t' if bot else 'f'}\tf"
                        )
                        clicks_of[a_id] = clicks_of.get(a_id, 0) + 1
                    referred = rng.random() < 0.7
                    amb = crowd[int(joined * rng.random() ** 2)] if referred else None
                    ip, vis = rand.ips[rng.getrandbits(16)], rand.uuid()
                    method, click_id, link, status = "none", NULL, NULL, "qualified"
                    r = rng.random()
                    if amb is not None:
                        m = rng.random()
                        method = "code" if m < 0.4 else "cookie" if m < 0.85 else "api" if m < 0.995 else "manual"
                        if r < 0.03:
                            status = "pending_review"
                        elif r < 0.06:
                            status = "rejected"
                    email = address(serial, rng)
                    serial += 1
                    if amb is not None and method in ("cookie", "api"):
                        click_id = rand.uuid()
                        cat = max(amb[3], at - rng.uniform(60, 3 * DAY))
                        link = amb[2] if amb[2] and rng.random() < 0.4 else NULL
                        clicks.row(
                            f"{click_id}\t{program_id}\t{amb[0]}\t{link}\t{ts(cat)}\t{vis}\t{ip}\t"
                            f"{rng.choice(AGENTS)}\t{rng.choice(REFERERS)}\tf\tf"
                        )
                        clicks_of[amb[0]] = clicks_of.get(amb[0], 0) + 1
                    reason = "" if status == "qualified" else "velocity"
                    signups.row(
                        f"{signup_id}\t{program_id}\t{email}\t{canonical_mailbox(email)}\t"
                        f"{f'cust-{signup_id}' if method == 'api' else ''}\t{amb[0] if amb else NULL}\t{method}\t"
                        f"{click_id}\t{link}\t{status}\t{reason}\t\t{ip}\t{vis}\t{ts(at)}\t{'t' if r > 0.8 else 'f'}"
                    )
                    if program_id == program.pk and n == n_signups - 100:
                        loaded.sample_email = email
                    signup_id += 1
                    if time.perf_counter() - last_report > 60:
                        last_report = time.perf_counter()
                        say(f"    {clicks.rows:,} clicks, {signups.rows:,} signups, {time.perf_counter() - t:.0f}s")
            clicks.flush()
            signups.flush()
        conn2.commit()
        loaded.counts["clicks"], loaded.counts["signups"] = clicks.rows, signups.rows
        loaded.seconds["signups and clicks (COPY)"] = time.perf_counter() - t

        # The ambassadors the dashboard is measured for: the one with the most clicks, and an ordinary one.
        big = people[program.pk]
        by_id = {a[0]: a for a in big}
        top = max(by_id, key=lambda a: clicks_of.get(a, 0))
        mid = sorted(by_id, key=lambda a: clicks_of.get(a, 0))[len(by_id) // 2]
        loaded.top_user_id, loaded.top_code = by_id[top][1], code_for(top)
        loaded.mid_user_id, loaded.mid_code = by_id[mid][1], code_for(mid)
        loaded.counts["clicks of the top ambassador"] = clicks_of.get(top, 0)
        loaded.counts["clicks of the ordinary one"] = clicks_of.get(mid, 0)

        t = time.perf_counter()
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute("SET max_parallel_maintenance_workers = 1")
        for statement in rebuild:
            s = time.perf_counter()
            cur.execute(statement)
            say(f"    {time.perf_counter() - s:6.1f}s  {statement[:110]}")
        name_partition_indexes(cur)
        for name in ("auth_user", "ambassadors_ambassador", "referrals_referrallink", "referrals_signup"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) + 1 FROM {name}), false)"  # noqa: S608
            )
        loaded.seconds["keys and indexes"] = time.perf_counter() - t
        t = time.perf_counter()
        cur.execute("VACUUM ANALYZE")
        loaded.seconds["VACUUM ANALYZE"] = time.perf_counter() - t
        loaded.end_day = datetime.fromtimestamp(end, UTC).date().isoformat()
    return loaded


# --- Plans --------------------------------------------------------------------------------------------


@dataclass
class PlanFacts:
    seq_scans: set[str] = field(default_factory=set)  # big tables (or their partitions) read whole
    indexes: set[str] = field(default_factory=set)
    click_partitions: set[str] = field(default_factory=set)
    removed: int = 0  # subplans pruned at run time ("Subplans Removed")


# A partition's own index is named after it: one name for all months in the summary.
MONTH_SUFFIX = re.compile(r"_(y\d{4}m\d{2}|default)$")
MONTH_INFIX = re.compile(r"^referrals_click_(y\d{4}m\d{2}|default)_")
# Below this many rows a sequential scan is the right plan (an empty month ahead, the default partition).
SMALL_TABLE_ROWS = 10_000


def walk(node: dict[str, Any], facts: PlanFacts, rows_of: dict[str, float]) -> None:
    relation = node.get("Relation Name", "")
    kind = node.get("Node Type", "")
    if relation.startswith("referrals_click"):
        facts.click_partitions.add(relation)
    if kind == "Seq Scan" and relation.startswith(BIG_TABLES) and rows_of.get(relation, 0) >= SMALL_TABLE_ROWS:
        facts.seq_scans.add(relation)
    if "Index Name" in node:
        index = MONTH_INFIX.sub("referrals_click_", MONTH_SUFFIX.sub("", node["Index Name"]))
        facts.indexes.add(f"{index} ({kind.replace(' Scan', '').lower()})")
    facts.removed += int(node.get("Subplans Removed", 0))
    for child in node.get("Plans", []):
        walk(child, facts, rows_of)


def explain(sql: str) -> PlanFacts:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
        raw = cursor.fetchone()[0]
        cursor.execute("SELECT relname, reltuples FROM pg_class WHERE relname LIKE 'referrals\\_%%' AND relkind = 'r'")
        rows_of = dict(cursor.fetchall())
    plan = raw if isinstance(raw, list) else json.loads(raw)
    facts = PlanFacts()
    walk(plan[0]["Plan"], facts, rows_of)
    return facts


def click_partition_count() -> int:
    from django.db import connection

    from referrals.services.partitions import partitions

    return len(partitions(connection))


# --- Main ---------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Sizes()
    p.add_argument("--clicks", type=int, default=d.clicks)
    p.add_argument("--signups", type=int, default=d.signups)
    p.add_argument("--ambassadors", type=int, default=d.ambassadors)
    p.add_argument("--months", type=int, default=d.months, help="the months the history spreads over")
    p.add_argument("--runs", type=int, default=7, help="timed requests per page, after a warm-up")
    p.add_argument("--reuse", action="store_true", help="measure the database a previous run loaded (no load)")
    p.add_argument("--no-rollup", action="store_true", help="do not run manage.py rollup_analytics after the load")
    p.add_argument("--drop", action="store_true", help="drop the database at the end")
    add_store_options(p, db="parrain_bench_volume")
    return p.parse_args()


def fixture_file(db: str) -> Path:
    return Path(__file__).resolve().parent / "results" / f"volume-{db}.json"


def main() -> int:  # pragma: no cover - the benchmark itself
    args = parse_args()
    out = bench_begin(args, title="Parrain on 50 million clicks: partitioned clicks, consoles' reads", name="volume")
    sizes = Sizes(args.clicks, args.signups, args.ambassadors, args.months)
    env = parrain_env(pg=args.pg, db=args.db, redis_url=args.redis)
    env["ALLOWED_HOSTS"] = "127.0.0.1,testserver"
    manage(env, "collectstatic", "--noinput", log=out / "setup.log")
    dsn = server(args.pg, args.db)
    if args.reuse:
        say(f"reusing the database {args.db} a previous run loaded")
        django_in_process(env)
        loaded = Loaded(**json.loads(fixture_file(args.db).read_text()))
    else:
        say(f"setting up: fresh database {args.db}, migrate, then COPY: {sizes}")
        t = time.perf_counter()
        recreate(args.pg, args.db)
        manage(env, "migrate", "--noinput", log=out / "setup.log")
        say(f"  migrated in {time.perf_counter() - t:.1f}s")
        celery_purge(env)
        django_in_process(env)
        t = time.perf_counter()
        loaded = load(sizes, dsn=dsn)
        say(f"  load: {time.perf_counter() - t:.0f}s")
        rollup = (
            Path(__file__).resolve().parent.parent / "referrals" / "management" / "commands" / "rollup_analytics.py"
        )
        if rollup.exists() and not args.no_rollup:
            t = time.perf_counter()
            manage(env, "rollup_analytics", log=out / "setup.log")
            loaded.seconds["manage.py rollup_analytics"] = time.perf_counter() - t
            say(f"  manage.py rollup_analytics: {time.perf_counter() - t:.0f}s (the staff analytics read its roll-ups)")
        else:
            say("  no manage.py rollup_analytics run: the staff analytics count from the click and signup tables")
        celery_purge(env)
        fixture_file(args.db).parent.mkdir(parents=True, exist_ok=True)
        fixture_file(args.db).write_text(json.dumps(loaded.__dict__))
    say(table([[k, f"{v:,}"] for k, v in loaded.counts.items()], ["loaded", "rows"]))
    say("  " + ", ".join(f"{k} {v:.0f}s" for k, v in loaded.seconds.items()))

    import logging
    import warnings
    from urllib.parse import urlencode

    warnings.filterwarnings("ignore", message="No directory at")
    logging.getLogger("django.request").setLevel(logging.CRITICAL)
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_size_pretty(pg_database_size(current_database())), "
            "(SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits "
            "WHERE inhparent = 'referrals_click'::regclass)"
        )
        db_size, click_size = cursor.fetchone()
    say(f"database {db_size}; the click table with its indexes {click_size}, {click_partition_count()} partitions")
    say()

    users = get_user_model().objects
    admin, _ = users.get_or_create(
        username="bench-admin", defaults={"is_superuser": True, "is_staff": True, "email": "admin@staff.example.com"}
    )
    end_day = datetime.fromisoformat(loaded.end_day).date()
    days = urlencode({"start": (end_day - timedelta(days=89)).isoformat(), "end": end_day.isoformat()})
    as_admin = Client(raise_request_exception=False)
    as_admin.force_login(admin)
    top, mid = Client(raise_request_exception=False), Client(raise_request_exception=False)
    top.force_login(users.get(pk=loaded.top_user_id))
    mid.force_login(users.get(pk=loaded.mid_user_id))

    def search(label: str, **query: str) -> Page:
        return Page(f"audit search by {label}", "audit-home", query=urlencode(query), explain=True)

    pages = [
        (as_admin, Page("/health/ (baseline)", "health", baseline=True)),
        (top, Page(f"dashboard, the ambassador with the most clicks ({loaded.top_code})", "dashboard", explain=True)),
        (mid, Page(f"dashboard, an ordinary ambassador ({loaded.mid_code})", "dashboard", explain=True)),
        (as_admin, search("e-mail", email=loaded.sample_email)),
        (as_admin, search("code (the top ambassador)", ambassador=loaded.top_code)),
        (as_admin, search("code (an ordinary one)", ambassador=loaded.mid_code)),
        (as_admin, Page("staff analytics, 90 days", "staff-analytics", {"slug": SLUG}, days, explain=True)),
    ]

    # The floor: one round trip to PostgreSQL.
    with connection.cursor() as cursor:
        trips = []
        for _ in range(200):
            t = time.perf_counter()
            cursor.execute("SELECT 1")
            cursor.fetchone()
            trips.append((time.perf_counter() - t) * 1000)
    say(f"measuring: {args.runs} requests per page after a warm-up, in process (django.test.Client, DEBUG off)")
    rows = [["SELECT 1 round trip (baseline)", "-", f"{statistics.median(trips):.2f}", "-", "1", "-"]]
    total = click_partition_count()
    plans = []
    for client, page in pages:
        r = time_page(client, page, requests=args.runs, warmup=2)
        if not r.ms:
            rows.append([page.label, r.status, "-", "-", "-", "not measured"])
            continue
        facts_all = PlanFacts()
        for sql in r.sql:
            if sql.lstrip().upper().startswith(("SELECT", "WITH")) and any(t in sql for t in BIG_TABLES):
                facts = explain(sql)
                plans.append((page.label, sql, facts))
                facts_all.seq_scans |= facts.seq_scans
                facts_all.indexes |= facts.indexes
                facts_all.click_partitions |= facts.click_partitions
        seq = "SEQ SCAN: " + ", ".join(sorted(facts_all.seq_scans)) if facts_all.seq_scans else "indexes only"
        if page.baseline:
            seq = "baseline"
        rows.append([page.label, r.status, f"{r.median:.1f}", f"{r.p95:.1f}", str(r.queries), seq])
        say(f"  {page.label}: median {r.median:.1f} ms")
        slowest = sorted(zip(r.sql_ms, r.sql, strict=True), reverse=True)[:2]
        for ms, sql in slowest if not page.baseline else []:
            one_line = " ".join(sql.split())
            say(f"    {ms:7.1f} ms  {one_line[:150]}")
    say()
    say(table(rows, ["page", "status", "median ms", "p95 ms", "queries", "plans (click and signup tables)"]))
    say()
    say(f"plans: EXPLAIN (FORMAT JSON) of each SELECT on the click or signup table ({total} click partitions exist)")
    for label, sql, facts in plans:
        parts = facts.click_partitions
        read = f"click partitions read: {len(parts)} of {total}" if parts else "no click partition"
        if facts.removed:
            read += f" ({facts.removed} pruned at run time)"
        one_line = re.sub(r"\s+", " ", sql)
        say(f"- {label}: {one_line[:140]}...")
        seqs = ", ".join(sorted(facts.seq_scans)) or "none"
        say(f"    {read}; indexes: {', '.join(sorted(facts.indexes)) or 'none'}; ")
        say(f"    sequential scans (of {SMALL_TABLE_ROWS:,}+ rows): {seqs}")
    (out / "summary.txt").write_text(table(rows, ["page", "status", "median ms", "p95 ms", "queries", "plans"]) + "\n")
    connection.close()
    if args.drop:
        drop(args.pg, args.db)
        say(f"dropped the database {args.db}")
    failed = [row[0] for row in rows if row[1] not in ("200", "-")]
    if failed:
        say(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
