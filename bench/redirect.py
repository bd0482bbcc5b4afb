"""Throughput and latency of `GET /r/<code>` and `POST .../signups` under gunicorn, beside a bare WSGI baseline.

Sets everything up (a fresh parrain_bench database, a program, ambassadors, a track key, through the
services), drives each target with wrk at a fixed number of connections for a bounded time, checks
that every request the server received left its row, and stops every process it started by PID.
See bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402  (the repository root must be importable first)
    DEFAULT_DB,
    Gunicorn,
    LoadResult,
    add_gunicorn_options,
    add_store_options,
    bench_begin,
    celery_purge,
    django_in_process,
    free_port,
    fresh_database,
    parrain_env,
    require_wrk,
    run_wrk,
    say,
    start,
    stop,
    table,
    wait_http,
)

# The issues' target: at 32 connections, at least 80% of the bare baseline's requests/s (issue 14 raised it
# from 60%), p99 under 50 ms, and every click recorded.
TARGET_RATIO = 0.80
TARGET_P99_MS = 50.0
SLUG = "bench-redirect"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=15.0, help="seconds of measured load per target")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load before each target")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds the redirect's --duration is cut into")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--wrk-threads", type=int, default=2)
    # Sync workers, one more than the cores: the work is CPU-bound Python with two short waits on
    # PostgreSQL, and the same two cores also run PostgreSQL and wrk (bench/README.md has the sweep).
    add_gunicorn_options(p)
    add_store_options(p, db=DEFAULT_DB)
    return p.parse_args()


def setup_program(env: dict[str, str]) -> dict[str, Any]:
    """A program, two ambassadors and a track key, made by the real services inside this process."""
    django_in_process(env)
    from ambassadors.services import ambassador_enroll, api_key_create, program_create
    from core.actors import Actor

    bench = Actor.system("bench")
    program = program_create(
        actor=bench,
        slug=SLUG,
        name="Bench redirect",
        destination_url="https://shop.example.com/welcome?utm_source=parrain",
    )
    # One ambassador per target, so that the clicks of interleaved rounds are counted apart.
    parrain, _ = ambassador_enroll(program=program, email="ambassador@example.com", display_name="Bench")
    baseline, _ = ambassador_enroll(program=program, email="baseline@example.com", display_name="Baseline")
    _key, raw_key = api_key_create(program=program, scopes=["track"], name="bench", actor=bench)
    return {"program_id": program.pk, "parrain": parrain, "baseline": baseline, "key": raw_key}


def run_id() -> str:
    return f"{time.time_ns():x}"


def count(sql: str, *params: Any) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


def settled(sql: str, *params: Any) -> int:
    """The row count once it stops moving: requests in flight when wrk stopped still finish on the server."""
    last = count(sql, *params)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = count(sql, *params)
        if now == last:
            return now
        last = now
    return last


class Phase:
    """One target: its load figures and the rows it left."""

    def __init__(self, name: str, result: LoadResult, rows: int) -> None:
        self.name, self.result, self.rows = name, result, rows

    @property
    def expected(self) -> tuple[int, int]:
        """(least, most) rows: every 2xx/3xx answer, at most every request written that got no error status."""
        r = self.result
        return r.answered, r.sent - r.status_errors

    @property
    def rows_ok(self) -> bool:
        least, most = self.expected
        return least <= self.rows <= most

    def summary(self) -> str:
        r = self.result
        return (
            f"{self.name}: {r.rps:,.0f} req/s, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, max {r.max_ms:.1f} ms, "
            f"errors {r.errors_text}, rows {self.rows}"
        )

    def rows_text(self) -> str:
        r = self.result
        verdict = "yes" if self.rows_ok else "NO"
        return f"{verdict}: {self.rows} rows / {r.answered} answers + {r.in_flight} in flight"

    def explain(self) -> str:
        r = self.result
        line = (
            f"{self.name}: {self.rows} rows; wrk: {r.requests} responses ({r.answered} 2xx/3xx, "
            f"{r.status_errors} >= 400), socket errors {r.errors_text}; {r.sent} requests written, "
            f"{r.in_flight} of them in flight at wrk's deadline."
        )
        least, most = self.expected
        if self.rows == r.answered:
            return line + " Rows = answers: every answer left its row."
        if self.rows == most and not r.lost:
            return (
                line + f" Rows = answers + {self.rows - r.answered}: the requests in flight when wrk stopped, "
                "which the server completed after wrk had gone. Rows = requests written: none lost."
            )
        if self.rows_ok:
            return line + f" Rows within [{least}, {most}]: the {r.lost} requests cut by socket errors are unknowable."
        return line + f" MISMATCH: {self.rows} rows, expected between {least} and {most}."


def probe(url: str, path: str) -> str:
    """One request by hand: both servers must answer the same kind of 302 before they are compared."""
    import http.client
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", path, headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"})
    response = conn.getresponse()
    location = response.getheader("Location") or ""
    cookies = [c.split("=", 1)[0] for c in response.msg.get_all("Set-Cookie") or []]
    conn.close()
    query = parse_qs(urlsplit(location).query)
    if response.status != 302 or "ref" not in query or "click_id" not in query or len(cookies) != 2:
        raise SystemExit(
            f"{url}{path} answered {response.status} {location!r} cookies {cookies}: not a referral redirect"
        )
    return f"302 to {location.split('?')[0]}?...ref=...&click_id=..., cookies {', '.join(sorted(cookies))}"


class Target:
    """A server under test: where it listens, what wrk sends it, and how its rows are counted."""

    def __init__(self, name: str, url: str, script_args: list[str], rows_sql: str, rows_param: int) -> None:
        self.name, self.url, self.script_args = name, url, script_args
        self.rows_sql, self.rows_param = rows_sql, rows_param

    def load(self, duration: float, args: argparse.Namespace, log: Path, label: str) -> LoadResult:
        # A run id per wrk invocation: the signups' e-mails must never repeat from one run to the next.
        return run_wrk(
            self.url,
            duration=duration,
            connections=args.connections,
            threads=args.wrk_threads,
            script_args=[*self.script_args, run_id()],
            log=log,
            label=label,
        )

    def rows(self) -> int:
        return settled(self.rows_sql, self.rows_param)


def interleaved(targets: list[Target], args: argparse.Namespace, log: Path) -> list[Phase]:
    """Warm each target up, then measure them in alternating rounds that add up to --duration each.

    The machine is shared: whatever else runs during the measurement slows every target alike.
    """
    for target in targets:
        target.load(args.warmup, args, log, f"{target.name} warm-up")
    before = [t.rows() for t in targets]
    rounds: list[list[LoadResult]] = [[] for _ in targets]
    order = list(range(len(targets)))
    for n in range(args.rounds):
        for i in order if n % 2 == 0 else reversed(order):
            rounds[i].append(
                targets[i].load(args.duration / args.rounds, args, log, f"{targets[i].name} round {n + 1}")
            )
    after = [t.rows() for t in targets]
    phases = []
    for i, target in enumerate(targets):
        phase = Phase(target.name, LoadResult.merge(rounds[i]), after[i] - before[i])
        per_round = ", ".join(f"{r.rps:,.0f}" for r in rounds[i])
        p99s = ", ".join(f"{r.p99_ms:.0f}" for r in rounds[i])
        say(f"  {phase.summary()} (per round: req/s {per_round}; p99 {p99s} ms)")
        phases.append(phase)
    return phases


def main() -> int:
    args = parse_args()
    require_wrk()
    out = bench_begin(args, title="Parrain redirect and signup API under load", name="redirect")
    gunicorn = Gunicorn(args.workers, args.worker_class, args.threads)
    say(
        f"load: wrk -t{args.wrk_threads} -c{args.connections}; per target {args.warmup:g}s warm-up, then "
        f"{args.duration:g}s measured ({args.rounds} alternating rounds for the redirect and its baseline)"
    )
    say(f"servers: {gunicorn.describe()}, the same for Parrain and the baseline")
    # Read from the environment like any setting: say it, the figures depend on it (README "The click write path").
    asynchronous = os.environ.get("CLICK_ASYNC_COMMIT", "true")
    say(f"Parrain's clicks: CLICK_ASYNC_COMMIT={asynchronous} (the baseline commits each click synchronously)")
    say()

    env = parrain_env(pg=args.pg, db=args.db, redis_url=args.redis)
    say(f"setting up: fresh database {args.db}, migrate, program + ambassadors + track key through the services")
    fresh_database(env, pg=args.pg, db=args.db, log=out / "setup.log")
    celery_purge(env)
    fixture = setup_program(env)
    clicks_sql = "SELECT count(*) FROM referrals_click WHERE ambassador_id = %s"
    signups_sql = "SELECT count(*) FROM referrals_signup WHERE program_id = %s"
    wrk_log = out / "wrk.log"

    servers = {}
    try:
        for name, app in (("parrain", "config.wsgi:application"), ("baseline", "bench.baseline_wsgi:application")):
            port = free_port()
            log = out / f"{name}-gunicorn.log"
            say(f"serving {app} on http://127.0.0.1:{port}")
            proc = start(gunicorn.argv(app, port, log), env=env, log=log)
            wait_http(f"http://127.0.0.1:{port}/health/", proc=proc, log=log)
            servers[name] = (proc, f"http://127.0.0.1:{port}")
        parrain, baseline = fixture["parrain"], fixture["baseline"]
        say(f"  parrain answers: {probe(servers['parrain'][1], f'/r/{parrain.code}')}")
        say(f"  baseline answers: {probe(servers['baseline'][1], f'/r/{baseline.code}')}")
        redirect_targets = [
            Target(
                "parrain /r/<code>", servers["parrain"][1], ["redirect", f"/r/{parrain.code}"], clicks_sql, parrain.pk
            ),
            Target(
                "baseline /r/<code>",
                servers["baseline"][1],
                ["redirect", f"/r/{baseline.code}"],
                clicks_sql,
                baseline.pk,
            ),
        ]
        phases = interleaved(redirect_targets, args, wrk_log)
        # The signup API has no baseline here: one warm-up, then one run of --duration.
        signups = Target(
            "parrain POST signups",
            servers["parrain"][1],
            ["signups", f"/api/v1/programs/{SLUG}/signups", fixture["key"]],
            signups_sql,
            fixture["program_id"],
        )
        signups.load(args.warmup, args, wrk_log, f"{signups.name} warm-up")
        before = signups.rows()
        result = signups.load(args.duration, args, wrk_log, signups.name)
        phase = Phase(signups.name, result, signups.rows() - before)
        say(f"  {phase.summary()}")
        phases.insert(1, phase)
    finally:
        for proc, _url in servers.values():
            stop(proc)
        # The signups enqueued recalculations that no worker consumes here: leave the broker db clean.
        celery_purge(env)

    return report(phases, args, out)


def report(phases: list[Phase], args: argparse.Namespace, out: Path) -> int:
    say()
    rows = [
        [
            p.name,
            f"{p.result.rps:,.0f}",
            f"{p.result.p50_ms:.1f} ms",
            f"{p.result.p99_ms:.1f} ms",
            p.result.errors_text,
            p.rows_text(),
        ]
        for p in phases
    ]
    text = table(rows, ["target", "req/s", "p50", "p99", "errors", "rows ok"])
    say(text)
    say()
    for p in phases:
        say(p.explain())
    redirect, baseline = phases[0], phases[-1]
    ratio = redirect.result.rps / baseline.result.rps if baseline.result.rps else 0.0
    say()
    say(
        f"redirect / baseline: {ratio:.0%} of the baseline's requests/s "
        f"({redirect.result.rps:,.0f} / {baseline.result.rps:,.0f})"
    )
    checks = {
        f"req/s >= {TARGET_RATIO:.0%} of baseline": ratio >= TARGET_RATIO,
        f"p99 < {TARGET_P99_MS:.0f} ms at {args.connections} connections": redirect.result.p99_ms < TARGET_P99_MS,
        "every click recorded": redirect.rows_ok,
    }
    say("target (issue): " + "; ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in checks.items()))
    if baseline.result.p99_ms >= TARGET_P99_MS:
        # Both servers were slowed alike: the tail then tells about the machine, not about Parrain.
        say(
            f"note: the bare baseline's own p99 was {baseline.result.p99_ms:.0f} ms in this run: the machine "
            "stalled (see the p99 per round); run it again before reading the p99 verdict"
        )
    say("TARGET MET" if all(checks.values()) else "TARGET MISSED")
    (out / "summary.txt").write_text(text + "\n")
    # Exit 1 only for lost or extra rows: a correctness failure. Speed is a verdict, printed above.
    return 0 if all(p.rows_ok for p in phases) else 1


if __name__ == "__main__":
    raise SystemExit(main())
