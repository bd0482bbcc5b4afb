"""Throughput, latency and wait events of `POST /api/v1/programs/<slug>/signups` under gunicorn, beside a bare
WSGI endpoint doing one INSERT under a unique constraint (bench/baseline_signup_wsgi.py), at 2 and 4 web
workers; then every signup counted once the worker has folded them in.

Sets everything up (a fresh parrain_bench_signups database, two programs, a collective price ladder and a
track key, through the services), starts one real Celery worker (it folds the signups into the program's
counters and records the milestones, as in production), drives both servers with wrk (bench/load.lua,
each request a new subscriber) in alternating rounds, samples pg_stat_activity while each target is
measured, and stops every process it started by PID. See bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402  (the repository root must be importable first)
    VENV_BIN,
    Gunicorn,
    LoadResult,
    add_store_options,
    bench_begin,
    celery_purge,
    django_in_process,
    free_port,
    fresh_database,
    parrain_env,
    require_wrk,
    say,
    start,
    stop,
    table,
    wait_http,
)
from bench.redirect import Phase, Target, count  # noqa: E402

# The targets at 16 connections: at least 25% of the bare INSERT's requests/s, p99 under 100 ms,
# every signup counted; and more web workers serving more signups (no lock they all queue on).
TARGET_RATIO = 0.25
TARGET_P99_MS = 100.0
SLUG = "bench-signups"
BASELINE_SLUG = "bench-signups-baseline"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=12.0, help="seconds of measured load per target and run")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load before each target")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds --duration is cut into")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--workers", default="2,4", help="gunicorn sync workers of each run, comma-separated")
    p.add_argument("--celery-concurrency", type=int, default=1, help="processes of the Celery worker folding")
    p.add_argument("--sample-ms", type=float, default=25.0, help="pg_stat_activity sampling period")
    add_store_options(p, db="parrain_bench_signups")
    return p.parse_args()


def setup_programs(env: dict[str, str]) -> dict[str, Any]:
    """Parrain's program (a price ladder: every 50 subscribers lower the price) and the baseline's."""
    django_in_process(env)
    from decimal import Decimal

    from ambassadors.services import api_key_create, program_create
    from core.actors import Actor
    from rewards.models import RewardTier
    from rewards.services import tier_create

    bench = Actor.system("bench")
    program = program_create(
        actor=bench,
        slug=SLUG,
        name="Bench signups",
        destination_url="https://shop.example.com/welcome",
        base_price=Decimal("20.00"),
        floor_price=Decimal("1.00"),
    )
    tier_create(
        actor=bench,
        program=program,
        name="Launch price",
        kind=RewardTier.Kind.COLLECTIVE,
        metric=RewardTier.Metric.QUALIFIED_SIGNUPS,
        step=50,
        drop_type="amount",
        drop_value=Decimal("0.01"),
    )
    baseline = program_create(
        actor=bench, slug=BASELINE_SLUG, name="Bench baseline", destination_url="https://shop.example.com/"
    )
    _key, raw_key = api_key_create(program=program, scopes=["track"], name="bench", actor=bench)
    return {"program_id": program.pk, "baseline_id": baseline.pk, "key": raw_key}


def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far, from /proc/stat (Linux), in clock ticks."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def _process_jiffies(parent_pid: int) -> int:
    """CPU time (user + system, clock ticks) of a gunicorn master and its workers, those it has replaced
    included (gunicorn.conf.py's max_requests: the master's cutime and cstime count its reaped children)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        pid = int(stat.parent.name)
        if pid == parent_pid:
            total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
        elif int(fields[1]) == parent_pid:
            total += int(fields[11]) + int(fields[12])
    return total


class CpuMeter:
    """The CPU a target costs while it is measured: how busy the machine was, and the web server's processes'
    CPU time per request. Where the cores are all busy, more web workers cannot serve more."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.busy = self.total = self.server = 0
        self._start: tuple[int, int, int] | None = None

    def __enter__(self) -> CpuMeter:
        busy, total = _machine_jiffies()
        self._start = (busy, total, _process_jiffies(self.server_pid))
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._start is not None
        busy, total = _machine_jiffies()
        self.busy += busy - self._start[0]
        self.total += total - self._start[1]
        self.server += _process_jiffies(self.server_pid) - self._start[2]

    def text(self, requests: int) -> str:
        if not self.total:
            return "    (no CPU figures: /proc/stat not readable)"
        ticks = os.sysconf("SC_CLK_TCK")
        per_request = self.server / ticks / requests * 1000 if requests else 0.0
        return (
            f"    machine busy {self.busy / self.total:.0%} of its {os.cpu_count()} cores; web server "
            f"{per_request:.2f} ms CPU per request"
        )


class Sampler:
    """pg_stat_activity of the benchmark's database every --sample-ms, in a thread: how many backends are
    on CPU (no wait event), waiting for a lock, for the client, for I/O..., and the unfolded delta rows;
    and the CPU of the machine and of the web server meanwhile (CpuMeter)."""

    def __init__(self, dsn: str, db: str, period_s: float, server_pid: int) -> None:
        self.dsn, self.db, self.period_s = dsn, db, period_s
        self.events: Counter[tuple[str, str]] = Counter()
        self.samples = 0
        self.pending_max = 0
        self.cpu = CpuMeter(server_pid)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.cpu.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu.__exit__()
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=10)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT coalesce(wait_event_type, 'CPU'), coalesce(wait_event, 'running'), state "
                    "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend' AND state <> 'idle'",
                    [self.db],
                ).fetchall()
                for kind, event, state in rows:
                    label = f"{event} ({state})" if state != "active" else event
                    self.events[(kind, label)] += 1
                pending = conn.execute("SELECT count(*) FROM ambassadors_programcounterdelta").fetchone()
                self.pending_max = max(self.pending_max, int(pending[0]) if pending else 0)
                self.samples += 1
                self._stop.wait(self.period_s)

    def text(self) -> str:
        if not self.samples:
            return "    (no sample)"
        total = sum(self.events.values())
        rows = [
            [kind, event, str(n), f"{n / self.samples:.2f}", f"{n / total:.0%}"]
            for (kind, event), n in self.events.most_common()
        ]
        lines = table(rows, ["wait_event_type", "wait_event", "samples", "backends/sample", "share"])
        return "\n".join(f"    {line}" for line in lines.splitlines())


def start_worker(env: dict[str, str], out: Path, concurrency: int) -> Any:
    log = out / "celery-worker.log"
    argv = [
        str(VENV_BIN / "celery"),
        "-A",
        "config",
        "worker",
        "-c",
        str(concurrency),
        "--pool",
        "prefork",
        "--loglevel",
        "WARNING",
        "--hostname",
        f"bench-{uuid.uuid4().hex[:8]}@%h",
    ]
    return start(argv, env=env, log=log)


def queue_length(redis_url: str) -> int:
    import redis

    return int(redis.Redis.from_url(redis_url).llen("celery"))


def drained(fixture: dict[str, Any], redis_url: str, timeout_s: float = 180.0) -> tuple[float, bool]:
    """Wait until the broker's queue is empty and no delta row of the program is left: (seconds, done)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        pending = count(
            "SELECT count(*) FROM ambassadors_programcounterdelta WHERE program_id = %s", fixture["program_id"]
        )
        if pending == 0 and queue_length(redis_url) == 0:
            return time.monotonic() - started, True
        time.sleep(0.25)
    return time.monotonic() - started, False


def counted(fixture: dict[str, Any]) -> tuple[int, int, int, int]:
    """(counter's qualified, qualified signup rows, counter's signups, signup rows) of Parrain's program."""
    program_id = fixture["program_id"]
    qualified_rows = count(
        "SELECT count(*) FROM referrals_signup WHERE program_id = %s AND status = 'qualified'", program_id
    )
    rows = count("SELECT count(*) FROM referrals_signup WHERE program_id = %s", program_id)
    qualified = count("SELECT qualified FROM ambassadors_programcounters WHERE program_id = %s", program_id)
    signups = count("SELECT signups FROM ambassadors_programcounters WHERE program_id = %s", program_id)
    return qualified, qualified_rows, signups, rows


class Run:
    """One worker count: both servers, their phases, their wait events."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.phases: dict[str, Phase] = {}
        self.samplers: dict[str, Sampler] = {}

    @property
    def ratio(self) -> float:
        base = self.phases["baseline"].result.rps
        return self.phases["parrain"].result.rps / base if base else 0.0


def measure(
    run: Run, targets: dict[str, Target], args: argparse.Namespace, log: Path, dsn: str, pids: dict[str, int]
) -> None:
    for target in targets.values():
        target.load(args.warmup, args, log, f"{target.name} warm-up ({run.workers} workers)")
    before = {name: t.rows() for name, t in targets.items()}
    rounds: dict[str, list[LoadResult]] = {name: [] for name in targets}
    samplers = {name: Sampler(dsn, args.db, args.sample_ms / 1000, pids[name]) for name in targets}
    names = list(targets)
    for n in range(args.rounds):
        for name in names if n % 2 == 0 else reversed(names):
            with samplers[name]:
                rounds[name].append(
                    targets[name].load(
                        args.duration / args.rounds, args, log, f"{targets[name].name} round {n + 1} ({run.workers})"
                    )
                )
    after = {name: t.rows() for name, t in targets.items()}
    for name, target in targets.items():
        phase = Phase(target.name, LoadResult.merge(rounds[name]), after[name] - before[name])
        per_round = ", ".join(f"{r.rps:,.0f}" for r in rounds[name])
        say(f"  {run.workers} workers, {phase.summary()} (per round: req/s {per_round})")
        run.phases[name] = phase
    run.samplers = samplers


def main() -> int:
    args = parse_args()
    require_wrk()
    out = bench_begin(args, title="Parrain signup API under load, beside one bare INSERT", name="signups")
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    say(
        f"load: wrk -t{args.wrk_threads} -c{args.connections}; per target and run {args.warmup:g}s warm-up, then "
        f"{args.duration:g}s measured in {args.rounds} alternating rounds; runs at {worker_counts} gunicorn sync "
        f"workers (Parrain and the baseline alike); one Celery worker -c {args.celery_concurrency} folding"
    )
    env = parrain_env(pg=args.pg, db=args.db, redis_url=args.redis)
    # One integration key sending a launch's signups from one address: its rate limits (per key, per
    # address) are an operator's setting, raised here so that what is measured is the write path.
    env.update({name: "1000000/minute" for name in ("THROTTLE_API_KEY", "THROTTLE_SIGNUPS_KEY", "THROTTLE_SIGNUPS_IP")})
    dsn = env["DATABASE_URL"]
    say(f"setting up: fresh database {args.db}, migrate, two programs, a price ladder and a track key")
    fresh_database(env, pg=args.pg, db=args.db, log=out / "setup.log")
    celery_purge(env)
    fixture = setup_programs(env)
    env["BASELINE_PROGRAM_ID"] = str(fixture["baseline_id"])
    signups_sql = "SELECT count(*) FROM referrals_signup WHERE program_id = %s"
    wrk_log = out / "wrk.log"
    runs: list[Run] = []
    checks: list[tuple[str, bool]] = []
    worker = start_worker(env, out, args.celery_concurrency)
    try:
        for workers in worker_counts:
            gunicorn = Gunicorn(workers, "sync", 1)
            servers = {}
            try:
                for name, app in (
                    ("parrain", "config.wsgi:application"),
                    ("baseline", "bench.baseline_signup_wsgi:application"),
                ):
                    port = free_port()
                    log = out / f"{name}-{workers}-gunicorn.log"
                    proc = start(gunicorn.argv(app, port, log), env=env, log=log)
                    wait_http(f"http://127.0.0.1:{port}/health/", proc=proc, log=log)
                    servers[name] = (proc, f"http://127.0.0.1:{port}")
                say(f"run: {gunicorn.describe()} each for Parrain ({servers['parrain'][1]}) and the baseline")
                targets = {
                    "parrain": Target(
                        "parrain POST signups",
                        servers["parrain"][1],
                        ["signups", f"/api/v1/programs/{SLUG}/signups", fixture["key"]],
                        signups_sql,
                        fixture["program_id"],
                    ),
                    "baseline": Target(
                        "baseline INSERT",
                        servers["baseline"][1],
                        ["signups", f"/api/v1/programs/{BASELINE_SLUG}/signups", "none"],
                        signups_sql,
                        fixture["baseline_id"],
                    ),
                }
                run = Run(workers)
                measure(run, targets, args, wrk_log, dsn, {name: proc.pid for name, (proc, _url) in servers.items()})
                runs.append(run)
            finally:
                for proc, _url in servers.values():
                    stop(proc)
            waited, done = drained(fixture, args.redis)
            if not done:
                # What the periodic sweep (rewards.fold_counts) would do: fold what the queue has not yet.
                from rewards.services import program_counts_fold_pending

                program_counts_fold_pending()
            qualified, qualified_rows, signups, rows = counted(fixture)
            ok = (qualified, signups) == (qualified_rows, rows)
            milestones = count("SELECT count(*) FROM rewards_milestone WHERE program_id = %s", fixture["program_id"])
            say(
                f"  after the {workers}-worker run: "
                + (f"queue drained and folded {waited:.1f} s after the load" if done else "folded by the sweep")
                + f"; counter {signups} signups / {qualified} qualified, rows {rows} / {qualified_rows}: "
                + ("every signup counted" if ok else "MISMATCH")
                + f"; {milestones} milestones (one per 50 qualified: {qualified_rows // 50} due)"
            )
            checks.append((f"every signup counted ({workers} workers)", ok and milestones == qualified_rows // 50))
    finally:
        stop(worker)
        celery_purge(env)
    return report(runs, checks, args, out)


def report(runs: list[Run], checks: list[tuple[str, bool]], args: argparse.Namespace, out: Path) -> int:
    say()
    rows = []
    for run in runs:
        for name in ("parrain", "baseline"):
            p = run.phases[name]
            rows.append(
                [
                    str(run.workers),
                    p.name,
                    f"{p.result.rps:,.0f}",
                    f"{p.result.p50_ms:.1f} ms",
                    f"{p.result.p99_ms:.1f} ms",
                    p.result.errors_text,
                    p.rows_text(),
                ]
            )
    text = table(rows, ["workers", "target", "req/s", "p50", "p99", "errors", "rows ok"])
    say(text)
    say()
    for run in runs:
        say(f"wait events, {run.workers} workers (pg_stat_activity every {args.sample_ms:g} ms, non-idle backends):")
        for name in ("parrain", "baseline"):
            sampler = run.samplers[name]
            extra = f"; unfolded delta rows at most {sampler.pending_max}" if name == "parrain" else ""
            say(f"  {run.phases[name].name}: {sampler.samples} samples{extra}")
            say(sampler.text())
            say(sampler.cpu.text(run.phases[name].result.requests))
        say(
            f"  signups / baseline at {run.workers} workers: {run.ratio:.0%} "
            f"({run.phases['parrain'].result.rps:,.0f} / {run.phases['baseline'].result.rps:,.0f} req/s)"
        )
    say()
    verdicts = list(checks)
    for run in runs:
        parrain = run.phases["parrain"]
        verdicts.append((f"req/s >= {TARGET_RATIO:.0%} of baseline ({run.workers} workers)", run.ratio >= TARGET_RATIO))
        verdicts.append(
            (
                f"p99 < {TARGET_P99_MS:.0f} ms at {args.connections} connections ({run.workers} workers)",
                parrain.result.p99_ms < TARGET_P99_MS,
            )
        )
        verdicts.append((f"every request left its row ({run.workers} workers)", parrain.rows_ok))
    if len(runs) >= 2:
        first, last = runs[0].phases["parrain"].result.rps, runs[-1].phases["parrain"].result.rps
        verdicts.append((f"{runs[-1].workers} workers serve more than {runs[0].workers}", last > first))
    say("target (issue): " + "; ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in verdicts))
    say("TARGET MET" if all(ok for _n, ok in verdicts) else "TARGET MISSED")
    (out / "summary.txt").write_text(text + "\n")
    # Exit 1 for a correctness failure only (a row lost or extra, a signup not counted); speed is a verdict.
    counted_ok = all(ok for _n, ok in checks) and all(r.phases[n].rows_ok for r in runs for n in r.phases)
    return 0 if counted_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
