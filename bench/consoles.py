"""The staff and audit consoles on a million signups: each page's latency, the audit search's plans, the CSV exports.

Set-up: a fresh parrain_bench_consoles database migrated by the project's migrations, then a program (and
a second, small one) made by the real services, and its history bulk-loaded with PostgreSQL COPY:
10,000 ambassadors (with their users, a channel link for one in five, their counters), 1,000,000 signups
over 120 days (70 % referred, mostly qualified, some held for review or rejected with their reasons; the
e-mail as typed and its canonical mailbox from ambassadors.mailbox, as the app stores them), 2,000,000
clicks (the attributed click of every cookie or API signup, competing clicks of the same visitor, the
rest traffic that did not convert, bots included), 100,000 conversions (approved, pending, reversed), a
collective price ladder with its milestones, and 200,000 audit events. Indexes and constraints are
dropped during the COPY and rebuilt after it (the foreign keys are validated by PostgreSQL when they are
added back), then VACUUM ANALYZE.

Measured in this process through django.test.Client (a superuser, force_login), DEBUG off: every console
page, 20 requests each after a warm-up, beside /health/ and the program page through the same client.
Then the plans of the audit searches (EXPLAIN ANALYZE of the very SQL the page sent), and the full CSV
exports streamed through the client (rows/s, memory growth) beside an export of a tenth of the rows.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402  (the repository root must be importable first)
    add_store_options,
    bench_begin,
    celery_purge,
    django_in_process,
    fresh_database,
    manage,
    parrain_env,
    percentile,
    say,
    table,
)

SLUG = "bench-consoles"
SMALL_SLUG = "bench-consoles-small"
TARGET_MS = 300.0
DAY = 86400.0


@dataclass(frozen=True)
class Sizes:
    ambassadors: int = 10_000
    signups: int = 1_000_000
    clicks: int = 2_000_000
    conversions: int = 100_000
    audit_events: int = 200_000
    days: int = 120


SMALL = Sizes(ambassadors=50, signups=2_000, clicks=4_000, conversions=200, audit_events=400, days=120)


@dataclass
class Loaded:
    """What the loader made, and the rows the measurements look up."""

    program_id: int
    small_program_id: int
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    competing_signup_id: int = 0  # a signup whose visitor also clicked other ambassadors' links
    sample_email: str = ""  # a subscriber's address as typed
    sample_email_variant: str = ""  # the same mailbox written otherwise (gmail dots removed)
    top_code: str = ""  # the ambassador with the most signups
    mid_code: str = ""  # an ordinary ambassador
    mid_email: str = ""
    sample_order: str = ""  # a conversion's external id


# --- COPY text format ---------------------------------------------------------------------------------

NULL = "\\N"


def esc(value: str) -> str:
    """A text value for COPY ... FROM STDIN (text format): backslash, tab and line breaks escaped."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


class Copier:
    """Lines buffered and sent to one COPY in chunks of about a megabyte."""

    def __init__(self, copy: Any) -> None:
        self.copy = copy
        self.lines: list[str] = []
        self.size = 0
        self.rows = 0

    def row(self, line: str) -> None:
        self.lines.append(line)
        self.size += len(line)
        self.rows += 1
        if self.size > 1_000_000:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            self.copy.write("\n".join(self.lines) + "\n")
            self.lines.clear()
            self.size = 0


def copy_lines(cursor: Any, table_name: str, columns: str, lines: Iterator[str] | list[str]) -> int:
    with cursor.copy(f"COPY {table_name} ({columns}) FROM STDIN") as copy:
        out = Copier(copy)
        for line in lines:
            out.row(line)
        out.flush()
    return out.rows


# --- Indexes and constraints off during the COPY ------------------------------------------------------

BULK_TABLES = ["referrals_click", "referrals_signup", "referrals_conversion", "core_auditevent"]


def drop_indexes(cursor: Any, tables: list[str]) -> list[str]:
    """Drop the foreign keys touching `tables`, their keys and indexes; returns the statements that rebuild
    them (keys and indexes first, foreign keys last: ADD CONSTRAINT ... FOREIGN KEY checks every row)."""
    cursor.execute(
        """
        SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid), c.contype
        FROM pg_constraint c
        WHERE c.contype IN ('f', 'p', 'u')
          AND (c.conrelid = ANY(%(t)s::regclass[]) OR (c.contype = 'f' AND c.confrelid = ANY(%(t)s::regclass[])))
        """,
        {"t": tables},
    )
    constraints = cursor.fetchall()
    cursor.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        WHERE i.indrelid = ANY(%(t)s::regclass[])
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u'))
        """,
        {"t": tables},
    )
    indexes = cursor.fetchall()
    rebuild_keys, rebuild_fks = [], []
    for table_name, name, definition, kind in sorted(constraints, key=lambda c: c[3] != "f"):
        # Foreign keys first: a key cannot be dropped while a foreign key depends on it.
        cursor.execute(f'ALTER TABLE {table_name} DROP CONSTRAINT "{name}"')
        statement = f'ALTER TABLE {table_name} ADD CONSTRAINT "{name}" {definition}'
        (rebuild_fks if kind == "f" else rebuild_keys).append(statement)
    for name, definition in indexes:
        cursor.execute(f"DROP INDEX {name}")
        # A partitioned table's index is defined ON ONLY the parent; rebuilt on the parent alone, it would stay
        # invalid: built on the whole table, each partition gets its own.
        rebuild_keys.append(definition.replace(" ON ONLY ", " ON "))
    return rebuild_keys + rebuild_fks


# --- The loader ---------------------------------------------------------------------------------------

FIRST = [
    "ana", "ben", "chloe", "david", "emma", "felix", "gabriel", "hugo", "ines", "jules", "karim", "lea",
    "manon", "nina", "oscar", "paul", "quentin", "rose", "sami", "theo", "ursula", "victor", "wendy", "yasmine",
]  # fmt: skip
LAST = ["martin", "bernard", "dubois", "thomas", "robert", "richard", "petit", "durand", "leroy", "moreau"]
AGENTS = ["Chrome", "Chrome", "Chrome Mobile", "Mobile Safari", "Safari", "Firefox", "Edge", "Samsung Internet"]
REFERERS = ["", "", "instagram.com", "l.facebook.com", "t.co", "mail.google.com", "www.whatsapp.com"]


def address(n: int, rng: random.Random, *, disposable: bool = False) -> str:
    """A subscriber's e-mail as typed (lower-cased, as normalise_email leaves it), unique by its number n."""
    first, last = FIRST[n % len(FIRST)], LAST[(n // 7) % len(LAST)]
    if disposable:
        return f"{first}{n}@mailinator.com"
    kind = n % 10
    if kind <= 2:
        return f"{first}.{last}.{n}@gmail.com"  # dots Gmail ignores
    if kind <= 4:
        return f"{first}{n}+news@outlook.com"  # a +tag
    if kind <= 7:
        return f"{first}.{last}{n}@example.com"
    if kind == 8:
        return f"{first}{n}@yahoo.fr"
    return f"{last}.{n}@proton.me"


def code_for(n: int) -> str:
    """A generated-looking 7-character code from the app's alphabet, distinct for every n (a bijection)."""
    from ambassadors.normalise import CODE_ALPHABET

    base = len(CODE_ALPHABET)
    space = base**7
    x = (n * 2_654_435_761 + 12_345) % space  # odd multiplier, coprime with 31**7: distinct n, distinct x
    chars = []
    for _ in range(7):
        x, r = divmod(x, base)
        chars.append(CODE_ALPHABET[r])
    return "".join(chars)


def hex_bits(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def visitor(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"


def next_ids(cursor: Any) -> dict[str, int]:
    ids = {}
    for t in [
        "auth_user",
        "ambassadors_ambassador",
        "referrals_referrallink",
        "referrals_signup",
        "referrals_conversion",
        "core_auditevent",
    ]:
        cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {t}")
        ids[t] = int(cursor.fetchone()[0])
    return ids


def reset_sequences(cursor: Any) -> None:
    for t in [
        "auth_user",
        "ambassadors_ambassador",
        "referrals_referrallink",
        "referrals_signup",
        "referrals_conversion",
        "core_auditevent",
        "rewards_milestone",
    ]:
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM {t}), false)"
        )


def setup_programs(sizes: Sizes) -> dict[str, Any]:
    """The programs, their ladder, an API key and two auditors, by the real services (they audit themselves)."""
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from ambassadors.services import api_key_create, program_create
    from core.actors import Actor, pseudonym_of
    from core.roles import AUDITORS_GROUP
    from rewards.services import tier_create

    bench = Actor.system("bench")
    program = program_create(
        actor=bench,
        slug=SLUG,
        name="Bench consoles",
        destination_url="https://shop.example.com/welcome",
        base_price=Decimal("20.00"),
        floor_price=Decimal("10.00"),
        hold_period_days=14,
    )
    small = program_create(actor=bench, slug=SMALL_SLUG, name="Bench consoles (small)")
    # About fifty steps of twenty cents over the qualified signups: the ladder reaches its floor near the end.
    step = max(1, sizes.signups * 9 // 10 // 50)
    tier = tier_create(
        program=program, actor=bench, name="Community price", kind="collective", step=step,
        drop_type="amount", drop_value=Decimal("0.20"),
    )  # fmt: skip
    tier_create(
        program=program, actor=bench, name="Three friends", kind="individual", metric="qualified_signups",
        threshold=Decimal(3), reward_type="percent_voucher", reward_value=Decimal(10),
    )  # fmt: skip
    key, _ = api_key_create(program=program, scopes=["track"], actor=bench, name="bench")
    users = get_user_model().objects
    auditors = []
    group, _ = Group.objects.get_or_create(name=AUDITORS_GROUP)
    for name in ("auditor-ana", "auditor-ben"):
        user = users.create_user(username=f"{name}-{program.pk}", email=f"{name}@staff.example.com")
        user.groups.add(group)
        auditors.append(Actor.for_user(user))
        pseudonym_of(user)
    return {"program": program, "small": small, "tier": tier, "step": step, "key": key, "auditors": auditors}


@dataclass
class Amb:
    id: int
    program_id: int
    user_id: int
    code: str
    email: str
    canonical: str
    joined: float
    link_id: int | None


def load(sizes: Sizes, *, seed: int = 12, now: datetime | None = None, report: Any = None) -> Loaded:
    """Load the history of SLUG and SMALL_SLUG with COPY on Django's connection (in one transaction).

    `report(line)` is told of each step. The tables must be those the migrations made; programs, tiers and
    staff are made first by the services.
    """
    from django.db import connection, transaction

    from ambassadors.mailbox import canonical_mailbox
    from ambassadors.normalise import code_key

    say_ = report or (lambda _line: None)
    rng = random.Random(seed)
    now_dt = (now or datetime.now(UTC)).replace(microsecond=0)
    end = now_dt.timestamp() - 60
    start = end - sizes.days * DAY
    t0 = start - 30 * DAY  # the first ambassadors joined a month before the period
    join_span = sizes.days * DAY  # ...and the last ones three quarters into it
    started = time.perf_counter()
    fixture = setup_programs(sizes)
    program, small = fixture["program"], fixture["small"]
    key, auditors = fixture["key"], fixture["auditors"]
    loaded = Loaded(program_id=program.pk, small_program_id=small.pk)
    loaded.seconds["services"] = time.perf_counter() - started

    n_small_amb = max(3, sizes.ambassadors // 100)
    n_small_signups = max(20, sizes.signups // 100)
    plan = [  # (program id, ambassadors, signups, clicks)
        (program.pk, sizes.ambassadors, sizes.signups - n_small_signups, sizes.clicks - sizes.clicks // 100),
        (small.pk, n_small_amb, n_small_signups, sizes.clicks // 100),
    ]

    with transaction.atomic(), connection.cursor() as cursor:
        # Deferred foreign-key checks of the services' rows run now: ALTER TABLE refuses pending ones.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        ids = next_ids(cursor)
        t = time.perf_counter()
        rebuild = drop_indexes(cursor, BULK_TABLES)
        loaded.seconds["drop indexes"] = time.perf_counter() - t

        # Ambassadors (with a user each: the foreign key needs one), channel links.
        t = time.perf_counter()
        ambs: dict[int, list[Amb]] = {}
        user_id, amb_id, link_id = ids["auth_user"], ids["ambassadors_ambassador"], ids["referrals_referrallink"]
        serial = 0  # the number every subscriber's address is made from: unique across both programs
        for program_id, n_amb, _, _ in plan:
            ambs[program_id] = []
            for i in range(n_amb):
                email = address(serial, rng)
                joined = t0 + (i + rng.random()) / n_amb * join_span
                amb = Amb(
                    id=amb_id,
                    program_id=program_id,
                    user_id=user_id,
                    code=code_for(amb_id),
                    email=email,
                    canonical=canonical_mailbox(email),
                    joined=joined,
                    link_id=link_id if i % 5 == 0 else None,
                )
                ambs[program_id].append(amb)
                serial += 1
                user_id += 1
                amb_id += 1
                link_id += 1 if amb.link_id else 0
        all_ambs = [a for lst in ambs.values() for a in lst]
        date_joined = ts(t0 - DAY)
        copy_lines(
            cursor,
            "auth_user",
            "id, password, last_login, is_superuser, username, first_name, last_name, email, is_staff, "
            "is_active, date_joined",
            (
                f"{a.user_id}\t!\t{NULL}\tf\t{a.email}\t\t\t{a.email}\tf\tt\t{date_joined}"  # username: the e-mail
                for a in all_ambs
            ),
        )
        copy_lines(
            cursor,
            "ambassadors_ambassador",
            "id, program_id, user_id, code, code_key, email, email_canonical, display_name, is_active, "
            "created_at, claimed_at",
            (
                f"{a.id}\t{a.program_id}\t{a.user_id}\t{a.code}\t{code_key(a.code)}\t{a.email}\t{a.canonical}\t"
                f"{FIRST[a.id % len(FIRST)].title() if a.id % 3 else ''}\tt\t{ts(a.joined)}\t{ts(a.joined + 600)}"
                for a in all_ambs
            ),
        )
        copy_lines(
            cursor,
            "referrals_referrallink",
            "id, ambassador_id, channel, code, code_key, created_at",
            (
                f"{a.link_id}\t{a.id}\tinstagram\t{a.code}-IG\t{code_key(a.code + '-IG')}\t{ts(a.joined + 3600)}"
                for a in all_ambs
                if a.link_id
            ),
        )
        loaded.counts["users"] = loaded.counts["ambassadors"] = len(all_ambs)
        loaded.counts["links"] = sum(1 for a in all_ambs if a.link_id)
        loaded.seconds["ambassadors"] = time.perf_counter() - t

        # Signups, with the clicks that brought them; audit events of some. Clicks and events wait in memory
        # (a few hundred thousand lines) while the signups stream into their COPY.
        t = time.perf_counter()
        signup_id = ids["referrals_signup"]
        event_id = ids["core_auditevent"]
        click_lines: list[str] = []
        event_lines: list[str] = []
        qualified_ids = array("q")
        qualified_at = array("d")
        own_ids: list[tuple[int, float]] = []
        top_counts: dict[int, int] = {}
        total_signups = sum(p[2] for p in plan)
        # signup.recorded for a share of the signups; about 40 % of the events are the conversions' own.
        conversion_events = min(sizes.conversions, int(sizes.audit_events * 0.4))
        recorded_share = max(0.0, (sizes.audit_events - conversion_events) * 0.93 / total_signups)
        key_actor = ("api_key", str(key.pk), key.prefix)
        visitor_actor = ("visitor", "", "visitor")

        def event(at: float, program_id: int, actor: tuple[str, str, str], action: str, object_type: str,
                  object_id: int, before: Any, after: Any, reason: str) -> None:  # fmt: skip
            nonlocal event_id
            b = esc(json.dumps(before)) if before is not None else NULL
            a = esc(json.dumps(after)) if after is not None else NULL
            event_lines.append(
                f"{event_id}\t{ts(at)}\t{program_id}\t{actor[0]}\t{actor[1]}\t{actor[2]}\t{action}\t{object_type}\t"
                f"{object_id}\t{b}\t{a}\t{esc(reason)}"
            )
            event_id += 1

        def click(cid: str, program_id: int, amb: Amb, at: float, vis: str, ip: str) -> str:
            """Writes the click; returns its link for COPY (the signup it credits carries it too)."""
            link = amb.link_id if amb.link_id and rng.random() < 0.4 else None
            click_lines.append(
                f"{cid}\t{program_id}\t{amb.id}\t{link if link else NULL}\t{ts(at)}\t{vis}\t{ip}\t"
                f"{rng.choice(AGENTS)}\t{rng.choice(REFERERS)}\tf"
            )
            return str(link) if link else NULL

        with cursor.copy(
            "COPY referrals_signup (id, program_id, email, email_canonical, external_id, ambassador_id, method, "
            "click_id, link_id, status, reason, reason_detail, ip_hash, visitor_id, created_at, wants_price_news) "
            "FROM STDIN"
        ) as copy:
            out = Copier(copy)
            for program_id, n_amb, n_signups, _ in plan:
                people = ambs[program_id]
                # Each ambassador's own subscription: a walk-in a few days before joining (their own spend).
                for amb in people:
                    at = amb.joined - rng.uniform(DAY, 10 * DAY)
                    out.row(
                        f"{signup_id}\t{program_id}\t{amb.email}\t{amb.canonical}\t\t{NULL}\tnone\t{NULL}\t{NULL}\tqualified"
                        f"\t\t\t{hex_bits(rng, 256)}\t{visitor(rng)}\t{ts(at)}\tf"
                    )
                    own_ids.append((signup_id, at))
                    signup_id += 1
                regular = n_signups - n_amb
                for n in range(regular):
                    at = start + (n + rng.random()) / regular * (end - start)
                    joined = max(1, min(n_amb, int((at - t0) / join_span * n_amb)))  # those who had joined by then
                    referred = rng.random() < 0.7
                    amb = people[int(joined * rng.random() ** 2)] if referred else None
                    ip, vis = hex_bits(rng, 256), visitor(rng)
                    status, reason, detail, method = "qualified", "", "", "none"
                    click_id = link_id = NULL
                    external = ""
                    disposable = False
                    r = rng.random()
                    if amb is not None:
                        m = rng.random()
                        method = "code" if m < 0.4 else "cookie" if m < 0.85 else "api" if m < 0.995 else "manual"
                        if r < 0.03:
                            status, reason, detail = "pending_review", "velocity", "6 signups from one address in a day"
                        elif r < 0.045:
                            status, reason, disposable = "pending_review", "disposable_email", True
                        elif r < 0.06:
                            status, reason, detail = "rejected", "self_referral", "Same mailbox as the ambassador"
                        elif r < 0.07:
                            status, reason, detail = "rejected", "reviewed", "Duplicate account confirmed by support"
                        elif r < 0.075:
                            status, reason, disposable = "rejected", "disposable_email", True
                    elif r < 0.01:
                        status, reason, detail = "pending_review", "velocity", "6 signups from one address in a day"
                    elif r < 0.015:
                        status, reason, disposable = "rejected", "disposable_email", True
                    email = address(serial, rng, disposable=disposable)
                    serial += 1
                    if method == "api":
                        external = f"cust-{signup_id}"
                    if amb is not None and method in ("cookie", "api"):
                        cat = max(amb.joined, at - rng.uniform(60, 3 * DAY))
                        cid = hex_bits(rng, 128)
                        link_id = click(cid, program_id, amb, cat, vis, ip)
                        click_id = cid
                        if rng.random() < 0.05:  # the visitor had clicked other ambassadors' links before
                            competing = 0
                            for k in range(rng.randint(1, 2)):
                                other = people[int(joined * rng.random())]
                                before = max(other.joined, cat - (k + 1) * rng.uniform(3600, 2 * DAY))
                                if before < cat and other is not amb:  # someone else, who had joined by then
                                    click(hex_bits(rng, 128), program_id, other, before, vis, ip)
                                    competing += 1
                            first_half = n < regular // 2
                            if (
                                competing
                                and not loaded.competing_signup_id
                                and not first_half
                                and status == "qualified"
                            ):
                                loaded.competing_signup_id = signup_id
                    amb_id_text = str(amb.id) if amb is not None else NULL
                    out.row(
                        f"{signup_id}\t{program_id}\t{email}\t{canonical_mailbox(email)}\t{external}\t{amb_id_text}\t"
                        f"{method}\t{click_id}\t{link_id}\t{status}\t{reason}\t{detail}\t{ip}\t{vis}\t{ts(at)}\t"
                        f"{'t' if r > 0.8 else 'f'}"
                    )
                    if amb is not None:
                        top_counts[amb.id] = top_counts.get(amb.id, 0) + 1
                    if status == "qualified":
                        qualified_ids.append(signup_id)
                        qualified_at.append(at)
                    snapshot = {
                        "ambassador": amb.code if amb else None,
                        "method": method,
                        "status": status,
                        "reason": reason,
                        "click": click_id if click_id != NULL else None,
                    }
                    if method == "manual":
                        auditor = auditors[signup_id % 2]
                        event(at + 3600, program_id, (auditor.type, auditor.id, auditor.label), "signup.overridden",
                              "signup", signup_id, {**snapshot, "ambassador": None, "method": "none"}, snapshot,
                              "The customer gave the ambassador's code on the phone")  # fmt: skip
                    elif reason == "reviewed":
                        auditor = auditors[signup_id % 2]
                        event(at + 7200, program_id, (auditor.type, auditor.id, auditor.label), "signup.reviewed",
                              "signup", signup_id, {**snapshot, "status": "pending_review", "reason": "velocity"},
                              snapshot, detail)  # fmt: skip
                    if signup_id == loaded.competing_signup_id or rng.random() < recorded_share:
                        actor = key_actor if method == "api" else visitor_actor
                        event(at, program_id, actor, "signup.recorded", "signup", signup_id, None, snapshot,
                              detail or ("" if amb is None else f"{method} of {amb.code}"))  # fmt: skip
                    if n > regular - 50 and program_id == program.pk and email.endswith("@gmail.com"):
                        # A recent subscriber, and the same mailbox written without Gmail's dots.
                        loaded.sample_email = email
                        loaded.sample_email_variant = email.replace(".", "", 1)
                    signup_id += 1
            out.flush()
        loaded.counts["signups"] = signup_id - ids["referrals_signup"]
        loaded.seconds["signups"] = time.perf_counter() - t

        # Clicks: those of the signups, then traffic that did not convert (bots included).
        t = time.perf_counter()
        with cursor.copy(
            "COPY referrals_click (id, program_id, ambassador_id, link_id, created_at, visitor_id, ip_hash, "
            "user_agent_family, referer_host, is_bot) FROM STDIN"
        ) as copy:
            out = Copier(copy)
            for line in click_lines:
                out.row(line)
            converted = len(click_lines)
            click_lines.clear()
            for program_id, n_amb, _, n_clicks in plan:
                people = ambs[program_id]
                share = n_clicks / sizes.clicks if sizes.clicks else 0
                filler = max(0, int(n_clicks - converted * share))
                for n in range(filler):
                    at = start + (n + rng.random()) / filler * (end - start)
                    joined = max(1, min(n_amb, int((at - t0) / join_span * n_amb)))  # those who had joined by then
                    amb = people[int(joined * rng.random() ** 2)]
                    bot = rng.random() < 0.04
                    link = amb.link_id if amb.link_id and rng.random() < 0.4 else None
                    out.row(
                        f"{hex_bits(rng, 128)}\t{program_id}\t{amb.id}\t{link if link else NULL}\t{ts(at)}\t"
                        f"{'' if bot else visitor(rng)}\t{hex_bits(rng, 256)}\t"
                        f"{'bot' if bot else rng.choice(AGENTS)}\t{rng.choice(REFERERS)}\t{'t' if bot else 'f'}"
                    )
            out.flush()
            loaded.counts["clicks"] = out.rows
        loaded.seconds["clicks"] = time.perf_counter() - t

        # Conversions: the ambassadors' own purchases, then referees' and walk-ins' (approved after the hold).
        t = time.perf_counter()
        conversion_id = ids["referrals_conversion"]
        hold = 14 * DAY

        def conversions() -> Iterator[str]:
            nonlocal conversion_id
            own_quota = sizes.conversions // 8
            made = 0
            picks: list[tuple[int, float, int]] = []
            for k, (sid, at) in enumerate(own_ids):
                if made >= own_quota:
                    break
                if rng.random() < 0.6:
                    program_id = plan[0][0] if k < plan[0][1] else plan[1][0]
                    for _ in range(rng.randint(1, 3)):
                        picks.append((sid, at, program_id))
                        made += 1
            while len(picks) < sizes.conversions and qualified_ids:
                j = rng.randrange(len(qualified_ids))
                picks.append((qualified_ids[j], qualified_at[j], 0))
            small_first = ids["referrals_signup"] + plan[0][2]
            for sid, at, program_id in picks[: sizes.conversions]:
                program_id = program_id or (plan[1][0] if sid >= small_first else plan[0][0])
                occurred = min(end, at + rng.uniform(600, 20 * DAY))
                approve_after = occurred + hold
                status, approved_at, reversed_at = "pending", NULL, NULL
                r = rng.random()
                if approve_after < end:
                    if r < 0.88:
                        status, approved_at = "approved", ts(approve_after)
                    else:
                        status, reversed_at = "reversed", ts(occurred + rng.uniform(DAY, hold))
                elif r < 0.05:
                    status, reversed_at = "reversed", ts(min(end, occurred + DAY))
                cents = rng.randint(990, 24_900)
                amount = f"{cents // 100}.{cents % 100:02d}"
                if conversion_id - ids["referrals_conversion"] < conversion_events:
                    event(occurred, program_id, key_actor, "conversion.recorded", "conversion", conversion_id, None,
                          {"external_id": f"ORD-{conversion_id}", "amount": amount, "currency": "EUR", "signup": sid},
                          "")  # fmt: skip
                yield (
                    f"{conversion_id}\t{program_id}\t{sid}\tORD-{conversion_id}\t{amount}\tEUR\t{ts(occurred)}\t"
                    f"{ts(approve_after)}\t{status}\t{hex_bits(rng, 256)}\t{ts(occurred)}\t{approved_at}\t{reversed_at}"
                )
                conversion_id += 1

        loaded.counts["conversions"] = copy_lines(
            cursor,
            "referrals_conversion",
            "id, program_id, signup_id, external_id, amount, currency, occurred_at, approve_after, status, "
            "request_hash, created_at, approved_at, reversed_at",
            conversions(),
        )
        # What conversion_record copies from the signup onto the purchase (the analytics read it there).
        cursor.execute(
            "UPDATE referrals_conversion v SET signup_ambassador_id = s.ambassador_id, signup_status = s.status, "
            "signup_created_at = s.created_at FROM referrals_signup s WHERE s.id = v.signup_id"
        )
        loaded.seconds["conversions"] = time.perf_counter() - t

        t = time.perf_counter()
        loaded.counts["audit events"] = copy_lines(
            cursor,
            "core_auditevent",
            "id, created_at, program_id, actor_type, actor_id, actor_label, action, object_type, object_id, "
            "before, after, reason",
            event_lines,
        )
        event_lines.clear()
        loaded.seconds["audit events"] = time.perf_counter() - t

        t = time.perf_counter()
        for statement in rebuild:
            cursor.execute(statement)
        loaded.seconds["indexes and foreign keys rebuilt"] = time.perf_counter() - t

        # Counters as the events would have moved them; the ladder's milestones where the count crossed them.
        t = time.perf_counter()
        cursor.execute(
            """
            INSERT INTO ambassadors_ambassadorcounters
                (ambassador_id, signups, qualified, conversions, converted_amount, updated_at)
            SELECT a.id, coalesce(s.total, 0), coalesce(s.qualified, 0), coalesce(c.n, 0), coalesce(c.amount, 0), now()
            FROM ambassadors_ambassador a
            LEFT JOIN (SELECT ambassador_id, count(*) AS total,
                              count(*) FILTER (WHERE status = 'qualified') AS qualified
                       FROM referrals_signup WHERE ambassador_id IS NOT NULL GROUP BY ambassador_id) s
                   ON s.ambassador_id = a.id
            LEFT JOIN (SELECT s.ambassador_id, count(*) AS n, sum(v.amount) AS amount
                       FROM referrals_conversion v JOIN referrals_signup s ON s.id = v.signup_id
                       WHERE v.status = 'approved' AND s.status = 'qualified' AND s.ambassador_id IS NOT NULL
                       GROUP BY s.ambassador_id) c
                   ON c.ambassador_id = a.id
            WHERE a.program_id = ANY(%(programs)s)
            ON CONFLICT (ambassador_id) DO UPDATE SET signups = excluded.signups, qualified = excluded.qualified,
                conversions = excluded.conversions, converted_amount = excluded.converted_amount
            """,
            {"programs": [p[0] for p in plan]},
        )
        cursor.execute(
            """
            UPDATE ambassadors_programcounters c
            SET signups = s.total, qualified = s.qualified, updated_at = now()
            FROM (SELECT program_id, count(*) AS total, count(*) FILTER (WHERE status = 'qualified') AS qualified
                  FROM referrals_signup WHERE program_id = ANY(%(programs)s) GROUP BY program_id) s
            WHERE c.program_id = s.program_id
            """,
            {"programs": [p[0] for p in plan]},
        )
        cursor.execute(
            """
            INSERT INTO rewards_milestone (tier_id, program_id, occurrence, count_at, price_after, reached_at)
            SELECT %(tier)s, %(program)s, rn / %(step)s, rn,
                   greatest(p.floor_price, p.base_price - (rn / %(step)s) * t.drop_value), q.created_at
            FROM (SELECT created_at, row_number() OVER (ORDER BY created_at, id) AS rn
                  FROM referrals_signup WHERE program_id = %(program)s AND status = 'qualified') q
            JOIN ambassadors_program p ON p.id = %(program)s
            JOIN rewards_rewardtier t ON t.id = %(tier)s
            WHERE q.rn %% %(step)s = 0
            """,
            {"tier": fixture["tier"].pk, "program": program.pk, "step": fixture["step"]},
        )
        loaded.counts["milestones"] = cursor.rowcount
        reset_sequences(cursor)
        loaded.seconds["counters and milestones"] = time.perf_counter() - t

    loaded.top_code = next(a.code for a in ambs[program.pk] if a.id == max(top_counts, key=top_counts.__getitem__))
    loaded.sample_order = f"ORD-{ids['referrals_conversion'] + sizes.conversions // 2}"
    mid = ambs[program.pk][len(ambs[program.pk]) // 2]
    loaded.mid_code, loaded.mid_email = mid.code, mid.email
    say_(f"  loaded in {time.perf_counter() - started:.1f}s")
    return loaded


# --- Measuring the pages ------------------------------------------------------------------------------


@dataclass
class Page:
    label: str
    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    query: str = ""
    baseline: bool = False
    explain: bool = False  # print the plans of the SQL this page sends


@dataclass
class Timing:
    label: str
    path: str
    status: str  # "200", "missing" (no such URL), another status
    ms: list[float] = field(default_factory=list)
    queries: int = 0
    size: int = 0
    sql: list[str] = field(default_factory=list)
    note: str = ""
    sql_ms: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return percentile(self.ms, 50)

    @property
    def p95(self) -> float:
        return percentile(self.ms, 95)


def pages(loaded: Loaded, period: tuple[str, str], since_90: str) -> list[Page]:
    from urllib.parse import urlencode

    start, end = period
    days = urlencode({"start": start, "end": end})
    return [
        Page("/health/ (baseline)", "health", baseline=True),
        Page("program page /p/<slug>/ (baseline)", "program-page", {"slug": SLUG}, baseline=True),
        Page("staff home", "staff-home"),
        Page("staff program", "staff-program", {"slug": SLUG}),
        Page("staff analytics, 90 days", "staff-analytics", {"slug": SLUG}, days),
        Page("staff analytics CSV: funnel, 90 days", "staff-analytics-csv", {"slug": SLUG}, days),
        Page("staff analytics CSV: value, 90 days", "staff-analytics-csv", {"slug": SLUG, "table": "value"}, days),
        Page("audit search, first page", "audit-home", explain=True),
        Page("audit search by e-mail", "audit-home", query=urlencode({"email": loaded.sample_email}), explain=True),
        Page(
            "audit search by e-mail, other spelling",
            "audit-home",
            query=urlencode({"email": loaded.sample_email_variant}),
            explain=True,
        ),
        Page("audit search by e-mail prefix", "audit-home", query=urlencode({"email": "ana.martin.9"}), explain=True),
        Page(
            "audit search by code (top ambassador)",
            "audit-home",
            query=urlencode({"ambassador": loaded.top_code}),
            explain=True,
        ),  # fmt: skip
        Page(
            "audit search by code (ordinary)",
            "audit-home",
            query=urlencode({"ambassador": loaded.mid_code}),
            explain=True,
        ),  # fmt: skip
        Page(
            "audit search by ambassador e-mail",
            "audit-home",
            query=urlencode({"ambassador": loaded.mid_email}),
            explain=True,
        ),  # fmt: skip
        Page(
            "audit search, pending review, 90 days",
            "audit-home",
            query=urlencode({"status": "pending_review", "since": since_90}),
            explain=True,
        ),  # fmt: skip
        Page(
            "audit search, rejected and set by an admin (rare)",
            "audit-home",
            query=urlencode({"status": "rejected", "method": "manual"}),
            explain=True,
        ),  # fmt: skip
        Page("audit conversions, first page", "audit-conversions", explain=True),
        Page(
            "audit conversions by order number",
            "audit-conversions",
            query=urlencode({"external_id": loaded.sample_order}),
            explain=True,
        ),  # fmt: skip
        Page("audit signup (competing clicks)", "audit-signup", {"signup_id": loaded.competing_signup_id}),
        Page("audit review queue", "audit-review", explain=True),
        Page("audit trail, first page", "audit-trail", explain=True),
        Page(
            "audit trail, one signup",
            "audit-trail",
            query=urlencode({"object_type": "signup", "object_id": loaded.competing_signup_id}),
        ),  # fmt: skip
    ]


def resolve(page: Page) -> str | None:
    from django.urls import NoReverseMatch, reverse

    try:
        path = reverse(page.name, kwargs=page.kwargs or None)
    except NoReverseMatch:
        return None
    return f"{path}?{page.query}" if page.query else path


def fetch(client: Any, path: str) -> tuple[int | str, int]:
    """One GET through the client, its body read to the end (a streamed one too): (status, bytes).

    A page that raised is its status and the exception (the client does not raise it: raise_request_exception
    is off, and django.request's traceback is not logged): `500 ValueError: ...`.
    """
    response = client.get(path)
    if response.status_code >= 500 and getattr(response, "exc_info", None):
        exc = response.exc_info[1]
        return f"{response.status_code} {type(exc).__name__}: {str(exc)[:80]}", 0
    size = sum(len(c) for c in response.streaming_content) if response.streaming else len(response.content)
    response.close()
    return response.status_code, size


def time_page(client: Any, page: Page, *, requests: int, warmup: int) -> Timing:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    path = resolve(page)
    if path is None:
        return Timing(page.label, f"({page.name})", "missing")
    t = time.perf_counter()
    status, _ = fetch(client, path)
    first_ms = (time.perf_counter() - t) * 1000
    if not isinstance(status, int):
        return Timing(page.label, path, f"{status} (after {first_ms:.0f} ms)")
    result = Timing(page.label, path, str(status))
    if first_ms > 10 * TARGET_MS:
        # Far over the target: a few requests tell as much, and twenty would take minutes.
        warmup, requests = 1, min(requests, 3)
        result.note = f"{requests} requests only: the first took {first_ms / 1000:.1f} s"
    for _ in range(max(0, warmup - 1)):
        fetch(client, path)
    with CaptureQueriesContext(connection) as captured:
        _, result.size = fetch(client, path)
    result.queries = len(captured.captured_queries)
    result.sql = [q["sql"] for q in captured.captured_queries]
    result.sql_ms = [float(q["time"]) * 1000 for q in captured.captured_queries]
    for _ in range(requests):
        t = time.perf_counter()
        fetch(client, path)
        result.ms.append((time.perf_counter() - t) * 1000)
    return result


def plan_summary(sql: str) -> list[str]:
    """EXPLAIN ANALYZE of one statement, summed up: its top node, the indexes it reads, any sequential scan."""
    import re

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS OFF) " + sql)
        lines = [row[0] for row in cursor.fetchall()]
    top = re.sub(r"\s*\(cost=[^)]*\)", "", lines[0]).strip()
    scans = (r"Index (?:Only )?Scan(?: Backward)? using (\S+)", r"Bitmap Index Scan on (\S+)")
    indexes = sorted({m.group(1) for ln in lines for p in scans if (m := re.search(p, ln))})
    seqs = sorted({m.group(1) for ln in lines for m in [re.search(r"Seq Scan on (\S+)", ln)] if m})
    total = next((ln.strip() for ln in lines if ln.startswith("Execution Time")), "")
    return [
        f"top: {top}",
        f"indexes: {', '.join(indexes) or 'none'}; sequential scans: {', '.join(seqs) or 'none'}; {total}",
    ]


def rss_bytes() -> int:
    import os

    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def stream_export(client: Any, path: str) -> dict[str, float]:
    """A CSV export read through the client chunk by chunk: rows, time, and how far the RSS rose meanwhile."""
    import gc

    gc.collect()
    before = peak = rss_bytes()
    t = time.perf_counter()
    response = client.get(path)
    if response.status_code != 200 or not response.streaming:
        response.close()
        return {"status": response.status_code, "streamed": float(response.streaming)}
    lines = 0
    for n, chunk in enumerate(response.streaming_content):
        lines += chunk.count(b"\n")
        if n % 256 == 0:
            peak = max(peak, rss_bytes())
    response.close()
    seconds = time.perf_counter() - t
    peak = max(peak, rss_bytes())
    rows = max(0, lines - 1)  # the header
    import resource

    return {
        "status": 200,
        "rows": rows,
        "seconds": seconds,
        "rows_s": rows / seconds,
        "growth_mb": (peak - before) / 2**20,
        "rss_mb": before / 2**20,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # kilobytes on Linux
    }


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Sizes()
    p.add_argument("--ambassadors", type=int, default=d.ambassadors)
    p.add_argument("--signups", type=int, default=d.signups)
    p.add_argument("--clicks", type=int, default=d.clicks)
    p.add_argument("--conversions", type=int, default=d.conversions)
    p.add_argument("--audit-events", type=int, default=d.audit_events)
    p.add_argument("--days", type=int, default=d.days, help="the period the signups and clicks spread over")
    p.add_argument("--small", action="store_true", help=f"a quick check: the sizes of the test ({SMALL})")
    p.add_argument("--requests", type=int, default=20, help="timed requests per page, after the warm-up")
    p.add_argument("--warmup", type=int, default=3, help="untimed requests per page first")
    p.add_argument("--reuse", action="store_true", help="measure the database a previous run loaded (no load)")
    p.add_argument("--no-exports", action="store_true", help="skip the full CSV exports")
    p.add_argument("--only", default="", help="measure only the pages whose label contains this text")
    add_store_options(p, db="parrain_bench_consoles")
    return p.parse_args()


def fixture_file(db: str) -> Path:
    return Path(__file__).resolve().parent / "results" / f"consoles-{db}.json"


def main() -> int:  # pragma: no cover - the benchmark itself; the loader is tested in tests/test_bench_consoles.py
    args = parse_args()
    out = bench_begin(args, title="Parrain staff and audit consoles on a million signups", name="consoles")
    sizes = (
        SMALL
        if args.small
        else Sizes(args.ambassadors, args.signups, args.clicks, args.conversions, args.audit_events, args.days)
    )
    env = parrain_env(pg=args.pg, db=args.db, redis_url=args.redis)
    env["ALLOWED_HOSTS"] = "127.0.0.1,testserver"  # django.test.Client's host
    # Pages link their stylesheets and scripts through the manifest, as a deployment does (DEBUG off).
    manage(env, "collectstatic", "--noinput", log=out / "setup.log")
    if args.reuse:
        say(f"reusing the database {args.db} a previous run loaded")
        # Loaded by an older checkout, maybe: its schema brought up to this one (the roll-ups' own tables).
        manage(env, "migrate", "--noinput", log=out / "setup.log")
        django_in_process(env)
        loaded = Loaded(**json.loads(fixture_file(args.db).read_text()))
    else:
        say(f"setting up: fresh database {args.db}, migrate, then COPY: {sizes}")
        t = time.perf_counter()
        fresh_database(env, pg=args.pg, db=args.db, log=out / "setup.log")
        say(f"  migrated in {time.perf_counter() - t:.1f}s")
        celery_purge(env)
        django_in_process(env)
        # The click table is partitioned by month on PostgreSQL: the months the data goes back to, made first, so
        # that no row lands in the default partition.
        from referrals.services.partitions import click_partitions_ensure

        click_partitions_ensure(since=(datetime.now(UTC) - timedelta(days=sizes.days + 1)).date())
        t = time.perf_counter()
        loaded = load(sizes, report=say)
        from django.db import connection

        with connection.cursor() as cursor:
            t2 = time.perf_counter()
            cursor.execute("VACUUM ANALYZE")
            loaded.seconds["VACUUM ANALYZE"] = time.perf_counter() - t2
        total = time.perf_counter() - t
        celery_purge(env)  # the tiers' recalculation messages: no worker runs here
        fixture_file(args.db).parent.mkdir(parents=True, exist_ok=True)
        fixture_file(args.db).write_text(json.dumps(loaded.__dict__))
        say(table([[k, f"{v:,}"] for k, v in loaded.counts.items()], ["loaded", "rows"]))
        say("  " + ", ".join(f"{k} {v:.1f}s" for k, v in loaded.seconds.items()))
        say(f"  load total (services, COPY, rebuild, counters, VACUUM ANALYZE): {total:.1f}s")
    # The analytics read the days that are over from their daily roll-ups, as the periodic task
    # referrals.rollup_analytics keeps them in production (idempotent: nothing to do on a reused database).
    from django.db import connection as db

    from referrals.services.rollups import rollup_due

    t = time.perf_counter()
    rolled = rollup_due()
    with db.cursor() as cursor:
        # As autovacuum leaves them after a roll-up run: statistics, and the visibility map the index-only
        # scans of the roll-ups need.
        cursor.execute(
            "VACUUM ANALYZE referrals_dailyclicks, referrals_dailysignups, referrals_rollupday,"
            " referrals_weeklyclicks, referrals_weeklysignups, referrals_rollupweek"
        )
    say(
        f"  daily and weekly roll-ups (referrals.rollup_analytics): {rolled.days} days and {rolled.weeks} weeks"
        f" rolled up in {time.perf_counter() - t:.1f}s"
    )
    say()

    import warnings

    warnings.filterwarnings("ignore", message="No directory at")
    import logging

    logging.getLogger("django.request").setLevel(logging.CRITICAL)  # a failed page is shown in the table
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from referrals.models import Signup

    admin, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_superuser": True, "is_staff": True, "email": "admin@staff.example.com"}
    )
    client = Client(raise_request_exception=False)  # a page that fails is a status in the table
    client.force_login(admin)
    newest = Signup.objects.filter(program_id=loaded.program_id).order_by("-created_at").first()
    end_day = newest.created_at.date() if newest else datetime.now(UTC).date()
    period = ((end_day - timedelta(days=89)).isoformat(), end_day.isoformat())
    say(f"measuring: {args.requests} requests per page after {args.warmup} warm-up ones, in process "
        f"(django.test.Client, superuser, DEBUG off); target {TARGET_MS:.0f} ms")  # fmt: skip
    results = []
    for page in pages(loaded, period, period[0]):
        if args.only and args.only not in page.label and not page.baseline:
            continue
        result = time_page(client, page, requests=args.requests, warmup=args.warmup)
        results.append((page, result))
        if result.ms:
            say(f"  {page.label}: median {result.median:.1f} ms, {result.queries} queries")
        else:
            say(f"  {page.label}: {result.status}")
    rows = []
    for page, r in results:
        if r.ms:
            verdict = "baseline" if page.baseline else ("ok" if r.p95 < TARGET_MS else "OVER")
            if r.status != "200":
                verdict = f"status {r.status}"
            rows.append([page.label, r.status, f"{r.median:.1f}", f"{r.p95:.1f}", str(r.queries), f"{r.size:,}",
                         "" if page.baseline else f"{TARGET_MS:.0f}", verdict])  # fmt: skip
        else:
            rows.append([page.label, r.status, "-", "-", "-", "-", f"{TARGET_MS:.0f}", "not measured"])
    say()
    text = table(rows, ["page", "status", "median ms", "p95 ms", "queries", "bytes", "target ms", "verdict"])
    say(text)
    for page, r in results:
        if r.note:
            say(f"  {page.label}: {r.note}")
    over = [(page, r) for page, r in results if r.ms and not page.baseline and r.p95 >= TARGET_MS]
    for page, r in over:
        say()
        say(f"over the target: {page.label} ({r.path}), {r.queries} queries, "
            f"{sum(r.sql_ms):.0f} ms of SQL in one request; the slowest statements:")  # fmt: skip
        for ms, sql in sorted(zip(r.sql_ms, r.sql, strict=True), reverse=True)[:6]:
            say(f"  {ms:8.0f} ms  {sql[:170]}...")
    say()
    say("plans of the audit searches (EXPLAIN ANALYZE of each SELECT the page sent on the bulk tables):")
    bulk = ("referrals_signup", "referrals_conversion", "core_auditevent", "referrals_click")
    for page, r in results:
        if not page.explain or not r.sql:
            continue
        say(f"- {page.label} ({r.path})")
        for sql in r.sql:
            if sql.lstrip().upper().startswith("SELECT") and any(t in sql for t in bulk):
                say(f"    {sql[:150]}{'...' if len(sql) > 150 else ''}")
                for line in plan_summary(sql):
                    say(f"      {line}")
    exports = []
    export_failures: list[str] = []
    if not args.no_exports:
        say()
        say("CSV exports, streamed through the client:")
        tenth = (end_day - timedelta(days=max(1, sizes.days // 10) - 1)).isoformat()
        for label, name, query in [
            ("signups, 10 % (last tenth of the period)", "audit-signups-csv", f"since={tenth}"),
            ("signups, all", "audit-signups-csv", ""),
            ("trail, 10 % (last tenth of the period)", "audit-trail-csv", f"since={tenth}"),
            ("trail, all", "audit-trail-csv", ""),
        ]:
            path = resolve(Page(label, name, query=query))
            if path is None:
                say(f"  {label}: missing")
                continue
            e = stream_export(client, path)
            if "rows" not in e:
                say(f"  {label}: status {e['status']:.0f}{'' if e.get('streamed') else ', not streamed'}")
                export_failures.append(label)
                continue
            exports.append([label, f"{e['rows']:,.0f}", f"{e['seconds']:.1f}", f"{e['rows_s']:,.0f}",
                            f"{e['rss_mb']:.0f}", f"{e['growth_mb']:.1f}", f"{e['maxrss_mb']:.0f}"])  # fmt: skip
            say(f"  {label}: {e['rows']:,.0f} rows in {e['seconds']:.1f}s")
        if exports:
            say()
            say(table(exports, ["export", "rows", "seconds", "rows/s", "RSS before MB", "RSS growth MB",
                                "process max RSS MB"]))  # fmt: skip
            say("RSS growth: the highest resident size seen while streaming (sampled every 256 chunks) minus the "
                "size before the request; flat memory means it does not grow with the rows exported.")  # fmt: skip
    (out / "summary.txt").write_text(text + "\n")
    connection.close()
    # Exit 1 when a page failed (not a 200) or an export did not stream; speed is
    # a verdict in the table, not a failure.
    failed = [r.label for _, r in results if r.status != "200"]
    failed += export_failures
    if failed:
        say(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
