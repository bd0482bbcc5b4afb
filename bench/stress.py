"""Concurrency and money under load: signups, conversions, refunds and overrides racing on a few ambassadors.

gunicorn with 16 sync workers and a Celery worker with `-c 4` serve one program with a double-sided
tier (every referee gets a welcome voucher), a tier on approved conversions (a refund revokes it) and
a collective price ladder. Client threads send, through the real HTTP API, new signups attributed to
a handful of ambassadors (so their counters rows are contended), purchases of those referees (approved
at once: no hold period), refunds of some, and admin overrides moving signups between ambassadors.

At the end it prints the requests sent and their statuses (a 5xx is a failure), the deadlocks seen in
the gunicorn and Celery logs and in PostgreSQL's (its log and `pg_stat_database`), the transactions the
retry helper retried, the signups and refunds in the database against those sent, and what a
reconciliation then finds to repair (nothing, when no event was lost).

Everything runs against a fresh parrain_bench_stress database and the Redis db given; see bench/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import re
import secrets
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402  (the repository root must be importable first)
    VENV_BIN,
    Gunicorn,
    add_store_options,
    bench_begin,
    celery_purge,
    django_in_process,
    free_port,
    fresh_database,
    manage,
    parrain_env,
    say,
    start,
    stop,
    table,
    wait_http,
)

SLUG = "bench-stress"
PG_LOG = Path("/var/log/postgresql/postgresql-15-main.log")
# One line per traceback of a deadlock (Django's OperationalError that wraps it is not counted again).
DEADLOCK_LINE = re.compile(r"^psycopg\.errors\.DeadlockDetected")
RETRY_LINE = re.compile(r"retrying the whole transaction")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=32, help="client threads sending requests at once")
    p.add_argument("--iterations", type=int, default=25, help="signups each client sends (with their purchases)")
    p.add_argument("--ambassadors", type=int, default=4, help="ambassadors the signups are attributed to")
    p.add_argument("--workers", type=int, default=16, help="gunicorn sync workers")
    p.add_argument("--concurrency", type=int, default=4, help="Celery worker processes (prefork)")
    p.add_argument("--app", default="config.wsgi:application", help="the WSGI application gunicorn serves")
    add_store_options(p, db="parrain_bench_stress")
    p.add_argument("--pg-log", default=str(PG_LOG), help="PostgreSQL's log file, read for deadlocks if readable")
    return p.parse_args()


# --- Set-up, through the real services -----------------------------------------------------------------


def setup_program(args: argparse.Namespace) -> dict[str, Any]:
    """The program, its three tiers, the ambassadors, a track key and an admin's session."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from ambassadors.services import ambassador_enroll, api_key_create, program_create
    from core.actors import Actor
    from rewards.models import RewardTier
    from rewards.services import tier_create

    bench = Actor.system("bench")
    program = program_create(
        actor=bench,
        slug=SLUG,
        name="Bench stress",
        destination_url="https://shop.example.com/",
        base_price=Decimal("20.00"),
        floor_price=Decimal("10.00"),
        hold_period_days=0,  # every purchase is approved as it is recorded
        velocity_limit=1_000_000,
    )
    individual = {"kind": RewardTier.Kind.INDIVIDUAL, "reward_type": RewardTier.RewardType.PERCENT_VOUCHER}
    tier_create(
        actor=bench,
        program=program,
        name="Two friends, both sides",
        metric=RewardTier.Metric.QUALIFIED_SIGNUPS,
        threshold=Decimal(2),
        repeat_every=Decimal(2),
        reward_value=Decimal(10),
        referee_reward_type=RewardTier.RewardType.PERCENT_VOUCHER,
        referee_reward_value=Decimal(10),
        **individual,
    )
    tier_create(
        actor=bench,
        program=program,
        name="Every purchase",
        metric=RewardTier.Metric.APPROVED_CONVERSIONS,
        threshold=Decimal(1),
        repeat_every=Decimal(1),
        reward_value=Decimal(5),
        **individual,
    )
    tier_create(
        actor=bench,
        program=program,
        name="Community price",
        kind=RewardTier.Kind.COLLECTIVE,
        step=5,
        drop_type=RewardTier.DropType.AMOUNT,
        drop_value=Decimal("0.10"),
    )
    codes = [
        ambassador_enroll(program=program, email=f"ambassador-{i}@example.com", display_name=f"A{i}")[0].code
        for i in range(args.ambassadors)
    ]
    _key, raw_key = api_key_create(program=program, scopes=["track", "read", "manage"], actor=bench, name="bench")
    admin = get_user_model().objects.create_superuser("bench-admin", "admin@example.com", secrets.token_urlsafe())
    session = SessionStore()
    session[SESSION_KEY] = str(admin.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = admin.get_session_auth_hash()
    session.save()
    csrf = secrets.token_hex(16)  # 32 characters: Django accepts the bare secret as the token
    return {
        "program_id": program.pk,
        "codes": codes,
        "key": raw_key,
        "admin_cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}; {settings.CSRF_COOKIE_NAME}={csrf}",
        "csrf": csrf,
    }


# --- Load ---------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the clients sent and what they got back, per kind of request."""

    sent: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, status: int, body: bytes) -> None:
        with self.lock:
            self.sent[kind] += 1
            self.statuses[(kind, status)] += 1
            if status >= 500 and len(self.failures) < 5:
                self.failures.append(f"{kind} -> {status}: {body[:200]!r}")


class Client:
    def __init__(self, port: int, setup: dict[str, Any], tally: Tally) -> None:
        self.port, self.setup, self.tally = port, setup, tally
        self.base = f"/api/v1/programs/{SLUG}"

    def post(self, kind: str, path: str, body: dict[str, Any], *, admin: bool = False) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "Host": "127.0.0.1"}
        if admin:
            headers["Cookie"] = self.setup["admin_cookie"]
            headers["X-CSRFToken"] = self.setup["csrf"]
        else:
            headers["Authorization"] = f"Bearer {self.setup['key']}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            connection.request("POST", self.base + path, json.dumps(body), headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        self.tally.record(kind, response.status, raw)
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, None


def client_run(client: Client, index: int, args: argparse.Namespace, run: str, gate: threading.Barrier) -> None:
    """One client: a signup each iteration; a purchase of every other referee; a refund of every fourth;
    and now and then an override moving one of its referees to the next ambassador (or to nobody)."""
    codes = client.setup["codes"]
    gate.wait()
    for n in range(args.iterations):
        serial = index * args.iterations + n
        code = None if serial % 10 == 9 else codes[serial % len(codes)]
        email = f"friend-{run}-{index}-{n}@example.org"
        status, signup = client.post("signup", "/signups", {"email": email, "referral_code": code})
        if status != 201 or not signup:
            continue
        if n % 2 == 0:
            order = f"order-{run}-{index}-{n}"
            body = {"external_id": order, "email": email, "amount": "19.90", "currency": "EUR"}
            status, _ = client.post("conversion", "/conversions", body)
            if status == 201 and n % 4 == 0:
                client.post("refund", f"/conversions/{order}/refund", {"reason": "stress refund"})
        if n % 8 == 3:
            target = codes[(serial + 1) % len(codes)] if serial % 16 != 3 else None
            body = {"ambassador_code": target, "reason": "stress override"}
            client.post("override", f"/signups/{signup['id']}/override", body, admin=True)


def load(port: int, setup: dict[str, Any], args: argparse.Namespace) -> tuple[Tally, float]:
    tally = Tally()
    run = f"{time.time_ns():x}"
    gate = threading.Barrier(args.clients)
    errors: queue.Queue[BaseException] = queue.Queue()

    def thread(i: int) -> None:
        try:
            client_run(Client(port, setup, tally), i, args, run, gate)
        except BaseException as exc:  # a socket error: reported below
            errors.put(exc)

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(args.clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    while not errors.empty():
        tally.failures.append(f"client error: {errors.get()!r}")
    return tally, elapsed


# --- Checks -------------------------------------------------------------------------------------------


def queue_drained(redis_url: str) -> bool:
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
    try:
        return client.llen("celery") == 0 and client.zcard("unacked_index") == 0
    finally:
        client.close()


def wait_drained(redis_url: str, timeout: float = 300) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if queue_drained(redis_url):
            time.sleep(1)  # the last task may still be committing after its acknowledgement
            if queue_drained(redis_url):
                return True
        time.sleep(0.5)
    return False


def count(sql: str, *params: Any) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


def pg_deadlocks(db: str) -> int:
    """PostgreSQL's own count of deadlocks detected in this database (pg_stat_database)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = %s", [db])
        return int(cursor.fetchone()[0])


def log_lines(path: Path, pattern: re.Pattern[str], *, since: int = 0, contains: str = "") -> int | None:
    try:
        with path.open("rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    return sum(1 for line in text.splitlines() if pattern.search(line) and contains in line)


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def main() -> int:
    args = parse_args()
    out = bench_begin(args, title="Parrain stress: signups, conversions, refunds and overrides at once", name="stress")
    env = parrain_env(pg=args.pg, db=args.db, redis_url=args.redis)
    env["CONN_MAX_AGE"] = "60"
    say(f"setting up: fresh database {args.db}, migrate, empty broker db ({args.redis})")
    fresh_database(env, pg=args.pg, db=args.db, log=out / "setup.log")
    celery_purge(env)
    django_in_process(env)
    setup = setup_program(args)
    pg_log = Path(args.pg_log)
    pg_log_start = file_size(pg_log)
    deadlocks_before = pg_deadlocks(args.db)

    port = free_port()
    gunicorn = Gunicorn(args.workers, "sync", 1)
    web_log, worker_log = out / "gunicorn.log", out / "celery-worker.log"
    web = start(gunicorn.argv(args.app, port, web_log), env=env, log=web_log)
    worker = start(
        [str(VENV_BIN / "celery"), "-A", "config", "worker", "-c", str(args.concurrency), "--pool", "prefork"]
        + ["--loglevel", "WARNING", "--hostname", f"stress-{secrets.token_hex(4)}@%h"],
        env=env,
        log=worker_log,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health/", proc=web, log=web_log)
        say(
            f"{gunicorn.describe()} (pid {web.pid}), Celery prefork -c {args.concurrency} (pid {worker.pid}); "
            f"{args.clients} clients x {args.iterations} signups on {args.ambassadors} ambassadors"
        )
        tally, elapsed = load(port, setup, args)
        say(f"load done in {elapsed:.1f}s; waiting for the Celery queue to drain")
        drained = wait_drained(args.redis)
    finally:
        stop(web)
        stop(worker)
    celery_purge(env)

    statuses = Counter[int]()
    for (_kind, status), n in tally.statuses.items():
        statuses[status] += n
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    rows = []
    for kind in ("signup", "conversion", "refund", "override"):
        by_status = {s: n for (k, s), n in tally.statuses.items() if k == kind}
        rows.append([kind, str(tally.sent[kind]), ", ".join(f"{s}: {n}" for s, n in sorted(by_status.items()))])
    rows.append(["all", str(sum(tally.sent.values())), ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))])
    say()
    say(table(rows, ["requests", "sent", "statuses"]))
    say(f"throughput: {sum(tally.sent.values()) / elapsed:.0f} requests/s over {elapsed:.1f}s")
    for failure in tally.failures:
        say(f"  e.g. {failure}")

    program_id = setup["program_id"]
    signups_db = count("SELECT count(*) FROM referrals_signup WHERE program_id = %s", program_id)
    signups_201 = tally.statuses[("signup", 201)]
    signup_events = count(
        "SELECT count(*) FROM core_auditevent WHERE action = 'signup.recorded' AND program_id = %s", program_id
    )
    refunds_200 = tally.statuses[("refund", 200)]
    reversed_db = count(
        "SELECT count(*) FROM referrals_conversion WHERE program_id = %s AND status = 'reversed'", program_id
    )
    reversed_events = count(
        "SELECT count(*) FROM core_auditevent WHERE action = 'conversion.reversed' AND program_id = %s", program_id
    )
    pg_stat = pg_deadlocks(args.db) - deadlocks_before
    pg_logged = log_lines(pg_log, re.compile(r"ERROR:\s+deadlock detected"), since=pg_log_start, contains=args.db)
    web_deadlocks = log_lines(web_log, DEADLOCK_LINE)
    worker_deadlocks = log_lines(worker_log, DEADLOCK_LINE)
    retried = (log_lines(web_log, RETRY_LINE) or 0) + (log_lines(worker_log, RETRY_LINE) or 0)
    report_text = manage(env, "reconcile_rewards", log=out / "reconcile.log")
    # The command's summary line (core/progress.py): "reconcile rewards: 1/1 in 0.52s (signups_fixed=0, ...)".
    match = re.search(r"reconcile rewards: \S+ in [0-9.]+s \((.*)\)", report_text)
    report = {k: int(v) for k, v in (p.split("=") for p in match.group(1).split(", "))} if match else {}
    drift = {k: v for k, v in report.items() if v}

    say()
    checks = [
        ["5xx answers", str(server_errors), "0"],
        ["deadlocks in gunicorn's log (tracebacks)", str(web_deadlocks), "0"],
        ["deadlocks in Celery's log (tracebacks)", str(worker_deadlocks), "0"],
        ["deadlocks detected by PostgreSQL (pg_stat_database)", str(pg_stat), "-"],
        ["deadlocks in PostgreSQL's log", "unreadable" if pg_logged is None else str(pg_logged), "-"],
        ["transactions retried (deadlock or serialization failure)", str(retried), "-"],
        ["signups in the database / answered 201", f"{signups_db} / {signups_201}", "equal"],
        ["signup.recorded audit events", str(signup_events), str(signups_201)],
        ["conversions reversed in the database / refunds answered 200", f"{reversed_db} / {refunds_200}", "equal"],
        ["conversion.reversed audit events", str(reversed_events), str(refunds_200)],
        ["Celery queue drained", "yes" if drained else "NO", "yes"],
        ["reconciliation afterwards", ", ".join(f"{k} {v}" for k, v in drift.items()) or "nothing to repair", "-"],
    ]
    say(table(checks, ["check", "value", "expected"]))
    ok = (
        server_errors == 0
        and not web_deadlocks
        and not worker_deadlocks
        and signups_db == signups_201 == signup_events == tally.sent["signup"]
        and reversed_db == refunds_200 == reversed_events == tally.sent["refund"]
        and drained
        and match is not None
        and not drift
        and not tally.failures
    )
    say()
    say("STRESS OK: no 5xx, every signup and refund recorded once, nothing to reconcile" if ok else "STRESS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
