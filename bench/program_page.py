"""Throughput and latency of the program page `GET /p/<slug>/` beside the redirect `GET /r/<code>`, in one run.

The same load as bench/redirect.py (wrk at a fixed number of connections, the same gunicorn, a fresh
parrain_bench database), and the same alternating rounds, so that whatever else the machine does slows
both alike. The page is rendered live on every request (the price is never cached): a collective ladder,
three individual tiers (one double-sided) and a public leaderboard of ten ambassadors. See bench/README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402  (the repository root must be importable first)
    Gunicorn,
    LoadResult,
    add_gunicorn_options,
    add_store_options,
    bench_begin,
    celery_purge,
    django_in_process,
    free_port,
    fresh_database,
    manage,
    parrain_env,
    require_wrk,
    say,
    start,
    stop,
    table,
    wait_http,
)
from bench.redirect import Target, probe, settled  # noqa: E402

SLUG = "bench-page"
LEADERS = 10


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=15.0, help="seconds of measured load per target")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load before each target")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds --duration is cut into")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--wrk-threads", type=int, default=2)
    add_gunicorn_options(p)
    add_store_options(p, db="parrain_bench_page")
    return p.parse_args()


def setup_program(env: dict[str, str]) -> dict[str, Any]:
    """A program as a live one looks, made by the real services inside this process."""
    django_in_process(env)
    from decimal import Decimal

    from ambassadors.services import ambassador_enroll, program_create
    from core.actors import Actor
    from referrals.services import signup_record
    from rewards.services import tier_create

    bench = Actor.system("bench")
    program = program_create(
        actor=bench,
        slug=SLUG,
        name="Bench program page",
        destination_url="https://shop.example.com/welcome",
        base_price=Decimal("20.00"),
        floor_price=Decimal("10.00"),
        leaderboard_public=True,
    )
    tier_create(
        program=program, actor=bench, name="Community price", kind="collective", step=50,
        drop_type="amount", drop_value=Decimal("1.00"),
    )  # fmt: skip
    for threshold, percent, friend in ((1, 5, 10), (3, 20, None), (10, 50, None)):
        tier_create(
            program=program, actor=bench, name=f"{threshold} friends", kind="individual",
            metric="qualified_signups", threshold=Decimal(threshold), reward_type="percent_voucher",
            reward_value=Decimal(percent), referee_reward_type="percent_voucher" if friend else "",
            referee_reward_value=Decimal(friend) if friend else None,
        )  # fmt: skip
    clicker = None
    for n in range(LEADERS):
        ambassador, _ = ambassador_enroll(program=program, email=f"amb{n}@example.com", display_name=f"Ambassador {n}")
        clicker = clicker or ambassador
        for f in range(n + 1):
            signup_record(
                program=program, email=f"friend-{n}-{f}@example.org", referral_code=ambassador.code, actor=bench
            )
    return {"clicker": clicker}


def probe_page(url: str, path: str) -> str:
    """The page must answer 200 with its price, offers and leaderboard before it is measured."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", path, headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"})
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    wanted = ('id="current-price"', "qualified friends", "Ambassador 9")
    if response.status != 200 or not all(w in body for w in wanted):
        raise SystemExit(f"{url}{path} answered {response.status}: not the program page with its price and leaders")
    return f"200, {len(body):,} bytes of HTML with the price, the offers and {LEADERS} leaders"


def main() -> int:
    args = parse_args()
    require_wrk()
    out = bench_begin(args, title="Parrain program page beside the redirect, under the same load", name="program_page")
    gunicorn = Gunicorn(args.workers, args.worker_class, args.threads)
    say(
        f"load: wrk -t{args.wrk_threads} -c{args.connections}; per target {args.warmup:g}s warm-up, then "
        f"{args.duration:g}s measured in {args.rounds} alternating rounds"
    )
    say(f"server: {gunicorn.describe()}")
    say()
    env = parrain_env(pg=args.pg, db=args.db, redis_url=args.redis)
    say(f"setting up: fresh database {args.db}, migrate, a program with a ladder, tiers and {LEADERS} leaders")
    fresh_database(env, pg=args.pg, db=args.db, log=out / "setup.log")
    # The page links its stylesheet and scripts through the manifest, as a deployment does (DEBUG off).
    manage(env, "collectstatic", "--noinput", log=out / "setup.log")
    celery_purge(env)
    clicker = setup_program(env)["clicker"]
    wrk_log = out / "wrk.log"
    clicks_sql = "SELECT count(*) FROM referrals_click WHERE ambassador_id = %s"

    proc = None
    try:
        port = free_port()
        log = out / "parrain-gunicorn.log"
        proc = start(gunicorn.argv("config.wsgi:application", port, log), env=env, log=log)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health/", proc=proc, log=log)
        say(f"  /r/<code> answers: {probe(url, f'/r/{clicker.code}')}")
        say(f"  /p/{SLUG}/ answers: {probe_page(url, f'/p/{SLUG}/')}")
        # load.lua's "redirect" mode is a plain browser GET: it serves the page as well as the redirect.
        targets = [
            Target("redirect /r/<code>", url, ["redirect", f"/r/{clicker.code}"], clicks_sql, clicker.pk),
            Target(f"program page /p/{SLUG}/", url, ["redirect", f"/p/{SLUG}/"], clicks_sql, clicker.pk),
        ]
        for target in targets:
            target.load(args.warmup, args, wrk_log, f"{target.name} warm-up")
        clicks_before = settled(clicks_sql, clicker.pk)
        rounds: list[list[LoadResult]] = [[], []]
        for n in range(args.rounds):
            for i in (0, 1) if n % 2 == 0 else (1, 0):
                rounds[i].append(
                    targets[i].load(args.duration / args.rounds, args, wrk_log, f"{targets[i].name} round {n + 1}")
                )
        clicks = settled(clicks_sql, clicker.pk) - clicks_before
    finally:
        if proc is not None:
            stop(proc)
        celery_purge(env)

    results = [LoadResult.merge(r) for r in rounds]
    say()
    rows = [
        [t.name, f"{r.rps:,.0f}", f"{r.p50_ms:.1f} ms", f"{r.p99_ms:.1f} ms", r.errors_text]
        for t, r in zip(targets, results, strict=True)
    ]
    text = table(rows, ["target", "req/s", "p50", "p99", "errors"])
    say(text)
    for t, r in zip(targets, rounds, strict=True):
        per_round = ", ".join(f"{x.rps:,.0f}" for x in r)
        p99s = ", ".join(f"{x.p99_ms:.0f}" for x in r)
        say(f"  {t.name} per round: req/s {per_round}; p99 {p99s} ms")
    redirect, page = results
    say()
    say(
        f"program page / redirect: {page.rps / redirect.rps:.0%} of the redirect's requests/s "
        f"({page.rps:,.0f} / {redirect.rps:,.0f}); p99 {page.p99_ms:.1f} ms beside {redirect.p99_ms:.1f} ms"
    )
    clicks_ok = redirect.answered <= clicks <= redirect.sent - redirect.status_errors
    say(f"every redirect left its click: {'yes' if clicks_ok else 'NO'} ({clicks} clicks, {redirect.answered} answers)")
    (out / "summary.txt").write_text(text + "\n")
    # Exit 1 for a correctness failure only (an error status, a lost click); speed is a figure, printed above.
    return 0 if clicks_ok and not page.status_errors and not redirect.status_errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
