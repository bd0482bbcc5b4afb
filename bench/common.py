"""Plumbing shared by the benchmarks: the environment, a throwaway database, processes stopped by PID, wrk.

Everything a benchmark starts is recorded here and stopped by its own PID (and the process group it
leads) on exit, Ctrl-C included. Load only ever goes to 127.0.0.1.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import platform
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
LUA = ROOT / "bench" / "load.lua"

DEFAULT_PG = "postgres://postgres@127.0.0.1:5432"
DEFAULT_DB = "parrain_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/3"
# Only databases with this prefix may be dropped: a benchmark never touches anyone else's data.
DB_PREFIX = "parrain_bench"


def bench_begin(args: Any, *, title: str, name: str) -> Path:
    """What every benchmark does first: check the tools and services, print the header with the command
    that reproduces the run, and make the folder its logs go to (returned)."""
    require_venv()
    require_services(pg=args.pg, redis_url=args.redis)
    header(title, f"bench/{name}.py", vars(args))
    out = results_dir(name)
    say(f"logs: {out.relative_to(ROOT)}/")
    return out


def add_store_options(p: Any, *, db: str) -> None:
    """--db, --pg, --redis: where a benchmark puts its throwaway database and its broker messages."""
    p.add_argument("--db", default=db)
    p.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server URL, without the database")
    p.add_argument("--redis", default=DEFAULT_REDIS)


def add_gunicorn_options(p: Any) -> None:
    """--workers, --worker-class, --threads of the gunicorn serving Parrain (and the baseline)."""
    # One worker per core plus one: a sync worker spends part of each request waiting on PostgreSQL.
    p.add_argument("--workers", type=int, default=(os.cpu_count() or 1) + 1)
    p.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    p.add_argument("--threads", type=int, default=1, help="threads per worker (gthread only)")


def django_in_process(env: dict[str, str]) -> None:
    """Set up Django in this process against the benchmark's database, to build data through the services."""
    os.environ.update(env)
    import django

    django.setup()


def say(line: str = "") -> None:
    print(line, flush=True)


def reproduce_line(script: str, args: dict[str, Any]) -> str:
    """The exact command that reproduces this run, every option spelled out."""
    parts = [".venv/bin/python", script]
    for name, value in args.items():
        flag = f"--{name.replace('_', '-')}"
        if isinstance(value, bool):
            parts += [flag] if value else []
        else:
            parts += [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def header(title: str, script: str, args: dict[str, Any]) -> None:
    say(f"== {title}")
    say(f"reproduce (from the repository root): {reproduce_line(script, args)}")
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    python = sys.version.split()[0]
    say(f"machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, Python {python}")
    say(f"started: {datetime.now().isoformat(timespec='seconds')}")
    say()


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        print("wrk is not installed: run `apt-get install wrk` (Debian/Ubuntu) and try again.", file=sys.stderr)
        raise SystemExit(2)
    return path


def require_venv() -> None:
    for tool in ("python", "gunicorn", "celery"):
        if not (VENV_BIN / tool).exists():
            print(f".venv/bin/{tool} is missing: run `make install` first.", file=sys.stderr)
            raise SystemExit(2)


def require_services(*, pg: str, redis_url: str) -> None:
    """PostgreSQL and Redis must answer before anything is started."""
    import psycopg
    import redis

    try:
        psycopg.connect(f"{pg.rstrip('/')}/postgres", connect_timeout=3).close()
    except psycopg.Error as exc:
        print(f"PostgreSQL does not answer at {pg}: {exc}".strip(), file=sys.stderr)
        raise SystemExit(2) from None
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        print(f"Redis does not answer at {redis_url}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def results_dir(name: str) -> Path:
    """bench/results/<name>-<time>/: logs and raw output, ignored by git."""
    path = ROOT / "bench" / "results" / f"{name}-{datetime.now():%Y%m%d-%H%M%S}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parrain_env(*, pg: str, db: str, redis_url: str) -> dict[str, str]:
    """A production-like environment: DEBUG off, a fresh secret, workers talk to the real broker."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "SECURE_SSL_REDIRECT": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_URL": f"{pg.rstrip('/')}/{db}",
            "REDIS_URL": redis_url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            # Reward e-mails would only fill the worker's log; sending them is not what is measured.
            "EMAIL_URL": "dummymail://",
            "LOG_LEVEL": "WARNING",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def recreate_database(*, pg: str, db: str) -> None:
    import psycopg
    from psycopg import sql

    if not db.startswith(DB_PREFIX):
        raise SystemExit(f"refusing to drop {db!r}: benchmarks only recreate databases named {DB_PREFIX}*")
    with psycopg.connect(f"{pg.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))


def manage(env: dict[str, str], *args: str, log: Path | None = None) -> str:
    """Run manage.py to completion; its output is returned (and kept in `log`)."""
    done = subprocess.run(
        [str(PYTHON), "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if log is not None:
        with log.open("a") as f:
            f.write(f"$ manage.py {' '.join(args)}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def fresh_database(env: dict[str, str], *, pg: str, db: str, log: Path) -> None:
    """Drops and recreates `db` (a parrain_bench* name only), then migrates it as a deployment would."""
    recreate_database(pg=pg, db=db)
    manage(env, "migrate", "--noinput", log=log)


def celery_purge(env: dict[str, str]) -> None:
    """Drop the messages left in the benchmark's own Redis db, so no stale task runs against a new database."""
    subprocess.run(
        [str(VENV_BIN / "celery"), "-A", "config", "purge", "-f"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
    )


# --- Processes ---------------------------------------------------------------------------------------

_started: list[subprocess.Popen[bytes]] = []


def start(argv: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a server in its own process group (so its children go with it) and remember its PID."""
    out = log.open("ab")
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    _started.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM to the PID we started (gunicorn and celery stop their own workers); SIGKILL its group if it hangs."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # Still unreaped, so its PID (and the group we created with start_new_session) is still ours.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    if proc in _started:
        _started.remove(proc)


def _stop_all() -> None:
    for proc in list(reversed(_started)):
        stop(proc, timeout=5)


def _on_signal(signum: int, _frame: Any) -> None:
    _stop_all()
    raise SystemExit(128 + signum)


atexit.register(_stop_all)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def wait_http(url: str, *, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer 200 within {timeout:.0f}s; see {log}")


@dataclass(frozen=True)
class Gunicorn:
    """The one gunicorn configuration both the application and its baseline are served with."""

    workers: int
    worker_class: str
    threads: int

    def argv(self, app: str, port: int, log: Path) -> list[str]:
        return [
            str(VENV_BIN / "gunicorn"),
            app,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            self.worker_class,
            "--threads",
            str(self.threads),
            "--backlog",
            "2048",
            "--timeout",
            "60",
            "--error-logfile",
            str(log),
            "--log-level",
            "warning",
        ]

    def describe(self) -> str:
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        return f"gunicorn {self.workers} {self.worker_class} workers{threads}"


# --- wrk ---------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    """What wrk measured for one target, over one run or several merged rounds."""

    duration_s: float
    requests: int  # complete responses, any status, late ones included
    sent: int  # requests written to a socket
    status_errors: int  # responses with a status >= 400 (wrk's "Non-2xx or 3xx")
    errors: dict[str, int]  # wrk's socket errors: connect, read, write, timeout (late responses)
    # Latency at each 0.1% of the distribution, weighted by the requests of the run it came from.
    quantiles: list[tuple[float, float]]
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    def latency_ms(self, p: float) -> float:
        """The p-th percentile; across merged rounds, from their quantiles at 0.1% resolution."""
        total = sum(w for _, w in self.quantiles)
        reached = 0.0
        for value, weight in sorted(self.quantiles):
            reached += weight
            if reached >= total * p / 100 - 1e-9:
                return value
        return self.max_ms

    @property
    def p50_ms(self) -> float:
        return self.latency_ms(50)

    @property
    def p99_ms(self) -> float:
        return self.latency_ms(99)

    @property
    def socket_errors(self) -> int:
        return sum(self.errors.values())

    @property
    def answered(self) -> int:
        """Answers wrk saw with a 2xx or 3xx status."""
        return self.requests - self.status_errors

    @property
    def lost(self) -> int:
        """Requests written whose connection failed (read or write error): the server may or may not have run them."""
        return self.errors["read"] + self.errors["write"]

    @property
    def in_flight(self) -> int:
        """Requests written, neither answered nor failed: in flight when wrk stopped at its deadline."""
        return self.sent - self.requests - self.lost

    @property
    def errors_text(self) -> str:
        parts = [f"{k} {v}" for k, v in self.errors.items() if v]
        if self.status_errors:
            parts.append(f"non-2xx/3xx {self.status_errors}")
        return ", ".join(parts) or "0"

    @classmethod
    def merge(cls, rounds: list[LoadResult]) -> LoadResult:
        return cls(
            duration_s=sum(r.duration_s for r in rounds),
            requests=sum(r.requests for r in rounds),
            sent=sum(r.sent for r in rounds),
            status_errors=sum(r.status_errors for r in rounds),
            errors={k: sum(r.errors[k] for r in rounds) for k in rounds[0].errors},
            quantiles=[q for r in rounds for q in r.quantiles],
            max_ms=max(r.max_ms for r in rounds),
        )


def run_wrk(
    url: str,
    *,
    duration: float,
    connections: int,
    threads: int,
    script_args: list[str],
    log: Path,
    label: str,
) -> LoadResult:
    """wrk with --latency and bench/load.lua; its own output is kept in `log`, its figures returned."""
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration:g}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(LUA),
        url,
        "--",
        *script_args,
    ]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    lines = done.stdout.splitlines()
    with log.open("a") as f:
        shown = "\n".join(ln for ln in lines if not ln.startswith("BENCH_QUANTILES "))
        f.write(f"--- {label}\n$ {' '.join(shlex.quote(a) for a in argv)}\n{shown}\n{done.stderr}\n")
    line = next((ln for ln in lines if ln.startswith("BENCH_JSON ")), None)
    quantiles = next((ln for ln in lines if ln.startswith("BENCH_QUANTILES ")), None)
    if done.returncode != 0 or line is None or quantiles is None:
        raise SystemExit(f"wrk failed ({label}):\n{done.stdout}{done.stderr}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    values = [int(v) / 1000 for v in quantiles.split()[1:]]
    return LoadResult(
        duration_s=raw["duration_us"] / 1e6,
        requests=raw["requests"],
        sent=raw["sent"],
        status_errors=raw["status"],
        errors={k: raw[k] for k in ("connect", "read", "write", "timeout")},
        quantiles=[(v, raw["requests"] / len(values)) for v in values],
        max_ms=raw["max_us"] / 1000,
    )


def table(rows: list[list[str]], headings: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [headings, *rows]) for i in range(len(headings))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [headings, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: the value at or below which q% of the samples fall."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
