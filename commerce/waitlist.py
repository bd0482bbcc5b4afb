"""Waitlists (a prelaunch): every subscriber of a program has a place in line, and each friend they bring who
counts moves them up `places_per_referral` places.

Positions are never stored: one query computes them from the signups at read time, so they cannot drift,
and everyone reading at one moment sees the same line. A subscriber's score is their signup order (their
rank among all the program's signups, by time then id) minus `places_per_referral` times their qualified
referrals as an ambassador (same mailbox); the line is ordered by score, ties broken by signup time then
id, and numbered 1..n with no gap. A rejected or held (`pending_review`) referral moves nobody; a rejected
subscriber is not in line; an admitted one has left it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import connection, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from ambassadors.models import Ambassador, Program
from commerce.models import WaitlistAdmission, WaitlistSettings
from core import clock
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, InvalidInput
from core.notifications import email_render, recipient_language, send_once
from referrals.models import Signup

# The most a staff member admits in one go: the admission and its audit event stay one modest transaction.
ADMIT_MAX = 1000
# A signup younger than this is left for the next sweep: a transaction that took an earlier id may not
# have committed yet, and the sweep must not step over it.
NOTIFY_GRACE = timedelta(seconds=60)
NOTIFY_BATCH = 500
_STATUS_SALT = "parrain.waitlist.status"


@dataclass(frozen=True)
class WaitlistLine:
    position: int  # 1 is next in line
    signup_id: int
    email: str
    created_at: datetime
    referrals: int  # qualified friends they brought
    signup_order: int  # their rank among all the program's signups
    score: int  # signup_order - places_per_referral * referrals
    total: int  # how many are in line

    @property
    def ahead(self) -> int:
        return self.position - 1


def _sql(*, one: bool, limited: bool) -> str:
    """The line's query. Three forms of one computation: `one` (a subscriber's place), `limited` (a page of
    the line), neither (the whole line, streamed).

    Written for 100,000 subscribers and more (bench/waitlist.py): the rows numbered and sorted are narrow
    (ids, times, numbers: no e-mail address, which a page or a place looks up for its own rows only, by
    primary key), a referrer is found by the unique (program, mailbox) index once per ambassador instead of
    joining every signup on its mailbox, and a single place is counted (how many are ahead of it) instead
    of numbering the whole line. Numbering and counting order by the same (score, created_at, id), a total
    order, so both give every subscriber the same place: a permutation of 1..n, no gap, no tie.
    """
    # Table names from the models: the query runs alike on PostgreSQL and SQLite (window functions).
    signup, ambassador = Signup._meta.db_table, Ambassador._meta.db_table
    admission = WaitlistAdmission._meta.db_table
    streamed = not one and not limited
    common = f"""
        WITH referrers AS (
            SELECT r.ambassador_id, COUNT(*) AS n FROM {signup} r
            WHERE r.program_id = %s AND r.status = %s AND r.ambassador_id IS NOT NULL
            GROUP BY r.ambassador_id
        ), referred AS (
            -- The subscription of each referrer (same mailbox), found by the unique index.
            SELECT (SELECT s.id FROM {signup} s
                    WHERE s.program_id = a.program_id AND s.email_canonical = a.email_canonical) AS signup_id,
                   f.n
            FROM referrers f JOIN {ambassador} a ON a.id = f.ambassador_id
            WHERE a.program_id = %s
        ), ordered AS (
            SELECT s.id, {"s.email, " if streamed else ""}s.created_at, s.status,
                   ROW_NUMBER() OVER (ORDER BY s.created_at, s.id) AS signup_order
            FROM {signup} s WHERE s.program_id = %s
        ), queued AS (
            SELECT o.id, {"o.email, " if streamed else ""}o.created_at, o.signup_order,
                   COALESCE(f.n, 0) AS referrals, o.signup_order - %s * COALESCE(f.n, 0) AS score
            FROM ordered o LEFT JOIN referred f ON f.signup_id = o.id
            WHERE o.status <> %s AND NOT EXISTS (SELECT 1 FROM {admission} w WHERE w.signup_id = o.id)
        )"""  # noqa: S608 - table names come from the models, every value is a parameter
    email = f"(SELECT e.email FROM {signup} e WHERE e.id = {{0}}.id)"  # noqa: S608 - the model's table
    if one:
        # Its place is one more than the number ahead of it.
        return f"""{common}, target AS (SELECT t.* FROM queued t WHERE t.id = %s)
        SELECT 1 + (SELECT COALESCE(SUM(CASE WHEN (q.score, q.created_at, q.id) < (t.score, t.created_at, t.id)
                                        THEN 1 ELSE 0 END), 0) FROM queued q) AS position,
               t.id, {email.format("t")}, t.created_at, t.referrals, t.signup_order, t.score,
               (SELECT COUNT(*) FROM queued) AS total
        FROM target t
        """  # noqa: S608 - table names come from the models, every value is a parameter
    if streamed:  # the whole line: numbered by the database
        return f"""{common}
        SELECT ROW_NUMBER() OVER (ORDER BY q.score, q.created_at, q.id) AS position, q.id, q.email, q.created_at,
               q.referrals, q.signup_order, q.score, COUNT(*) OVER () AS total
        FROM queued q ORDER BY position
        """  # noqa: S608
    # A page: the first `after + limit` by the line's order (a bounded sort, not the whole line), numbered
    # from `after + 1`; the total counted beside it.
    return f"""{common}, args AS (SELECT %s AS after, %s AS size), page AS (
            SELECT q.* FROM queued q ORDER BY q.score, q.created_at, q.id
            LIMIT (SELECT size FROM args) OFFSET (SELECT after FROM args)
        )
        SELECT (SELECT after FROM args) + ROW_NUMBER() OVER (ORDER BY p.score, p.created_at, p.id) AS position,
               p.id, {email.format("p")}, p.created_at, p.referrals, p.signup_order, p.score,
               (SELECT COUNT(*) FROM queued) AS total
        FROM page p ORDER BY position
    """  # noqa: S608


def _params(program: Program, places: int, after: int) -> list[Any]:
    """The query's parameters: the line's, then `after` (a page's; a single place's signup id; the whole
    line takes none)."""
    return [program.pk, Signup.Status.QUALIFIED, program.pk, program.pk, places, Signup.Status.REJECTED, after]


@contextmanager
def _line_cursor(*, chunked: bool = False) -> Iterator[Any]:
    """A cursor for the line's query, in a transaction where PostgreSQL may not plan nested loops.

    Every step of the query is a scan, a sort or a hash join whatever the planner believes; with missing or
    stale statistics (right after a launch's burst of signups) it believed each side held one row, looped
    over the whole program's signups once per subscriber, and took minutes for 20,000 of them. The setting
    is LOCAL: it ends with this transaction.
    """
    with transaction.atomic():
        with connection.cursor() as setup:
            if connection.vendor == "postgresql":
                # For this transaction only (is_local): nested loops off (above); the line's sort, narrow
                # rows of every subscriber, in memory rather than temporary files; and no JIT: the costs
                # the first setting inflates passed jit_above_cost, and compiling the query to machine code
                # took over a second, for a query that runs in a fraction of that.
                setup.execute(
                    "SELECT set_config('enable_nestloop', 'off', true), set_config('work_mem', '32MB', true),"
                    " set_config('jit', 'off', true)"
                )
        with connection.chunked_cursor() if chunked else connection.cursor() as cursor:
            yield cursor


def _line(row: tuple[Any, ...]) -> WaitlistLine:
    position, signup_id, email, created_at, referrals, order, score, total = row
    if isinstance(created_at, str):  # SQLite hands a raw cursor its text
        created_at = parse_datetime(created_at)
    return WaitlistLine(
        position=int(position),
        signup_id=int(signup_id),
        email=email,
        created_at=created_at,
        referrals=int(referrals),
        signup_order=int(order),
        score=int(score),
        total=int(total),
    )


def waitlist_settings_of(program: Program) -> WaitlistSettings:
    """The program's settings (not saved when it has none: a waitlist off, 10 places per referral)."""
    found = WaitlistSettings.objects.filter(program=program).first()
    return found if found is not None else WaitlistSettings(program=program)


def waitlist_lines(
    program: Program, *, places: int | None = None, after: int = 0, limit: int = 50
) -> list[WaitlistLine]:
    """The line from position `after + 1`, at most `limit` of them: one query."""
    if places is None:
        places = waitlist_settings_of(program).places_per_referral
    with _line_cursor() as cursor:
        cursor.execute(_sql(one=False, limited=True), [*_params(program, places, after), limit])
        return [_line(row) for row in cursor.fetchall()]


def waitlist_stream(program: Program, *, places: int | None = None) -> Iterator[WaitlistLine]:
    """The whole line, in order, from one query read in chunks (a server-side cursor on PostgreSQL): what
    the CSV export writes as it goes. One statement, so one consistent line, however long."""
    if places is None:
        places = waitlist_settings_of(program).places_per_referral
    with _line_cursor(chunked=True) as cursor:
        cursor.execute(_sql(one=False, limited=False), _params(program, places, 0)[:-1])
        while rows := cursor.fetchmany(2000):
            yield from (_line(row) for row in rows)


def waitlist_position(signup: Signup, *, places: int | None = None) -> WaitlistLine | None:
    """One subscriber's place (None: not in line: rejected, admitted already). One query."""
    if places is None:
        places = waitlist_settings_of(signup.program).places_per_referral
    with _line_cursor() as cursor:
        cursor.execute(_sql(one=True, limited=False), _params(signup.program, places, signup.pk))
        row = cursor.fetchone()
    return _line(row) if row else None


def waitlist_position_of_ambassador(ambassador: Ambassador) -> WaitlistLine | None:
    """An ambassador's place in their program's line, through their own subscription (same mailbox); None
    when the program runs no waitlist or they never subscribed."""
    config = WaitlistSettings.objects.filter(program_id=ambassador.program_id, enabled=True).first()
    if config is None:
        return None
    signup = (
        Signup.objects.select_related("program")
        .filter(program_id=ambassador.program_id, email_canonical=ambassador.email_canonical)
        .first()
    )
    return None if signup is None else waitlist_position(signup, places=config.places_per_referral)


def waitlist_positions_of_ambassadors(ambassadors: list[Ambassador]) -> dict[int, tuple[WaitlistLine, int]]:
    """Each ambassador's place in their program's line and the places a referral is worth, by ambassador id,
    for those whose program runs a waitlist and who subscribed to it (same mailbox). Expects each
    ambassador's program with its `waitlist` settings loaded (select_related("program__waitlist")): no query
    when none runs a waitlist; else one for their subscriptions, and one place each (waitlist_position)."""
    configs: dict[int, WaitlistSettings] = {}
    for ambassador in ambassadors:
        config = _loaded_waitlist(ambassador.program)
        if config is not None and config.enabled:
            configs[ambassador.pk] = config
    if not configs:
        return {}
    wanted = [a for a in ambassadors if a.pk in configs]
    mailboxes = Q()
    for ambassador in wanted:
        mailboxes |= Q(program_id=ambassador.program_id, email_canonical=ambassador.email_canonical)
    subscriptions = {(s.program_id, s.email_canonical): s for s in Signup.objects.filter(mailboxes)}
    found = {}
    for ambassador in wanted:
        signup = subscriptions.get((ambassador.program_id, ambassador.email_canonical))
        if signup is None:
            continue
        signup.program = ambassador.program
        places = configs[ambassador.pk].places_per_referral
        line = waitlist_position(signup, places=places)
        if line is not None:
            found[ambassador.pk] = (line, places)
    return found


def _loaded_waitlist(program: Program) -> WaitlistSettings | None:
    try:
        return program.waitlist  # type: ignore[no-any-return]
    except WaitlistSettings.DoesNotExist:
        return None


# --- Staff: settings and admissions --------------------------------------------------------------------


def waitlist_configure(*, program: Program, actor: Actor, enabled: bool, places_per_referral: int) -> WaitlistSettings:
    if not 0 <= places_per_referral <= 1_000_000:
        raise InvalidInput("Between 0 and 1,000,000 places per referral.", field="places_per_referral")
    with transaction.atomic():
        config, _created = WaitlistSettings.objects.select_for_update().get_or_create(program=program)
        before = {"enabled": config.enabled, "places_per_referral": config.places_per_referral}
        config.enabled = enabled
        config.places_per_referral = places_per_referral
        config.save(update_fields=["enabled", "places_per_referral", "updated_at"])
        audit_record(
            actor=actor,
            action="waitlist.configured",
            object_type="program",
            object_id=program.pk,
            program_id=program.pk,
            before=before,
            after={"enabled": enabled, "places_per_referral": places_per_referral},
        )
    return config


def waitlist_admit(
    *, program: Program, count: int, actor: Actor, expected_first: int | None = None
) -> list[WaitlistAdmission]:
    """Admit the first `count` in line: each leaves the line with a WaitlistAdmission (once per signup).

    Admissions of one program run one at a time (the settings row is locked), so two staff members
    admitting the top 10 at once admit 20 different people, never one twice. `expected_first` is the
    signup the staff member saw first in line: if it is not first any more (their form was posted twice,
    or someone admitted meanwhile), nothing happens and Conflict says so.
    """
    if not 1 <= count <= ADMIT_MAX:
        raise InvalidInput(f"Admit between 1 and {ADMIT_MAX} at a time.", field="count")
    with transaction.atomic():
        # Serialises admissions of this program: the second waits, then reads the line without the first's.
        config = WaitlistSettings.objects.select_for_update(no_key=True, of=("self",)).filter(program=program).first()
        if config is None or not config.enabled:
            raise InvalidInput("This program does not run a waitlist.")
        lines = waitlist_lines(program, places=config.places_per_referral, limit=count)
        if expected_first is not None and (not lines or lines[0].signup_id != expected_first):
            raise Conflict("The line changed since you saw it (someone was admitted meanwhile): look again.")
        moment = clock.now()
        admissions = WaitlistAdmission.objects.bulk_create(
            [
                WaitlistAdmission(
                    program=program,
                    signup_id=line.signup_id,
                    position=line.position,
                    admitted_at=moment,
                    admitted_by=actor.label or actor.type,
                )
                for line in lines
            ]
        )
        audit_record(
            actor=actor,
            action="waitlist.admitted",
            object_type="program",
            object_id=program.pk,
            program_id=program.pk,
            after={"count": len(lines), "signup_ids": [line.signup_id for line in lines]},
        )
    return admissions


# --- The subscriber's status page and the "your place in line" e-mail ------------------------------------


def waitlist_status_token(signup: Signup) -> str:
    """The key of a subscriber's status page, in the e-mail they get: it shows their place, nothing else."""
    return signing.dumps({"s": signup.pk, "p": signup.program_id}, salt=_STATUS_SALT)


def waitlist_status_signup(*, token: str, program: Program) -> Signup | None:
    try:
        payload: Any = signing.loads(token, salt=_STATUS_SALT)
    except signing.BadSignature:
        return None
    if not (isinstance(payload, dict) and payload.get("p") == program.pk and isinstance(payload.get("s"), int)):
        return None
    return Signup.objects.select_related("program").filter(pk=payload["s"], program=program).first()


def waitlist_status_url(signup: Signup) -> str:
    path = reverse(
        "waitlist-status", kwargs={"slug": signup.program.slug, "waitlist_token": waitlist_status_token(signup)}
    )
    return settings.PARRAIN_BASE_URL.rstrip("/") + path


def waitlist_place_send(*, signup: Signup, places: int) -> bool:
    """E-mail a subscriber their place in line, once (core.notifications' marker). True if it went now."""
    line = waitlist_position(signup, places=places)
    if line is None:
        return False
    message = email_render(
        "waitlist_place",
        {
            "program": signup.program,
            "position": line.position,
            "ahead": line.ahead,
            "places": places,
            "status_url": waitlist_status_url(signup),
        },
        to=signup.email,
        language=recipient_language(None),
    )
    return send_once(event_key=f"waitlist.place:signup:{signup.pk}", recipient=signup.email_canonical, message=message)


def waitlist_notify_due() -> int:
    """Send "your place in line" to the subscribers of running waitlists who have not had it: each sweep
    resumes after the last signup it handled. Safe to run twice (each e-mail is claimed once). Returns
    how many went."""
    sent = 0
    horizon = clock.now() - NOTIFY_GRACE
    for config in WaitlistSettings.objects.filter(enabled=True).select_related("program"):
        handled = None
        for signup in (
            Signup.objects.select_related("program")
            .filter(program=config.program, pk__gt=config.notified_through_signup_id)
            .order_by("pk")[:NOTIFY_BATCH]
        ):
            if signup.created_at > horizon:
                break  # in order of id: the sweep never steps over a signup it has not handled
            if signup.status != Signup.Status.REJECTED:
                sent += waitlist_place_send(signup=signup, places=config.places_per_referral)
            handled = signup.pk
        if handled is not None:
            # Only forwards: a concurrent sweep that got further is not sent back.
            WaitlistSettings.objects.filter(pk=config.pk, notified_through_signup_id__lt=handled).update(
                notified_through_signup_id=handled
            )
    return sent
