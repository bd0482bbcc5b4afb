"""Waitlist positions at 100,000 subscribers: one subscriber's place and a page of the staff line, beside the
query they replaced (the whole line numbered, then filtered), measured in the same run on the same data.

Set-up: a fresh parrain_bench_waitlist database migrated by the project's migrations, a program with a
running waitlist made by the real services, then bulk-loaded (bulk_create): 1,000 ambassadors (each also a
subscriber, as a waitlist's ambassadors are), 100,000 signups over 30 days (30 % referred, of which 90 %
qualified, 5 % held for review, 5 % rejected), 2,000 of them admitted already. VACUUM ANALYZE.

Measured in this process (DEBUG off), each figure the median of --runs after one warm-up: a subscriber's
place (at the front, the middle and the end of the line: commerce.waitlist.waitlist_position), the first
and a deep page of the staff line (waitlist_lines), and an ambassador's place as /dashboard/ asks it
(waitlist_position_of_ambassador). The baseline is the former query text, run as it was (nested loops off,
the server's own work_mem and JIT settings) with the same parameters. Both must give identical positions
(checked).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402  (the repository root must be importable first)
    add_store_options,
    bench_begin,
    django_in_process,
    fresh_database,
    parrain_env,
    say,
    table,
)

SLUG = "bench-waitlist"
TARGET_MS = 100.0

# The query commerce.waitlist ran before: the whole line numbered by window functions over every column
# it shows, then filtered. Kept here, verbatim but for the table names, as the baseline.
OLD_SQL = """
    WITH ordered AS (
        SELECT s.id, s.email, s.email_canonical, s.created_at, s.status,
               ROW_NUMBER() OVER (ORDER BY s.created_at, s.id) AS signup_order
        FROM referrals_signup s WHERE s.program_id = %s
    ), referred AS (
        SELECT a.email_canonical, COUNT(*) AS n
        FROM referrals_signup r JOIN ambassadors_ambassador a ON a.id = r.ambassador_id
        WHERE r.program_id = %s AND a.program_id = %s AND r.status = %s
        GROUP BY a.email_canonical
    ), queued AS (
        SELECT o.id, o.email, o.created_at, o.signup_order, COALESCE(f.n, 0) AS referrals,
               o.signup_order - %s * COALESCE(f.n, 0) AS score
        FROM ordered o LEFT JOIN referred f ON f.email_canonical = o.email_canonical
        WHERE o.status <> %s AND NOT EXISTS (SELECT 1 FROM commerce_waitlistadmission w WHERE w.signup_id = o.id)
    ), ranked AS (
        SELECT q.*, ROW_NUMBER() OVER (ORDER BY q.score, q.created_at, q.id) AS position,
               COUNT(*) OVER () AS total
        FROM queued q
    )
    SELECT position, id, email, created_at, referrals, signup_order, score, total FROM ranked
    WHERE position > %s {one}
    ORDER BY position {limited}
"""


def load(*, signups: int, ambassadors: int, admitted: int, seed: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from ambassadors.mailbox import canonical_mailbox
    from ambassadors.models import Ambassador
    from ambassadors.services import program_create
    from commerce.models import WaitlistAdmission
    from commerce.waitlist import waitlist_configure
    from core.actors import Actor
    from referrals.models import Signup

    rng = random.Random(seed)
    actor = Actor.system("bench")
    program = program_create(actor=actor, slug=SLUG, name="Bench waitlist")
    waitlist_configure(program=program, actor=actor, enabled=True, places_per_referral=10)
    start = datetime.now(UTC) - timedelta(days=30)
    span = 30 * 86400
    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        [user_model(username=f"amb{i}", email=f"amb{i}@example.com") for i in range(ambassadors)], batch_size=2000
    )
    ambs = Ambassador.objects.bulk_create(
        [
            Ambassador(
                program=program,
                user=u,
                code=f"C{i:05d}X",
                code_key=f"C{i:05d}X",
                email=u.email,
                email_canonical=canonical_mailbox(u.email),
            )  # fmt: skip
            for i, u in enumerate(users)
        ],
        batch_size=2000,
    )
    rows = []
    for i in range(signups):
        moment = start + timedelta(seconds=span * i / signups + rng.random())
        if i < ambassadors:  # the ambassadors subscribed early
            email, amb, status = ambs[i].email, None, Signup.Status.QUALIFIED
        else:
            email = f"friend{i}@example.org"
            amb = rng.choice(ambs) if rng.random() < 0.3 else None
            roll = rng.random()
            status = (
                Signup.Status.QUALIFIED
                if amb is None or roll < 0.9
                else Signup.Status.PENDING_REVIEW
                if roll < 0.95
                else Signup.Status.REJECTED
            )
        rows.append(
            Signup(
                program=program,
                email=email,
                email_canonical=canonical_mailbox(email),
                ambassador=amb,
                method=Signup.Method.CODE if amb else Signup.Method.NONE,
                status=status,
                created_at=moment,
            )  # fmt: skip
        )
    made = Signup.objects.bulk_create(rows, batch_size=5000)
    first = sorted(made, key=lambda s: (s.created_at, s.pk))[:admitted]
    WaitlistAdmission.objects.bulk_create(
        [
            WaitlistAdmission(program=program, signup=s, position=n + 1, admitted_at=s.created_at, admitted_by="bench")
            for n, s in enumerate(first)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {"program": program, "signups": made, "ambassadors": ambs}


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    result = fn()  # warm-up
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples), result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_store_options(p, db="parrain_bench_waitlist")
    p.add_argument("--signups", type=int, default=100_000)
    p.add_argument("--ambassadors", type=int, default=1_000)
    p.add_argument("--admitted", type=int, default=2_000)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    out = bench_begin(args, title="Waitlist positions", name="waitlist")
    env = parrain_env(pg=args.pg, db=args.db, redis_url=args.redis)
    fresh_database(env, pg=args.pg, db=args.db, log=out / "migrate.log")
    django_in_process(env)

    from django.db import connection, transaction

    from commerce import waitlist
    from referrals.models import Signup

    t = time.perf_counter()
    data = load(signups=args.signups, ambassadors=args.ambassadors, admitted=args.admitted, seed=args.seed)
    say(f"loaded {args.signups:,} signups, {args.ambassadors:,} ambassadors in {time.perf_counter() - t:.1f} s")
    program = data["program"]
    places = 10

    def old(*, after: int = 0, limit: int | None = None, signup_id: int | None = None) -> list[tuple[Any, ...]]:
        sql = OLD_SQL.format(one="AND id = %s" if signup_id else "", limited="LIMIT %s" if limit else "")
        params: list[Any] = [program.pk, program.pk, program.pk, Signup.Status.QUALIFIED, places,
                             Signup.Status.REJECTED, after]  # fmt: skip
        params += [signup_id] if signup_id else []
        params += [limit] if limit else []
        # The former cursor: nested loops off, the server's own work_mem and JIT.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_nestloop = off")
            cursor.execute(sql, params)
            return cursor.fetchall()

    line = waitlist.waitlist_lines(program, limit=args.signups)
    total = len(line)
    by_place = {n: line[n - 1] for n in (1, total // 2, total)}
    ambassador = data["ambassadors"][len(data["ambassadors"]) // 2]
    say(f"in line: {total:,}")
    signups = {s.pk: s for s in Signup.objects.filter(pk__in=[w.signup_id for w in by_place.values()])}
    for s in signups.values():
        s.program = program

    # The new and the old queries give the very same line.
    old_line = old()
    mismatch = [
        n
        for n, (a, b) in enumerate(zip(line, old_line, strict=True), 1)
        if (a.position, a.signup_id, a.score, a.total) != (int(b[0]), b[1], int(b[6]), int(b[7]))
    ]
    say(f"same line as the former query: {'yes' if not mismatch else f'NO, first difference at {mismatch[0]}'}")

    rows = []
    for label, new_fn, old_fn in [
        *[
            (
                f"one subscriber's place (no. {n:,})",
                (lambda w=w: waitlist.waitlist_position(signups[w.signup_id], places=places)),
                (lambda w=w: old(signup_id=w.signup_id)),
            )
            for n, w in by_place.items()
        ],
        ("an ambassador's place (/dashboard/)", lambda: waitlist.waitlist_position_of_ambassador(ambassador), None),
        ("staff line, first page (50)", lambda: waitlist.waitlist_lines(program, places=places, limit=50),
         lambda: old(limit=50)),
        (f"staff line, page at {total // 2:,} (50)",
         lambda: waitlist.waitlist_lines(program, places=places, after=total // 2, limit=50),
         lambda: old(after=total // 2, limit=50)),
    ]:  # fmt: skip
        new_ms, new_result = timed(new_fn, args.runs)
        old_ms, old_result = timed(old_fn, args.runs) if old_fn else (float("nan"), None)
        if old_fn and isinstance(new_result, list):
            same = [w.signup_id for w in new_result] == [r[1] for r in old_result]
        elif old_fn:
            same = new_result is not None and old_result and new_result.position == int(old_result[0][0])
        else:
            same = True
        rows.append([label, f"{old_ms:.1f}", f"{new_ms:.1f}", "yes" if same else "NO"])
        if not same:
            mismatch.append(-1)
    say()
    say(table(rows, ["median of runs", "former query ms", "now ms", "same answer"]))
    slowest = max(float(r[2]) for r in rows)
    say()
    say(f"verdict: slowest median {slowest:.1f} ms, target under {TARGET_MS:.0f} ms: "
        f"{'met' if slowest < TARGET_MS else 'MISSED'}")  # fmt: skip
    return 1 if mismatch else 0


if __name__ == "__main__":
    raise SystemExit(main())
