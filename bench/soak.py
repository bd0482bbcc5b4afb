"""Soak: a steady mix of clicks, signups, conversions and refunds for a long time, watching for leaks and drift.

gunicorn (sync workers), a Celery worker (prefork) and Celery beat serve one program with a tier on
qualified signups, a tier on approved conversions (a refund revokes it) and a collective price ladder,
against a fresh database and the Redis db given.

1. Measure: client threads send the mix as fast as the server answers for `--measure-seconds`; the
   requests per second they reach is the capacity of this machine.
2. Soak: the same clients send the mix at half that rate (open loop: a slow answer does not slow the
   schedule down) for `--minutes`. Every `--sample-seconds`, the resident memory (VmRSS in
   /proc/<pid>/status) of the gunicorn tree (master and workers) and of the Celery worker tree is read.
3. Drain and check: the Celery queue must empty (LLEN 0, nothing unacknowledged) within
   `--drain-timeout`; then every answer is matched against the rows (clicks, signups, refunds), every
   counter against a recount from the source rows, and `manage.py reconcile_rewards` must repair nothing.

Memory is judged after the warm-up (the first tenth of the soak, at least a minute: imports, caches and
connection pools fill up then): the median of the first minute after it against the median of the last
minute, within 10 %.

The database is dropped and recreated: its name must start with parrain_bench or end with _soak.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import secrets
import statistics
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
    DB_PREFIX,
    VENV_BIN,
    Gunicorn,
    add_store_options,
    bench_begin,
    celery_purge,
    django_in_process,
    free_port,
    manage,
    parrain_env,
    say,
    start,
    stop,
    table,
    wait_http,
)

SLUG = "bench-soak"
UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
MEMORY_TOLERANCE = 0.10


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0, help="how long the soak runs at half the capacity")
    p.add_argument("--measure-seconds", type=float, default=20.0, help="how long the capacity is measured")
    p.add_argument("--clients", type=int, default=8, help="client threads")
    p.add_argument("--ambassadors", type=int, default=20, help="ambassadors the traffic is spread over")
    p.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    p.add_argument("--concurrency", type=int, default=2, help="Celery worker processes (prefork)")
    p.add_argument("--sample-seconds", type=float, default=10.0, help="how often memory is sampled")
    p.add_argument("--drain-timeout", type=float, default=300.0, help="seconds the queue has to empty at the end")
    add_store_options(p, db="parrain_bench_soak")
    return p.parse_args()


def recreate_database(*, pg: str, db: str) -> None:
    import psycopg
    from psycopg import sql

    if not (db.startswith(DB_PREFIX) or db.endswith("_soak")):
        raise SystemExit(f"refusing to drop {db!r}: the soak only recreates databases named {DB_PREFIX}* or *_soak")
    with psycopg.connect(f"{pg.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))


# --- Set-up, through the real services -----------------------------------------------------------------


def setup_program(args: argparse.Namespace) -> dict[str, Any]:
    from ambassadors.services import ambassador_enroll, api_key_create, program_create
    from core.actors import Actor
    from rewards.models import RewardTier
    from rewards.services import tier_create

    bench = Actor.system("bench")
    program = program_create(
        actor=bench,
        slug=SLUG,
        name="Bench soak",
        destination_url="https://shop.example.com/",
        base_price=Decimal("20.00"),
        floor_price=Decimal("10.00"),
        hold_period_days=0,  # purchases are approved as they are recorded, so refunds revoke grants
        velocity_limit=1_000_000,
    )
    individual = {"kind": RewardTier.Kind.INDIVIDUAL, "reward_type": RewardTier.RewardType.PERCENT_VOUCHER}
    tier_create(
        actor=bench,
        program=program,
        name="Five friends",
        metric=RewardTier.Metric.QUALIFIED_SIGNUPS,
        threshold=Decimal(5),
        repeat_every=Decimal(5),
        reward_value=Decimal(10),
        **individual,
    )
    tier_create(
        actor=bench,
        program=program,
        name="Every second purchase",
        metric=RewardTier.Metric.APPROVED_CONVERSIONS,
        threshold=Decimal(2),
        repeat_every=Decimal(2),
        reward_value=Decimal(5),
        **individual,
    )
    tier_create(
        actor=bench,
        program=program,
        name="Community price",
        kind=RewardTier.Kind.COLLECTIVE,
        step=50,
        drop_type=RewardTier.DropType.AMOUNT,
        drop_value=Decimal("0.01"),
    )
    codes = [
        ambassador_enroll(program=program, email=f"ambassador-{i}@example.com", display_name=f"A{i}")[0].code
        for i in range(args.ambassadors)
    ]
    _key, raw_key = api_key_create(program=program, scopes=["track"], actor=bench, name="soak")
    return {"program_id": program.pk, "codes": codes, "key": raw_key}


# --- Load ---------------------------------------------------------------------------------------------


@dataclass
class Tally:
    sent: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    client_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, status: int, body: bytes) -> None:
        with self.lock:
            self.sent[kind] += 1
            self.statuses[(kind, status)] += 1
            if status >= 500 and len(self.failures) < 5:
                self.failures.append(f"{kind} -> {status}: {body[:200]!r}")

    def total(self) -> int:
        with self.lock:
            return sum(self.sent.values())


class Pacer:
    """Open-loop pacing shared by the clients: request slots at a fixed rate, or none (as fast as possible)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.interval = 0.0
        self.next_at = 0.0
        self.late = 0  # slots skipped because every client was busy (the schedule does not burst to catch up)

    def pace(self, rps: float) -> None:
        with self.lock:
            self.interval = 1.0 / rps if rps > 0 else 0.0
            self.next_at = time.monotonic()

    def wait(self) -> None:
        with self.lock:
            if self.interval == 0.0:
                return
            now = time.monotonic()
            if now - self.next_at > 1.0:
                self.late += int((now - self.next_at) / self.interval)
                self.next_at = now
            slot = self.next_at
            self.next_at += self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class Client:
    def __init__(self, port: int, setup: dict[str, Any], tally: Tally, pacer: Pacer) -> None:
        self.port, self.setup, self.tally, self.pacer = port, setup, tally, pacer
        self.base = f"/api/v1/programs/{SLUG}"

    def request(self, kind: str, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        self.pacer.wait()
        headers = {"Host": "127.0.0.1", "User-Agent": UA}
        if body is not None:
            headers |= {"Content-Type": "application/json", "Authorization": f"Bearer {self.setup['key']}"}
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, json.dumps(body) if body is not None else None, headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        self.tally.record(kind, response.status, raw)
        try:
            return response.status, json.loads(raw) if body is not None else None
        except ValueError:
            return response.status, None


def client_run(client: Client, index: int, run: str, stopping: threading.Event) -> None:
    """Each iteration: a click on an ambassador's link and a new subscriber (nine in ten referred); every
    other subscriber buys, and every fourth purchase is refunded."""
    codes = client.setup["codes"]
    n = 0
    while not stopping.is_set():
        serial = index * 1_000_000 + n
        code = codes[serial % len(codes)]
        client.request("click", "GET", f"/r/{code}")
        email = f"friend-{run}-{index}-{n}@example.org"
        body = {"email": email, "referral_code": None if n % 10 == 9 else code}
        status, _ = client.request("signup", "POST", client.base + "/signups", body)
        if status == 201 and n % 2 == 0:
            order = f"order-{run}-{index}-{n}"
            purchase = {"external_id": order, "email": email, "amount": "19.90", "currency": "EUR"}
            status, _ = client.request("conversion", "POST", client.base + "/conversions", purchase)
            if status == 201 and n % 8 == 0:
                client.request("refund", "POST", f"{client.base}/conversions/{order}/refund", {"reason": "soak"})
        n += 1


# --- Memory ---------------------------------------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """`root` and every descendant, from the parent PIDs in /proc/<pid>/stat."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (in parentheses) may contain spaces: the fields after its closing one are fixed.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def rss_kib(root: int) -> int:
    total = 0
    for pid in process_tree(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total


@dataclass
class Sample:
    at: float  # seconds since the soak started
    web_kib: int
    worker_kib: int
    requests: int


def sampler(
    roots: dict[str, int], tally: Tally, every: float, started: float, stopping: threading.Event, out: list[Sample]
) -> None:
    while not stopping.wait(every):
        out.append(Sample(time.monotonic() - started, rss_kib(roots["web"]), rss_kib(roots["worker"]), tally.total()))


def memory_verdict(samples: list[Sample], soak_s: float, attr: str) -> tuple[float, float, float, bool]:
    """(start MiB, end MiB, change, flat): the median of the first minute after the warm-up against the
    median of the last minute."""
    warmup = max(60.0, soak_s / 10)
    after = [s for s in samples if s.at >= warmup] or samples
    first = [getattr(s, attr) for s in after if s.at < after[0].at + 60]
    last = [getattr(s, attr) for s in after if s.at > after[-1].at - 60]
    begin, end = statistics.median(first) / 1024, statistics.median(last) / 1024
    change = (end - begin) / begin if begin else 0.0
    return begin, end, change, abs(change) <= MEMORY_TOLERANCE


# --- Checks -------------------------------------------------------------------------------------------


def queue_drained(redis_url: str) -> bool:
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
    try:
        return client.llen("celery") == 0 and client.zcard("unacked_index") == 0
    finally:
        client.close()


def wait_drained(redis_url: str, timeout: float) -> float | None:
    """Seconds the queue took to empty (twice in a row, a second apart), or None after the timeout."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if queue_drained(redis_url):
            time.sleep(1)
            if queue_drained(redis_url):
                return time.monotonic() - began
        time.sleep(0.5)
    return None


def count(sql: str, *params: Any) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


def counters_off(program_id: int) -> tuple[int, int]:
    """(ambassadors whose counters differ from a recount of the source rows, programs likewise)."""
    ambassadors = count(
        """
        SELECT count(*) FROM ambassadors_ambassador a
        JOIN ambassadors_ambassadorcounters c ON c.ambassador_id = a.id
        LEFT JOIN (
            SELECT ambassador_id, count(*) AS total, count(*) FILTER (WHERE status = 'qualified') AS qualified
            FROM referrals_signup WHERE program_id = %s AND ambassador_id IS NOT NULL GROUP BY ambassador_id
        ) s ON s.ambassador_id = a.id
        LEFT JOIN (
            SELECT g.ambassador_id, count(*) AS n, sum(v.amount) AS amount
            FROM referrals_conversion v JOIN referrals_signup g ON g.id = v.signup_id
            WHERE v.program_id = %s AND v.status = 'approved' AND g.status = 'qualified'
            GROUP BY g.ambassador_id
        ) v ON v.ambassador_id = a.id
        WHERE a.program_id = %s AND (c.signups, c.qualified, c.conversions, c.converted_amount)
            IS DISTINCT FROM (coalesce(s.total, 0), coalesce(s.qualified, 0), coalesce(v.n, 0), coalesce(v.amount, 0))
        """,
        program_id,
        program_id,
        program_id,
    )
    programs = count(
        """
        SELECT count(*) FROM ambassadors_programcounters c, (
            SELECT count(*) AS total, count(*) FILTER (WHERE status = 'qualified') AS qualified
            FROM referrals_signup WHERE program_id = %s
        ) s
        WHERE c.program_id = %s AND (c.signups, c.qualified) IS DISTINCT FROM (s.total, s.qualified)
        """,
        program_id,
        program_id,
    )
    return ambassadors, programs


def run_phase(
    port: int, setup: dict[str, Any], tally: Tally, pacer: Pacer, clients: int, seconds: float, run: str
) -> float:
    stopping = threading.Event()
    errors: list[BaseException] = []

    def thread(i: int) -> None:
        try:
            client_run(Client(port, setup, tally, pacer), i, run, stopping)
        except BaseException as exc:  # a socket error: counted, the run goes on with the other clients
            errors.append(exc)

    threads = [threading.Thread(target=thread, args=(i,), daemon=True) for i in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    stopping.wait(seconds)
    stopping.set()
    for t in threads:
        t.join(timeout=90)
    tally.client_errors += len(errors)
    for exc in errors[:5]:
        tally.failures.append(f"client error: {exc!r}")
    return time.monotonic() - began


def main() -> int:
    args = parse_args()
    title = "Parrain soak: mixed traffic at half the capacity, memory and exact counts"
    out = bench_begin(args, title=title, name="soak")
    env = parrain_env(pg=args.pg, db=args.db, redis_url=args.redis)
    env |= {
        "CONN_MAX_AGE": "60",
        "CLICK_FLOOD_PER_MINUTE": "0",  # every click comes from 127.0.0.1: none must be set aside as a flood
        "THROTTLE_ANON": "1000000/minute",
    }
    say(f"setting up: fresh database {args.db}, migrate, empty broker db ({args.redis})")
    recreate_database(pg=args.pg, db=args.db)
    manage(env, "migrate", "--noinput", log=out / "setup.log")
    celery_purge(env)
    django_in_process(env)
    setup = setup_program(args)
    program_id = setup["program_id"]

    port = free_port()
    gunicorn = Gunicorn(args.workers, "sync", 1)
    web_log, worker_log, beat_log = out / "gunicorn.log", out / "celery-worker.log", out / "celery-beat.log"
    web = start(gunicorn.argv("config.wsgi:application", port, web_log), env=env, log=web_log)
    worker = start(
        [str(VENV_BIN / "celery"), "-A", "config", "worker", "-c", str(args.concurrency), "--pool", "prefork"]
        + ["--loglevel", "WARNING", "--hostname", f"soak-{secrets.token_hex(4)}@%h"],
        env=env,
        log=worker_log,
    )
    # Exactly one beat, as in production: the periodic reconciliation and sweeps run during the soak.
    beat = start(
        [str(VENV_BIN / "celery"), "-A", "config", "beat", "--loglevel", "WARNING"]
        + ["--schedule", str(out / "beat-schedule")],
        env=env,
        log=beat_log,
    )
    tally, pacer = Tally(), Pacer()
    samples: list[Sample] = []
    run = f"{time.time_ns():x}"
    try:
        wait_http(f"http://127.0.0.1:{port}/health/", proc=web, log=web_log)
        say(
            f"{gunicorn.describe()} (pid {web.pid}), Celery prefork -c {args.concurrency} (pid {worker.pid}), "
            f"beat (pid {beat.pid}); {args.clients} clients on {args.ambassadors} ambassadors"
        )
        measured_s = run_phase(port, setup, tally, pacer, args.clients, args.measure_seconds, run + "m")
        capacity = tally.total() / measured_s
        target = capacity / 2
        say(f"capacity: {capacity:.1f} requests/s over {measured_s:.1f}s; soaking at {target:.1f} requests/s")
        measured_requests = tally.total()

        pacer.pace(target)
        stopping = threading.Event()
        soak_started = time.monotonic()
        roots = {"web": web.pid, "worker": worker.pid}
        watcher = threading.Thread(
            target=sampler, args=(roots, tally, args.sample_seconds, soak_started, stopping, samples), daemon=True
        )
        samples.append(Sample(0.0, rss_kib(web.pid), rss_kib(worker.pid), tally.total()))
        watcher.start()
        soak_s = run_phase(port, setup, tally, pacer, args.clients, args.minutes * 60, run + "s")
        stopping.set()
        watcher.join(timeout=30)
        samples.append(Sample(soak_s, rss_kib(web.pid), rss_kib(worker.pid), tally.total()))
        soak_requests = tally.total() - measured_requests
        say(f"soak done: {soak_requests} requests in {soak_s:.0f}s ({soak_requests / soak_s:.1f}/s); draining")
        drained_in = wait_drained(args.redis, args.drain_timeout)
        alive = {"web": web.poll() is None, "worker": worker.poll() is None, "beat": beat.poll() is None}
    finally:
        stop(web)
        stop(worker)
        stop(beat)
    celery_purge(env)

    # --- Requests
    statuses = Counter[int]()
    for (_kind, status), n in tally.statuses.items():
        statuses[status] += n
    rows = []
    for kind in ("click", "signup", "conversion", "refund"):
        by_status = {s: n for (k, s), n in tally.statuses.items() if k == kind}
        rows.append([kind, str(tally.sent[kind]), ", ".join(f"{s}: {n}" for s, n in sorted(by_status.items()))])
    rows.append(["all", str(sum(tally.sent.values())), ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))])
    expected = {"click": 302, "signup": 201, "conversion": 201, "refund": 200}
    errors = sum(n for (kind, status), n in tally.statuses.items() if status != expected[kind]) + tally.client_errors
    say()
    say(table(rows, ["requests", "sent", "statuses"]))
    say(f"errors (an unexpected status or a failed connection): {errors}; schedule slots missed: {pacer.late}")
    for failure in tally.failures:
        say(f"  e.g. {failure}")

    # --- Memory
    say()
    mem_rows = [
        [f"{s.at:.0f}", str(s.requests), f"{s.web_kib / 1024:.1f}", f"{s.worker_kib / 1024:.1f}"]
        for s in samples[:: max(1, len(samples) // 12)]
    ]
    say(table(mem_rows, ["t (s)", "requests", "web RSS (MiB)", "worker RSS (MiB)"]))
    web_mem = memory_verdict(samples, soak_s, "web_kib")
    worker_mem = memory_verdict(samples, soak_s, "worker_kib")

    # --- Rows against answers, counters against the source rows, then the reconciliation
    clicks_db = count("SELECT count(*) FROM referrals_click WHERE program_id = %s AND NOT flood", program_id)
    signups_db = count("SELECT count(*) FROM referrals_signup WHERE program_id = %s", program_id)
    conversions_db = count("SELECT count(*) FROM referrals_conversion WHERE program_id = %s", program_id)
    reversed_db = count(
        "SELECT count(*) FROM referrals_conversion WHERE program_id = %s AND status = 'reversed'", program_id
    )
    grants = count(
        "SELECT count(*) FROM rewards_rewardgrant g JOIN rewards_rewardtier t ON t.id = g.tier_id"
        " WHERE t.program_id = %s",
        program_id,
    )
    milestones = count(
        "SELECT count(*) FROM rewards_milestone m JOIN rewards_rewardtier t ON t.id = m.tier_id"
        " WHERE t.program_id = %s",
        program_id,
    )
    ambassadors_off, programs_off = counters_off(program_id)
    report_text = manage(env, "reconcile_rewards", log=out / "reconcile.log")
    # The command prints each figure as name=value; whatever the wording around them.
    report = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", report_text)}
    understood = "ambassadors_repaired" in report and "unlocked" in report
    repaired = {k: v for k, v in report.items() if v}

    say()
    ok_click = clicks_db == tally.statuses[("click", 302)]
    ok_signup = signups_db == tally.statuses[("signup", 201)]
    ok_conv = conversions_db == tally.statuses[("conversion", 201)]
    ok_refund = reversed_db == tally.statuses[("refund", 200)]
    checks = [
        ["requests / errors", f"{sum(tally.sent.values())} / {errors}", "errors 0"],
        [
            "web RSS after warm-up -> end (MiB)",
            f"{web_mem[0]:.1f} -> {web_mem[1]:.1f} ({web_mem[2]:+.1%})",
            "within 10%",
        ],
        [
            "worker RSS after warm-up -> end (MiB)",
            f"{worker_mem[0]:.1f} -> {worker_mem[1]:.1f} ({worker_mem[2]:+.1%})",
            "within 10%",
        ],
        ["processes alive at the end", ", ".join(k for k, v in alive.items() if v), "web, worker, beat"],
        ["queue drained (LLEN 0, none unacked)", f"in {drained_in:.1f}s" if drained_in is not None else "NO", "yes"],
        ["clicks in the database / answered 302", f"{clicks_db} / {tally.statuses[('click', 302)]}", "equal"],
        ["signups in the database / answered 201", f"{signups_db} / {tally.statuses[('signup', 201)]}", "equal"],
        [
            "conversions in the database / answered 201",
            f"{conversions_db} / {tally.statuses[('conversion', 201)]}",
            "equal",
        ],
        ["conversions reversed / refunds answered 200", f"{reversed_db} / {tally.statuses[('refund', 200)]}", "equal"],
        ["counters differing from the source rows", f"ambassadors {ambassadors_off}, programs {programs_off}", "0, 0"],
        ["grants, milestones", f"{grants}, {milestones}", "-"],
        [
            "reconciliation afterwards",
            ", ".join(f"{k} {v}" for k, v in repaired.items()) or ("nothing to repair" if understood else "UNREADABLE"),
            "nothing to repair",
        ],
    ]
    say(table(checks, ["check", "value", "expected"]))
    ok = (
        errors == 0
        and web_mem[3]
        and worker_mem[3]
        and all(alive.values())
        and drained_in is not None
        and ok_click
        and ok_signup
        and ok_conv
        and ok_refund
        and ambassadors_off == 0
        and programs_off == 0
        and understood
        and not repaired
    )
    say()
    say("SOAK OK: no errors, memory flat, queue drained, counts exact" if ok else "SOAK FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
