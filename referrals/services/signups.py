"""Recording a new subscriber: attribution, screening (self-referral, disposable address, velocity), counters."""

from __future__ import annotations

import hashlib
import logging
from contextlib import nullcontext
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model, Q
from django.utils import timezone

from ambassadors.mailbox import canonical_mailbox, is_disposable
from ambassadors.models import Ambassador, Program, ProgramCounterDelta
from ambassadors.normalise import normalise_email
from ambassadors.services import counters_add
from config import db
from core import clock
from core.actors import Actor
from core.audit import audit_record
from core.errors import InvalidInput
from core.locking import transaction_retry
from core.models import AuditEvent
from core.webhook_events import webhook_events
from referrals.models import Signup
from referrals.services.attribution import attribution_decide, attribution_reason
from referrals.services.clicks import ip_hash
from referrals.services.peppers import ip_hashes
from referrals.signals import counts_changed

VELOCITY_WINDOW = timedelta(hours=24)
logger = logging.getLogger(__name__)


def _velocity_lock(*, program: Program, ip_hashed: str, visitor_id: str) -> None:
    """Serialise the signups from one IP hash, and from one visitor, of a program until this transaction ends.

    _screen counts the recent signups from the same source, then the caller inserts: without this lock,
    sixteen signups from one address arriving at once all count the same few rows before any of them
    inserts, and all qualify past the limit. PostgreSQL releases transaction-level advisory locks at
    COMMIT or ROLLBACK, so the next one counts the row just committed. The keys are taken in ascending
    order, so two signups sharing one source each (an IP, or a visitor) never wait for each other in a
    cycle. SQLite, the embedded single-machine default, takes no lock here.
    """
    if connection.vendor != "postgresql":
        return
    sources = [("ip", ip_hashed), ("visitor", visitor_id[:36])]
    keys = sorted({_lock_key(f"velocity:{program.pk}:{kind}:{value}") for kind, value in sources if value})
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _lock_key(name: str) -> int:
    # A signed 64-bit key, the same in every process (Python's hash() is salted per process).
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _screen(
    *,
    program: Program,
    email: str,
    ambassador: Ambassador | None,
    referee_user: Any,
    ip_hashed: str,
    visitor_id: str,
    now: datetime,
    ip_matches: list[str] | None = None,
) -> tuple[str, str, str]:
    """(status, reason, detail) for a new signup: self-referral, disposable domain, velocity.

    Call it inside the transaction that inserts the signup, after _velocity_lock.
    """
    # The ambassador's own mailbox however typed: `ana+x@`, Gmail's dots, googlemail.com, a quoted name.
    if ambassador is not None and (
        canonical_mailbox(email) == ambassador.email_canonical
        or (referee_user is not None and getattr(referee_user, "pk", None) == ambassador.user_id)
    ):
        return Signup.Status.REJECTED, Signup.Reason.SELF_REFERRAL, "The referee is the ambassador."
    if is_disposable(email):  # mail.mailinator.com is as throw-away as mailinator.com
        domain = email.rsplit("@", 1)[-1]
        return (
            Signup.Status.PENDING_REVIEW,
            Signup.Reason.DISPOSABLE_EMAIL,
            f"{domain} is a disposable domain.",
        )
    same_source = Q()
    # The address under every pepper still inside the window (referrals.services.peppers): a rotation
    # does not make a returning address look new.
    ip_matches = ip_matches or ([ip_hashed] if ip_hashed else [])
    if ip_matches:
        same_source |= Q(ip_hash__in=ip_matches) if len(ip_matches) > 1 else Q(ip_hash=ip_matches[0])
    if visitor_id:
        same_source |= Q(visitor_id=visitor_id[:36])
    if same_source:
        recent = Signup.objects.filter(same_source, program=program, created_at__gte=now - VELOCITY_WINDOW).count()
        if recent >= program.velocity_limit:
            return (
                Signup.Status.PENDING_REVIEW,
                Signup.Reason.VELOCITY,
                f"{_ordinal(recent + 1)} signup from the same IP address or visitor in 24 hours; "
                f"the limit is {program.velocity_limit}: held for review.",
            )
    return Signup.Status.QUALIFIED, Signup.Reason.NONE, ""


def signup_snapshot(signup: Signup) -> dict[str, Any]:
    return {
        "ambassador": signup.ambassador.code if signup.ambassador_id and signup.ambassador else None,
        "method": signup.method,
        "status": signup.status,
        "reason": signup.reason,
        "click": str(signup.click_id) if signup.click_id else None,
    }


def counts_announce(program_id: int, *ambassador_ids: int | None) -> None:
    counts_changed.send(
        sender=Signup,
        program_id=program_id,
        ambassador_ids=sorted({a for a in ambassador_ids if a is not None}),
    )


def friend_subscribed_enqueue(*, signup_id: int) -> None:
    """After commit, e-mail the ambassador that a friend subscribed (referrals.notifications)."""

    def send() -> None:
        from referrals.tasks import friend_subscribed_notify

        try:
            friend_subscribed_notify.delay(signup_id)
        except Exception:
            logger.warning("friend-subscribed e-mail of signup %s not enqueued", signup_id, exc_info=True)

    transaction.on_commit(send)


@transaction_retry()  # lock order: core.locking (the new signup, then its ambassador's counters)
def signup_record(
    *,
    program: Program,
    email: str,
    actor: Actor,
    external_id: str = "",
    referral_code: str | None = None,
    click_id: str | None = None,
    cookie_click_id: str | None = None,
    referee_ip: str | None = None,
    visitor_id: str = "",
    referee_user: Any = None,
    wants_price_news: bool = False,
) -> tuple[Signup, bool]:
    """Record a subscriber of the program, attributed per design section 2. Returns (signup, created).

    The same e-mail again is the same signup: the first attribution stands.
    `referee_ip` and `visitor_id` are the referee's own, never the address of a server calling the API.
    """
    email = normalise_email(email)
    canonical = canonical_mailbox(email)
    # A mailbox already recorded is answered with its signup, whatever else this call says. It is not
    # looked for first: the INSERT below, under the (program, mailbox) unique constraint, finds it in the
    # same statement that records a new one (the common case), and its IntegrityError leads to it. Only
    # the answers that would refuse the call (a closed program, a code that attributes to no one) look first.
    if program.status == Program.Status.CLOSED:
        existing = _existing_signup(program, canonical)
        if existing is not None:
            return existing, False
        raise InvalidInput("This program is closed.")

    now = timezone.now()
    try:
        attribution = attribution_decide(
            program=program,
            referral_code=referral_code,
            cookie_click_id=cookie_click_id,
            click_id=click_id,
            now=now,
        )
    except InvalidInput:
        existing = _existing_signup(program, canonical)
        if existing is not None:
            return existing, False
        raise
    ip_hashed = ip_hash(referee_ip)
    ip_matches = ip_hashes(referee_ip)
    if attribution.click is not None:
        # The referee's own address and browser, seen when they clicked.
        ip_hashed = ip_hashed or attribution.click.ip_hash
        visitor_id = visitor_id or attribution.click.visitor_id

    def screen() -> tuple[dict[str, Any], Signup, dict[str, Any], str, int]:
        """Screen the new signup (after _velocity_lock when it has a source): its fields, the unsaved signup,
        its audit snapshot and reason, and whether it counts."""
        status, reason, detail = _screen(
            program=program,
            email=email,
            ambassador=attribution.ambassador,
            referee_user=referee_user,
            ip_hashed=ip_hashed,
            visitor_id=visitor_id,
            now=now,
            ip_matches=ip_matches,
        )
        fields: dict[str, Any] = {
            "program": program,
            "email": email,
            "email_canonical": canonical,
            "external_id": external_id,
            "ambassador": attribution.ambassador,
            "method": attribution.method,
            "click": attribution.click,
            "link_id": attribution.click.link_id if attribution.click is not None else None,
            "status": status,
            "reason": reason,
            "reason_detail": detail,
            "ip_hash": ip_hashed,
            "visitor_id": visitor_id[:36],
            "created_at": now,
            "wants_price_news": wants_price_news,
        }
        signup = Signup(**fields)
        audit_reason = detail or attribution_reason(attribution, program)
        return fields, signup, signup_snapshot(signup), audit_reason, int(status == Signup.Status.QUALIFIED)

    def in_one_statement(after: dict[str, Any]) -> bool:
        """Credited to nobody and announcing no webhook: the signup, its audit event and its counter delta are
        one statement (PostgreSQL; _record_unattributed). Else the ORM writes them, and the counters."""
        return (
            connection.vendor == "postgresql"
            and attribution.ambassador is None
            and not webhook_events(action="signup.recorded", before=None, after=after)
        )

    try:
        screening = None
        if not (ip_hashed or visitor_id):
            # From no known source: no velocity to count, so no lock to take and nothing read by the screening.
            # In one statement, that is a transaction of its own: no BEGIN and COMMIT round trips (a savepoint
            # inside a caller's transaction, so that an existing mailbox leaves that transaction usable).
            screening = screen()
            _fields, signup, after, audit_reason, qualified = screening
            if in_one_statement(after):
                with transaction.atomic() if connection.in_atomic_block else nullcontext():
                    _record_unattributed(signup, actor=actor, after=after, reason=audit_reason, qualified=qualified)
                counts_announce(program.pk)
                return signup, True
        with transaction.atomic():
            _velocity_lock(program=program, ip_hashed=ip_hashed, visitor_id=visitor_id)
            fields, signup, after, audit_reason, qualified = screening or screen()
            if in_one_statement(after):
                _record_unattributed(signup, actor=actor, after=after, reason=audit_reason, qualified=qualified)
                counts_announce(program.pk)
                return signup, True
            signup = Signup.objects.create(**fields)
            audit_record(
                actor=actor,
                action="signup.recorded",
                object_type="signup",
                object_id=signup.pk,
                program_id=program.pk,
                after=after,
                reason=audit_reason,
            )
            # Last before COMMIT, so the one lock a signup takes (its ambassador's counters row, when it
            # has one) is held for the commit only. The program's count is a row of its own, folded in
            # by the recalculation this signup enqueues: the signups of a launch never wait for each other.
            counters_add(
                program_id=program.pk,
                ambassador_id=signup.ambassador_id,
                signups=1,
                qualified=qualified,
            )
            counts_announce(program.pk, signup.ambassador_id)
            if qualified and signup.ambassador_id:
                friend_subscribed_enqueue(signup_id=signup.pk)
    except IntegrityError:
        # The mailbox was recorded before, or by another request at the same moment: theirs stands, and
        # this attempt (its row, audit event, counters and tasks) was rolled back whole. Else the external
        # id is another signup's.
        existing = _existing_signup(program, canonical)
        if existing is not None:
            return existing, False
        if external_id and Signup.objects.filter(program=program, external_id=external_id).exists():
            raise InvalidInput("Another signup already has this external id.", field="external_id") from None
        raise
    return signup, True


def _insert_fields(model: type[Model]) -> list[Field[Any, Any]]:
    """The fields the ORM's INSERT of a new `model` row sends: every concrete one but the auto key."""
    meta = model._meta
    return [field for field in meta.local_concrete_fields if field is not meta.auto_field]


def _insert_values(obj: Model, fields: list[Field[Any, Any]], conn: BaseDatabaseWrapper) -> list[Any]:
    """The values the ORM's INSERT of `obj` would send for these fields."""
    return [field.get_db_prep_save(field.pre_save(obj, True), conn) for field in fields]


@lru_cache(maxsize=4)
def _unattributed_statement(
    alias: str,
) -> tuple[str, list[Field[Any, Any]], list[Field[Any, Any]], list[Field[Any, Any]]]:
    """The statement of _record_unattributed and the fields whose values it takes, in order: built once per
    database (the text is the same on every call, so psycopg prepares it once per connection)."""
    quote = connections[alias].ops.quote_name
    signup_fields = _insert_fields(Signup)
    event_fields = _insert_fields(AuditEvent)
    delta_fields = _insert_fields(ProgramCounterDelta)
    pk = quote(Signup._meta.pk.column)
    object_id = AuditEvent._meta.get_field("object_id")
    event_places = [f"(SELECT {pk}::text FROM s)" if field is object_id else "%s" for field in event_fields]  # noqa: S608 (a column name)

    def columns(fields: list[Field[Any, Any]]) -> str:
        return ", ".join(quote(field.column) for field in fields)

    def places(count: int) -> str:
        return ", ".join(["%s"] * count)

    sql = (
        f"WITH s AS (INSERT INTO {quote(Signup._meta.db_table)} ({columns(signup_fields)}) "  # noqa: S608 (names from the models)
        f"VALUES ({places(len(signup_fields))}) RETURNING {pk}), "
        f"a AS (INSERT INTO {quote(AuditEvent._meta.db_table)} ({columns(event_fields)}) "
        f"VALUES ({', '.join(event_places)})), "
        f"d AS (INSERT INTO {quote(ProgramCounterDelta._meta.db_table)} ({columns(delta_fields)}) "
        f"VALUES ({places(len(delta_fields))})) "
        f"SELECT {pk} FROM s"
    )
    return sql, signup_fields, [field for field in event_fields if field is not object_id], delta_fields


def _record_unattributed(signup: Signup, *, actor: Actor, after: dict[str, Any], reason: str, qualified: int) -> None:
    """The signup, its audit event and the program's counter delta, as one statement (PostgreSQL).

    What `signup.save()`, `audit_record()` and `counters_add()` write for a signup credited to nobody that
    announces no webhook (the common case: an organic subscriber), with one round trip instead of three,
    and no query built by the ORM three times over. The columns and values are the ORM's own
    (_insert_values), so the rows are the same; the audit event's object is the new signup's id, which the
    statement passes from one INSERT to the next. The statement text is the same on every call: psycopg
    prepares it once per connection. An existing mailbox raises IntegrityError as `save()` does, and the
    whole statement writes nothing. Attributed signups (an ambassador's counters row to lock, maybe a
    webhook and an e-mail to send) take the ORM path of signup_record.
    """
    event = AuditEvent(
        created_at=clock.now(),
        program_id=signup.program_id,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_label=actor.label[:255],
        action="signup.recorded",
        object_type="signup",
        object_id="",
        before=None,
        after=after,
        reason=reason,
    )
    delta = ProgramCounterDelta(program_id=signup.program_id, signups=1, qualified=qualified)
    conn = connections[DEFAULT_DB_ALIAS]  # one lookup: each attribute read through `connection` costs one
    sql, signup_fields, event_fields, delta_fields = _unattributed_statement(conn.alias)
    values = [
        *_insert_values(signup, signup_fields, conn),
        *_insert_values(event, event_fields, conn),
        *_insert_values(delta, delta_fields, conn),
    ]
    row = db.fetch_one(sql, values)
    assert row is not None
    signup.pk = row[0]
    signup._state.adding = False
    signup._state.db = conn.alias


def _existing_signup(program: Program, canonical: str) -> Signup | None:
    return Signup.objects.filter(program=program, email_canonical=canonical).select_related("ambassador").first()
