"""Where a redirect's time goes: `GET /r/<code>` called in-process, no HTTP server, beside the baseline;
and what the signup API's fast path saves: `POST /api/v1/programs/<slug>/signups` on it and through the
full stack (API_FAST_PATH off), alternately, in the same process.

Both WSGI applications (`config.wsgi:application` and `bench/baseline_wsgi.py`) are called directly
with the same request, one after the other, against a fresh parrain_bench_inprocess database on
PostgreSQL. For each: wall time and this process's CPU time per request (best of --repeats batches of
--requests; the machine is shared, and the best batch is the one least disturbed), the statements sent
to PostgreSQL per request, and the CPU the PostgreSQL backend serving this process spent per request
(read from /proc, when PostgreSQL runs on this machine under the same user namespace).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402  (the repository root must be importable first)
    add_store_options,
    bench_begin,
    fresh_database,
    parrain_env,
    say,
    table,
)
from bench.redirect import setup_program  # noqa: E402

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=2000, help="requests per batch")
    p.add_argument("--repeats", type=int, default=5, help="batches per application; the best is kept")
    add_store_options(p, db="parrain_bench_inprocess")
    return p.parse_args()


def _wsgi_call(application: Callable[..., Any], environ: dict[str, Any]) -> str:
    """One request through `application`, as gunicorn would make it; returns the status line."""
    answer: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer.append(status)

    result = application(
        {
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            **environ,
        },
        start_response,
    )
    for _chunk in result:
        pass
    if hasattr(result, "close"):
        result.close()
    return answer[0]


def caller(application: Callable[..., Any], path: str) -> Callable[[], str]:
    """One GET of `path` through `application`, as a browser following a shared link."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "HTTP_USER_AGENT": BROWSER}
    return lambda: _wsgi_call(application, environ)


def signup_caller(application: Callable[..., Any], path: str, key: str) -> Callable[[], str]:
    """One POST of a new subscriber to `path` with the key, as an integration sends it."""
    sent = [0]
    run = f"{time.time_ns():x}"

    def call() -> str:
        sent[0] += 1
        body = f'{{"email": "inprocess-{run}-{sent[0]}@example.com"}}'.encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "HTTP_AUTHORIZATION": f"Bearer {key}",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }
        return _wsgi_call(application, environ)

    return call


def backend_cpu_s(pid: int) -> float | None:
    """utime + stime of a local PostgreSQL backend, or None when /proc does not show it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    call: Callable[[], str], backend_pid: Callable[[], int], args: argparse.Namespace, expected: str = "302"
) -> dict[str, float]:
    for _ in range(200):  # warm-up: imports, prepared statements, caches
        status = call()
    if not status.startswith(expected):
        raise SystemExit(f"expected a {expected}, got {status!r}")
    best: dict[str, float] = {}
    for _ in range(args.repeats):
        pid = backend_pid()
        pg_before = backend_cpu_s(pid)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.requests):
            call()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        pg_after = backend_cpu_s(pid)
        batch = {"wall": wall / args.requests * 1e6, "cpu": cpu / args.requests * 1e6}
        if pg_before is not None and pg_after is not None:
            batch["pg"] = (pg_after - pg_before) / args.requests * 1e6
        if not best or batch["wall"] < best["wall"]:
            best = batch
    return best


def main() -> int:
    args = parse_args()
    out = bench_begin(args, title="Parrain redirect in-process, beside the bare WSGI baseline", name="inprocess")
    env = parrain_env(pg=args.pg, db=args.db, redis_url=args.redis)
    say(f"setting up: fresh database {args.db}, migrate, program + ambassadors through the services")
    fresh_database(env, pg=args.pg, db=args.db, log=out / "setup.log")
    fixture = setup_program(env)
    warnings.filterwarnings("ignore", message="No directory at")  # static files are not collected here

    from django.db import connection

    import bench.baseline_wsgi as baseline
    from config.wsgi import application

    parrain_call = caller(application, f"/r/{fixture['parrain'].code}")
    baseline_call = caller(baseline.application, f"/r/{fixture['baseline'].code}")
    sent: list[str] = []

    def count(execute: Callable[..., Any], sql: str, *rest: Any) -> Any:
        sent.append(sql)
        return execute(sql, *rest)

    parrain_call()
    with connection.execute_wrapper(count):
        parrain_call()
    results = {
        "parrain": measure(parrain_call, lambda: connection.connection.info.backend_pid, args),
        "baseline": measure(baseline_call, lambda: baseline._connection().info.backend_pid, args),
    }
    statements = {"parrain": len(sent), "baseline": 2}  # the baseline sends its lookup and its INSERT
    rows = [
        [
            name,
            f"{r['wall']:.0f} us",
            f"{r['cpu']:.0f} us",
            f"{r['pg']:.0f} us" if "pg" in r else "n/a",
            str(statements[name]),
        ]
        for name, r in results.items()
    ]
    say()
    say(table(rows, ["per redirect", "wall", "CPU (this process)", "CPU (PostgreSQL backend)", "statements"]))
    say()
    parrain, bare = results["parrain"], results["baseline"]
    say(
        f"Parrain / baseline: {parrain['wall'] / bare['wall']:.2f}x the wall time, "
        f"{parrain['cpu'] / bare['cpu']:.2f}x the CPU time in the application"
    )
    signups(application, fixture, args, env)
    return 0


def signups(application: Callable[..., Any], fixture: dict[str, Any], args: argparse.Namespace, env: Any) -> None:
    """The signup API's fast path beside the full stack, same process, same key, batches alternating."""
    from django.conf import settings
    from django.db import connection

    from ambassadors.models import Program
    from bench.common import celery_purge

    slug = Program.objects.get(pk=fixture["program_id"]).slug
    call = signup_caller(application, f"/api/v1/programs/{slug}/signups", fixture["key"])
    # The key's own rate limits are an operator's setting; what is measured here is the path.
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    for scope in ("api_key", "signups_key", "signups_ip"):
        rates[scope] = "1000000/minute"
    results: dict[str, dict[str, float]] = {}
    for _ in range(2):  # alternate: each path twice, the best batch of each kept
        for name, fast in (("fast path", True), ("full stack", False)):
            settings.API_FAST_PATH = fast
            batch = measure(call, lambda: connection.connection.info.backend_pid, args, expected="201")
            if name not in results or batch["wall"] < results[name]["wall"]:
                results[name] = batch
    settings.API_FAST_PATH = True
    celery_purge(env)  # the recalculations the signups published: no worker runs here
    rows = [
        [name, f"{r['wall']:.0f} us", f"{r['cpu']:.0f} us", f"{r['pg']:.0f} us" if "pg" in r else "n/a"]
        for name, r in results.items()
    ]
    say()
    say(table(rows, ["per signup (POST .../signups)", "wall", "CPU (this process)", "CPU (PostgreSQL backend)"]))
    say()
    fast, full = results["fast path"], results["full stack"]
    say(f"fast path / full stack: {fast['cpu'] / full['cpu']:.2f}x the CPU time in the application")


if __name__ == "__main__":
    raise SystemExit(main())
