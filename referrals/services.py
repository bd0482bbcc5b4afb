"""Writes of the tracking core: clicks, attributed signups, conversions, overrides and reviews.

Every rule of attribution (design section 2) lives here, once, for the pages, the API and the admin.
Each state change that matters is one transaction that also writes its audit event and moves the
counters; rewards hears of it through `counts_changed` and recalculates after commit.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import crawleruseragents
import ua_parser
from babel.numbers import get_currency_precision, list_currencies
from disposable_email_domains import blocklist as DISPOSABLE_DOMAINS
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.http import url_has_allowed_host_and_scheme

from ambassadors.models import Ambassador, Program
from ambassadors.normalise import code_key, is_well_formed_code, normalise_email
from ambassadors.services import counters_add
from config import db
from config.errors import Conflict, InvalidInput, NotFound
from referrals.audit import Actor, audit_record
from referrals.models import Click, Conversion, ReferralLink, Signup
from referrals.selectors import LINK_RESOLVE_SQL, ReferralTarget, link_resolve, link_resolve_params, referral_target
from referrals.signals import counts_changed

VELOCITY_WINDOW = timedelta(hours=24)
MAX_AMOUNT = Decimal("1000000000")  # a billion in one purchase is a typo or an attack
KNOWN_CURRENCIES = frozenset(list_currencies())


# --- Clicks ------------------------------------------------------------------------------------------


def ip_hash(ip: str | None) -> str:
    """Keyed hash of an IP: repeats can be counted, the address cannot be recovered."""
    if not ip:
        return ""
    return salted_hmac("parrain.ip", ip, algorithm="sha256").hexdigest()


@lru_cache(maxsize=4096)
def classify_user_agent(user_agent: str) -> tuple[str, bool]:
    """(family, is_bot). Cached: the same few browsers make most of the traffic."""
    if not user_agent.strip():
        return "", True
    family = ua_parser.parse_user_agent(user_agent)
    name = family.family if family else "Other"
    return name[:64], crawleruseragents.is_crawler(user_agent)


class RecordedClick(NamedTuple):
    id: uuid.UUID
    is_bot: bool


# What a click holds of its own; its program, ambassador and link come from the link's lookup.
_CLICK_OWN_FIELDS = ("id", "created_at", "visitor_id", "ip_hash", "user_agent_family", "referer_host", "is_bot")
_CLICK_LINK_FIELDS = ("program_id", "ambassador_id", "link_id")


@cache
def _click_sql() -> tuple[str, str]:
    """(the INSERT of a click, the link's lookup and that INSERT in one statement for PostgreSQL).

    Hand-written rather than Click.objects.create(), which would build the INSERT anew on every
    redirect (see config/db.py).
    """
    columns = {f.attname: f.column for f in Click._meta.concrete_fields}
    fields = _CLICK_OWN_FIELDS + _CLICK_LINK_FIELDS
    if set(columns) != set(fields):
        # A field added to Click must be given a value here too, or the redirect would drop it.
        raise ImproperlyConfigured(f"click_record writes {sorted(fields)}, Click has {sorted(columns)}")
    table, names = Click._meta.db_table, ", ".join(columns[f] for f in fields)
    own = ", ".join(["%s"] * len(_CLICK_OWN_FIELDS))
    insert = f"INSERT INTO {table} ({names}) VALUES ({own}, %s, %s, %s)"  # noqa: S608 (names from the model)
    # PostgreSQL runs a data-modifying WITH exactly once: the click is inserted for the row the lookup
    # finds, and for none when the link leads nowhere. The click id is chosen before the statement, so
    # ON CONFLICT makes a retry after a dropped connection harmless (db.fetch_one retries once).
    resolve_and_insert = (
        f"WITH target AS ({LINK_RESOLVE_SQL}), "  # noqa: S608 (fixed strings)
        f"recorded AS (INSERT INTO {table} ({names}) SELECT {own}, {', '.join(_CLICK_LINK_FIELDS)} FROM target "
        f"ON CONFLICT ({columns['id']}) DO NOTHING) "
        "SELECT * FROM target"
    )
    return insert, resolve_and_insert


def click_record(
    *,
    code: str,
    ip: str | None,
    user_agent: str,
    referer: str,
    visitor_id: str,
    is_head: bool = False,
) -> tuple[ReferralTarget, RecordedClick] | None:
    """Records one visit through /r/<code>: where the link leads and the click, or None, and nothing
    written, when it leads nowhere (see `link_resolve`)."""
    params = link_resolve_params(code)
    if params is None:
        return None
    family, is_bot = classify_user_agent(user_agent[:512])
    # Link previews fetch with HEAD or announce themselves; neither is a person clicking.
    is_bot = is_bot or is_head
    click_id = uuid.uuid4()
    own = (
        db.prep_value(Click._meta.pk, click_id),
        db.prep_value(Click._meta.get_field("created_at"), timezone.now()),
        visitor_id[:36],
        ip_hash(ip),
        family,
        (urlsplit(referer).hostname or "")[:255] if referer else "",
        is_bot,
    )
    insert, resolve_and_insert = _click_sql()
    if db.is_postgresql():
        # One round trip instead of two: every shared link lands here (bench/redirect.py).
        row = db.fetch_one(resolve_and_insert, (*params, *own))
        target = referral_target(row) if row else None
    else:
        target = link_resolve(code)
        if target is not None:
            db.execute(insert, (*own, target.program_id, target.ambassador_id, target.link_id))
    if target is None:
        return None
    return target, RecordedClick(click_id, is_bot)


def safe_redirect_target(to: str | None, *, destination_url: str, allowed_hosts: Iterable[str]) -> str | None:
    """`to` when it is an absolute http(s) URL on the destination's host or an allowed host; else None.

    Never an open redirect: scheme-relative, backslash, userinfo and javascript: tricks are refused.
    """
    if not to or len(to) > 2000 or any(ord(c) < 33 or c == "\\" for c in to):
        return None
    try:
        parts = urlsplit(to)
        hostname = parts.hostname
        port = parts.port  # noqa: F841 (raises ValueError on a malformed port)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not hostname or parts.username or parts.password:
        return None
    allowed = {h.strip().lower() for h in allowed_hosts if h.strip()}
    destination_host = urlsplit(destination_url).hostname if destination_url else None
    if destination_host:
        allowed.add(destination_host.lower())
    if hostname.lower() not in allowed:
        return None
    # Django's own check as a second opinion on what browsers would do with the string.
    if not url_has_allowed_host_and_scheme(to, allowed_hosts={parts.netloc}, require_https=False):
        return None
    return to


def with_referral_params(url: str, *, code: str, click_id: str) -> str:
    """The destination with ref and click_id added, keeping the query it had."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("ref", "click_id")]
    query += [("ref", code), ("click_id", click_id)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


# --- Signups -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribution:
    ambassador: Ambassador | None
    method: str
    click: Click | None


def _ambassador_by_code(program: Program, raw_code: str) -> Ambassador:
    if not is_well_formed_code(raw_code):
        raise InvalidInput("A referral code has letters, digits and hyphens only.", field="referral_code")
    key = code_key(raw_code)
    ambassador = Ambassador.objects.filter(program=program, code_key=key).first()
    if ambassador is None:
        link = ReferralLink.objects.select_related("ambassador").filter(code_key=key).first()
        if link is not None and link.ambassador.program_id == program.pk:
            ambassador = link.ambassador
    if ambassador is None or not ambassador.is_active:
        raise InvalidInput("No active ambassador has this referral code in this program.", field="referral_code")
    return ambassador


def _click_in_window(program: Program, click_id: str | None, now: datetime) -> Click | None:
    if not click_id:
        return None
    try:
        click = Click.objects.select_related("ambassador").filter(pk=click_id, program=program).first()
    except Exception:  # a malformed UUID raises ValidationError from the field
        return None
    if click is None or click.is_bot or not click.ambassador.is_active:
        return None
    if click.created_at < now - timedelta(days=program.attribution_window_days):
        return None
    return click


def attribution_decide(
    *,
    program: Program,
    referral_code: str | None,
    cookie_click_id: str | None,
    click_id: str | None,
    now: datetime,
) -> Attribution:
    """Design 2.2: a code given with the signup; else the click (cookie, then click_id) inside the window.

    Which click the cookie holds (first or last) is settled when the cookie is set, at the redirect.
    """
    if referral_code:
        return Attribution(_ambassador_by_code(program, referral_code), Signup.Method.CODE, None)
    click = _click_in_window(program, cookie_click_id, now)
    if click is not None:
        return Attribution(click.ambassador, Signup.Method.COOKIE, click)
    click = _click_in_window(program, click_id, now)
    if click is not None:
        click = _first_click_of_visitor(program, click, now)
        return Attribution(click.ambassador, Signup.Method.API, click)
    return Attribution(None, Signup.Method.NONE, None)


def _first_click_of_visitor(program: Program, click: Click, now: datetime) -> Click:
    """Under first click, the visitor's earliest live click; else the one given.

    An integration passes the click_id of the URL the visitor landed on last; no cookie settled it.
    """
    if program.attribution_model != Program.AttributionModel.FIRST_CLICK or not click.visitor_id:
        return click
    first = (
        Click.objects.select_related("ambassador")
        .filter(
            program=program,
            visitor_id=click.visitor_id,
            is_bot=False,
            ambassador__is_active=True,
            created_at__gte=now - timedelta(days=program.attribution_window_days),
            created_at__lte=click.created_at,
        )
        .order_by("created_at")
        .first()
    )
    return first or click


def _screen(
    *,
    program: Program,
    email: str,
    ambassador: Ambassador | None,
    referee_user: Any,
    ip_hashed: str,
    visitor_id: str,
    now: datetime,
) -> tuple[str, str, str]:
    """(status, reason, detail) for a new signup: self-referral, disposable domain, velocity."""
    if ambassador is not None and (
        email == ambassador.email
        or (referee_user is not None and getattr(referee_user, "pk", None) == ambassador.user_id)
    ):
        return Signup.Status.REJECTED, Signup.Reason.SELF_REFERRAL, "The referee is the ambassador."
    domain = email.rsplit("@", 1)[-1]
    if domain in DISPOSABLE_DOMAINS:
        return (
            Signup.Status.PENDING_REVIEW,
            Signup.Reason.DISPOSABLE_EMAIL,
            f"{domain} is a disposable domain.",
        )
    same_source = Q()
    if ip_hashed:
        same_source |= Q(ip_hash=ip_hashed)
    if visitor_id:
        same_source |= Q(visitor_id=visitor_id)
    if same_source:
        recent = Signup.objects.filter(same_source, program=program, created_at__gte=now - VELOCITY_WINDOW).count()
        if recent >= program.velocity_limit:
            return (
                Signup.Status.PENDING_REVIEW,
                Signup.Reason.VELOCITY,
                f"{recent} signups from the same address or visitor in 24 hours (limit {program.velocity_limit}).",
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


def _contribution(signup: Signup) -> tuple[int, Decimal]:
    """Approved conversions (count, amount) this signup brings its ambassador while it qualifies."""
    if signup.status != Signup.Status.QUALIFIED or signup.ambassador_id is None:
        return 0, Decimal("0")
    approved = list(signup.conversions.filter(status=Conversion.Status.APPROVED).values_list("amount", flat=True))
    return len(approved), sum(approved, Decimal("0"))


def _announce(program_id: int, *ambassador_ids: int | None) -> None:
    counts_changed.send(
        sender=Signup,
        program_id=program_id,
        ambassador_ids=sorted({a for a in ambassador_ids if a is not None}),
    )


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
) -> tuple[Signup, bool]:
    """Record a subscriber of the program, attributed per design section 2. Returns (signup, created).

    The same e-mail again is the same signup: the first attribution stands.
    `referee_ip` and `visitor_id` are the referee's own, never the address of a server calling the API.
    """
    email = normalise_email(email)
    existing = Signup.objects.filter(program=program, email=email).select_related("ambassador").first()
    if existing is not None:
        return existing, False
    if program.status == Program.Status.CLOSED:
        raise InvalidInput("This program is closed.")

    now = timezone.now()
    attribution = attribution_decide(
        program=program,
        referral_code=referral_code,
        cookie_click_id=cookie_click_id,
        click_id=click_id,
        now=now,
    )
    ip_hashed = ip_hash(referee_ip)
    if attribution.click is not None:
        # The referee's own address and browser, seen when they clicked.
        ip_hashed = ip_hashed or attribution.click.ip_hash
        visitor_id = visitor_id or attribution.click.visitor_id
    status, reason, detail = _screen(
        program=program,
        email=email,
        ambassador=attribution.ambassador,
        referee_user=referee_user,
        ip_hashed=ip_hashed,
        visitor_id=visitor_id,
        now=now,
    )
    try:
        with transaction.atomic():
            signup = Signup.objects.create(
                program=program,
                email=email,
                external_id=external_id,
                ambassador=attribution.ambassador,
                method=attribution.method,
                click=attribution.click,
                status=status,
                reason=reason,
                reason_detail=detail,
                ip_hash=ip_hashed,
                visitor_id=visitor_id[:36],
                created_at=now,
            )
            qualified = int(status == Signup.Status.QUALIFIED)
            counters_add(
                program_id=program.pk,
                ambassador_id=signup.ambassador_id,
                signups=1,
                qualified=qualified,
            )
            audit_record(
                actor=actor,
                action="signup.recorded",
                object_type="signup",
                object_id=signup.pk,
                program_id=program.pk,
                after=signup_snapshot(signup),
                reason=detail or _attribution_reason(attribution, program),
            )
            _announce(program.pk, signup.ambassador_id)
    except IntegrityError:
        # Another request recorded the same e-mail (or external id) first: theirs stands.
        existing = (
            Signup.objects.filter(Q(email=email) | (Q(external_id=external_id) & ~Q(external_id="")), program=program)
            .select_related("ambassador")
            .first()
        )
        if existing is None:
            raise
        if existing.email != email:
            raise InvalidInput("Another signup already has this external id.", field="external_id") from None
        return existing, False
    return signup, True


def _attribution_reason(attribution: Attribution, program: Program) -> str:
    if attribution.ambassador is None:
        return "No referral code, and no click inside the attribution window."
    if attribution.method == Signup.Method.CODE:
        return f"Referral code {attribution.ambassador.code} given with the signup."
    model = program.get_attribution_model_display().lower()
    click = attribution.click.pk if attribution.click else ""
    return f"Click {click} ({model}) inside the {program.attribution_window_days}-day window."


def _signup_change(
    *,
    signup: Signup,
    actor: Actor,
    action: str,
    reason: str,
    apply: Any,
) -> Signup:
    """Apply a change to a locked signup, moving counters from its old contribution to its new one."""
    if not reason or not reason.strip():
        raise InvalidInput("A reason is required.", field="reason")
    with transaction.atomic():
        # Lock the row: two admins deciding at once must not both move the counters.
        # of=self: PostgreSQL cannot lock the nullable side of the outer join to the ambassador.
        locked = Signup.objects.select_for_update(of=("self",)).select_related("ambassador").get(pk=signup.pk)
        before = signup_snapshot(locked)
        old_ambassador, old_qualified = locked.ambassador_id, int(locked.status == Signup.Status.QUALIFIED)
        old_conv, old_amount = _contribution(locked)
        apply(locked)
        locked.save()
        locked.refresh_from_db()
        new_qualified = int(locked.status == Signup.Status.QUALIFIED)
        new_conv, new_amount = _contribution(locked)
        counters_add(
            program_id=locked.program_id,
            ambassador_id=old_ambassador,
            signups=-1,
            qualified=-old_qualified,
            conversions=-old_conv,
            amount=-old_amount,
        )
        counters_add(
            program_id=locked.program_id,
            ambassador_id=locked.ambassador_id,
            signups=1,
            qualified=new_qualified,
            conversions=new_conv,
            amount=new_amount,
        )
        audit_record(
            actor=actor,
            action=action,
            object_type="signup",
            object_id=locked.pk,
            program_id=locked.program_id,
            before=before,
            after=signup_snapshot(locked),
            reason=reason.strip(),
        )
        _announce(locked.program_id, old_ambassador, locked.ambassador_id)
    return locked


def signup_override(*, signup: Signup, ambassador: Ambassador | None, reason: str, actor: Actor) -> Signup:
    """An admin reassigns (or unassigns) a signup; the reason is mandatory; both ambassadors recount."""
    if ambassador is not None and ambassador.program_id != signup.program_id:
        raise InvalidInput("That ambassador belongs to another program.", field="ambassador_code")

    def apply(locked: Signup) -> None:
        locked.ambassador = ambassador
        locked.method = Signup.Method.MANUAL if ambassador else Signup.Method.NONE
        if ambassador is not None and locked.reason == Signup.Reason.SELF_REFERRAL:
            # A self-referral no longer applies once someone else is credited.
            locked.status, locked.reason, locked.reason_detail = Signup.Status.QUALIFIED, "", ""

    return _signup_change(signup=signup, actor=actor, action="signup.overridden", reason=reason, apply=apply)


def signup_review(*, signup: Signup, status: str, reason: str, actor: Actor) -> Signup:
    """Fraud review: qualify or reject a signup, with a reason."""
    if status not in (Signup.Status.QUALIFIED, Signup.Status.REJECTED):
        raise InvalidInput("A review qualifies or rejects.", field="status")

    def apply(locked: Signup) -> None:
        locked.status = status
        locked.reason = Signup.Reason.REVIEWED
        locked.reason_detail = reason.strip()[:255]

    return _signup_change(signup=signup, actor=actor, action="signup.reviewed", reason=reason, apply=apply)


# --- Conversions -------------------------------------------------------------------------------------


def parse_amount(raw: Any, currency: str) -> Decimal:
    if isinstance(raw, bool) or raw is None:
        raise InvalidInput('Give the amount as a decimal string such as "19.90".', field="amount")
    try:
        amount = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise InvalidInput('Give the amount as a decimal string such as "19.90".', field="amount") from None
    if not amount.is_finite():
        raise InvalidInput("The amount must be a finite number.", field="amount")
    if amount < 0:
        raise InvalidInput("The amount cannot be negative; refunds use the refund endpoint.", field="amount")
    if amount >= MAX_AMOUNT:
        raise InvalidInput(f"The amount must be below {MAX_AMOUNT}.", field="amount")
    places = get_currency_precision(currency)
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > min(places, 2):
        raise InvalidInput(f"{currency} amounts have at most {min(places, 2)} decimal places.", field="amount")
    return amount


def validate_currency(raw: Any, program: Program) -> str:
    currency = str(raw or "").strip().upper()
    if currency not in KNOWN_CURRENCIES:
        raise InvalidInput("Unknown currency: use an ISO 4217 code such as EUR.", field="currency")
    if currency != program.currency:
        raise InvalidInput(f"This program counts in {program.currency}.", field="currency")
    return currency


def _request_hash(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def conversion_record(
    *,
    program: Program,
    actor: Actor,
    external_id: str,
    amount: Any,
    currency: Any,
    email: str | None = None,
    referee_external_id: str | None = None,
    occurred_at: datetime | None = None,
) -> tuple[Conversion, bool]:
    """Record a purchase of a referee, idempotent on external_id (Stripe-like). Returns (conversion, created).

    The same external_id with the same body returns the first; with another body it is a Conflict.
    """
    external_id = (external_id or "").strip()
    if not external_id:
        raise InvalidInput("This field is required.", field="external_id")
    currency = validate_currency(currency, program)
    amount = parse_amount(amount, currency)
    if not email and not referee_external_id:
        raise InvalidInput("Give the referee's email or referee_external_id.", field="email")
    email = normalise_email(email) if email else None
    request_hash = _request_hash(
        {
            "external_id": external_id,
            "email": email,
            "referee_external_id": referee_external_id or None,
            "amount": str(amount.normalize()),
            "currency": currency,
            "occurred_at": occurred_at.isoformat() if occurred_at else None,
        }
    )
    existing = Conversion.objects.filter(program=program, external_id=external_id).first()
    if existing is not None:
        return _same_or_conflict(existing, request_hash), False

    signups = Signup.objects.filter(program=program)
    signup = signups.filter(email=email).first() if email else signups.filter(external_id=referee_external_id).first()
    if signup is None:
        field = "email" if email else "referee_external_id"
        raise InvalidInput("No signup in this program matches this referee.", field=field)

    now = timezone.now()
    occurred = occurred_at or now
    if occurred > now + timedelta(minutes=5):
        raise InvalidInput("occurred_at is in the future.", field="occurred_at")
    approve_after = occurred + timedelta(days=program.hold_period_days)
    try:
        with transaction.atomic():
            conversion = Conversion.objects.create(
                program=program,
                signup=signup,
                external_id=external_id,
                amount=amount,
                currency=currency,
                occurred_at=occurred,
                approve_after=approve_after,
                request_hash=request_hash,
                created_at=now,
            )
            audit_record(
                actor=actor,
                action="conversion.recorded",
                object_type="conversion",
                object_id=conversion.pk,
                program_id=program.pk,
                after={
                    "external_id": external_id,
                    "amount": str(amount),
                    "currency": currency,
                    "signup": signup.pk,
                    "ambassador": signup.ambassador.code if signup.ambassador else None,
                },
            )
    except IntegrityError:
        existing = Conversion.objects.filter(program=program, external_id=external_id).first()
        if existing is None:
            raise
        return _same_or_conflict(existing, request_hash), False
    if approve_after <= now:
        conversion_approve(conversion_id=conversion.pk, actor=Actor.system("hold period elapsed"))
        conversion.refresh_from_db()
    return conversion, True


def _same_or_conflict(existing: Conversion, request_hash: str) -> Conversion:
    if existing.request_hash != request_hash:
        raise Conflict(
            "A conversion with this external_id was already recorded with a different body.",
            field="external_id",
        )
    return existing


def conversion_approve(*, conversion_id: int, actor: Actor) -> bool:
    """Pending -> approved, once: a conditional update, so a task delivered twice counts it once."""
    now = timezone.now()
    with transaction.atomic():
        changed = Conversion.objects.filter(pk=conversion_id, status=Conversion.Status.PENDING).update(
            status=Conversion.Status.APPROVED, approved_at=now
        )
        if not changed:
            return False
        conversion = Conversion.objects.select_related("signup").get(pk=conversion_id)
        signup = conversion.signup
        counted = signup.status == Signup.Status.QUALIFIED and signup.ambassador_id is not None
        if counted:
            counters_add(
                program_id=conversion.program_id,
                ambassador_id=signup.ambassador_id,
                conversions=1,
                amount=conversion.amount,
            )
        audit_record(
            actor=actor,
            action="conversion.approved",
            object_type="conversion",
            object_id=conversion.pk,
            program_id=conversion.program_id,
            before={"status": Conversion.Status.PENDING},
            after={"status": Conversion.Status.APPROVED},
        )
        _announce(conversion.program_id, signup.ambassador_id)
    return True


def conversions_approve_due(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Approve the pending conversions whose hold period has passed. Safe to run concurrently."""
    now = now or timezone.now()
    due = Conversion.objects.filter(status=Conversion.Status.PENDING, approve_after__lte=now).values_list(
        "pk", flat=True
    )[:limit]
    return sum(conversion_approve(conversion_id=pk, actor=Actor.system("hold period elapsed")) for pk in due)


def conversion_refund(*, program: Program, external_id: str, actor: Actor, reason: str = "") -> Conversion:
    """A refund or chargeback reverses the conversion; a second refund changes nothing."""
    with transaction.atomic():
        # Lock: a refund racing the approval task must not leave the counter counting a reversed sale.
        conversion = (
            Conversion.objects.select_for_update()
            .select_related("signup")
            .filter(program=program, external_id=external_id)
            .first()
        )
        if conversion is None:
            raise NotFound("No conversion with this external_id in this program.")
        if conversion.status == Conversion.Status.REVERSED:
            return conversion
        was_approved = conversion.status == Conversion.Status.APPROVED
        before = {"status": conversion.status}
        conversion.status = Conversion.Status.REVERSED
        conversion.reversed_at = timezone.now()
        conversion.save(update_fields=["status", "reversed_at"])
        signup = conversion.signup
        if was_approved and signup.status == Signup.Status.QUALIFIED and signup.ambassador_id is not None:
            counters_add(
                program_id=program.pk,
                ambassador_id=signup.ambassador_id,
                conversions=-1,
                amount=-conversion.amount,
            )
        audit_record(
            actor=actor,
            action="conversion.reversed",
            object_type="conversion",
            object_id=conversion.pk,
            program_id=program.pk,
            before=before,
            after={"status": Conversion.Status.REVERSED},
            reason=reason or "refund",
        )
        _announce(program.pk, signup.ambassador_id)
    return conversion


# --- Links -------------------------------------------------------------------------------------------


def link_create(*, ambassador: Ambassador, channel: str) -> ReferralLink:
    """A channel link `/r/<CODE>-<CHANNEL>`; asking again for a channel returns the same link."""
    from django.utils.text import slugify

    channel = slugify(channel)[:32]
    if not channel:
        raise InvalidInput("A channel name has letters or digits.", field="channel")
    existing = ReferralLink.objects.filter(ambassador=ambassador, channel=channel).first()
    if existing is not None:
        return existing
    code = f"{ambassador.code}-{channel.upper()}"[:64]
    try:
        with transaction.atomic():
            return ReferralLink.objects.create(
                ambassador=ambassador, channel=channel, code=code, code_key=code_key(code)
            )
    except IntegrityError:
        existing = ReferralLink.objects.filter(ambassador=ambassador, channel=channel).first()
        if existing is None:
            raise InvalidInput("This link code is already taken.", field="channel") from None
        return existing
