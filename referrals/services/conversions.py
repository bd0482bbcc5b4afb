"""Purchases of referees: idempotent recording, approval after the hold period, refunds."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from babel.numbers import get_currency_precision, list_currencies
from django.db import IntegrityError, transaction
from django.utils import timezone

from ambassadors.mailbox import canonical_mailbox
from ambassadors.models import Program
from ambassadors.normalise import normalise_email
from ambassadors.services import counters_add
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, InvalidInput, NotFound
from core.locking import transaction_retry
from core.text import plain_text
from referrals.models import Conversion, Signup
from referrals.services.signups import counts_announce

MAX_AMOUNT = Decimal("1000000000")  # a billion in one purchase is a typo or an attack


KNOWN_CURRENCIES = frozenset(list_currencies())


# Plain ASCII digits with an optional decimal part: what Decimal() alone would also accept (`1_000`,
# `1e3`, `+5`, Arabic-Indic or fullwidth digits, `NaN`) is refused, so an amount means one thing to every
# system that reads it.
_PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)
_AMOUNT_FORMAT = 'Give the amount as a decimal string of digits such as "19.90".'


def parse_amount(raw: Any, currency: str) -> Decimal:
    """The exact amount of a purchase, from a decimal string (or a whole number) in `currency`."""
    if isinstance(raw, bool) or raw is None:
        raise InvalidInput(_AMOUNT_FORMAT, field="amount")
    if isinstance(raw, float):
        # A JSON number such as 19.9 was decoded as a binary float: its exact value is not the one sent.
        raise InvalidInput(_AMOUNT_FORMAT + " JSON numbers with a fraction are not exact.", field="amount")
    text = str(raw).strip() if isinstance(raw, str | int | Decimal) else ""
    if len(text) > 32 or not _PLAIN_DECIMAL.fullmatch(text):
        raise InvalidInput(_AMOUNT_FORMAT, field="amount")
    amount = Decimal(text)
    if amount >= MAX_AMOUNT:
        raise InvalidInput(f"The amount must be below {MAX_AMOUNT}.", field="amount")
    # At most the currency's minor units (JPY none, EUR 2); never more than the 2 places amounts are stored
    # with, which would round silently (programs refuse such currencies: ambassadors.services.program_check).
    places = min(get_currency_precision(currency), 2)
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        if places == 0:
            raise InvalidInput(f"{currency} amounts are whole numbers.", field="amount")
        raise InvalidInput(f"{currency} amounts have at most {places} decimal places.", field="amount")
    return amount


def validate_external_id(raw: Any) -> str:
    """An external id as the shop sent it, trimmed; one without control characters, so that its URL
    (`/conversions/<external_id>`, percent-encoded) can always address it."""
    return plain_text(raw if isinstance(raw, str) else "", field="external_id", required=True)


def validate_currency(raw: Any, program: Program) -> str:
    currency = str(raw or "").strip().upper()
    if currency not in KNOWN_CURRENCIES:
        raise InvalidInput("Unknown currency: use an ISO 4217 code such as EUR.", field="currency")
    if currency != program.currency:
        raise InvalidInput(f"This program counts in {program.currency}.", field="currency")
    return currency


def _request_hash(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


@transaction_retry()
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
    external_id = validate_external_id(external_id)
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
    signup = (
        signups.filter(email_canonical=canonical_mailbox(email)).first()  # `ana+order@` bought as `ana@`
        if email
        else signups.filter(external_id=referee_external_id).first()
    )
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
            # Lock order (core.locking): the signup first. Its credit is copied onto the purchase (for the
            # analytics) as it is now: an override committing meanwhile waits, then updates this copy too.
            signup = (
                Signup.objects.select_for_update(no_key=True, of=("self",))
                .select_related("ambassador")
                .get(pk=signup.pk)
            )
            conversion = Conversion.objects.create(
                program=program,
                signup=signup,
                signup_ambassador_id=signup.ambassador_id,
                signup_status=signup.status,
                signup_created_at=signup.created_at,
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


@transaction_retry()
def conversion_approve(*, conversion_id: int, actor: Actor) -> bool:
    """Pending -> approved, once: a conditional update, so a task delivered twice counts it once."""
    now = timezone.now()
    signup_id = (
        Conversion.objects.filter(pk=conversion_id, status=Conversion.Status.PENDING)
        .values_list("signup_id", flat=True)
        .first()
    )
    if signup_id is None:
        return False
    with transaction.atomic():
        # Lock order (core.locking): the signup, the conversion, then the ambassador's counters. The
        # signup's lock: a review deciding at the same moment whether it counts would otherwise read
        # this conversion as pending while we read the signup as qualified, and the sale would be
        # counted for a signup that no longer counts (or the other way round).
        signup = Signup.objects.select_for_update(no_key=True).get(pk=signup_id)
        changed = Conversion.objects.filter(pk=conversion_id, status=Conversion.Status.PENDING).update(
            status=Conversion.Status.APPROVED, approved_at=now
        )
        if not changed:
            return False
        conversion = Conversion.objects.get(pk=conversion_id)
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
        counts_announce(conversion.program_id, signup.ambassador_id)
    return True


def conversions_approve_due(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Approve the pending conversions whose hold period has passed. Safe to run concurrently."""
    now = now or timezone.now()
    due = Conversion.objects.filter(status=Conversion.Status.PENDING, approve_after__lte=now).values_list(
        "pk", flat=True
    )[:limit]
    return sum(conversion_approve(conversion_id=pk, actor=Actor.system("hold period elapsed")) for pk in due)


@transaction_retry()
def conversion_refund(*, program: Program, external_id: str, actor: Actor, reason: str = "") -> Conversion:
    """A refund or chargeback reverses the conversion; a second refund changes nothing."""
    found = Conversion.objects.filter(program=program, external_id=external_id).values_list("pk", "signup_id").first()
    if found is None:
        raise NotFound("No conversion with this external_id in this program.")
    conversion_id, signup_id = found  # a conversion's signup never changes
    with transaction.atomic():
        # Lock order (core.locking): the signup, the conversion, then the ambassador's counters, each
        # FOR NO KEY UPDATE of that row alone. The conversion's lock: a refund racing the approval must
        # not leave the counter counting a reversed sale. The signup's: a review changing whether it
        # counts must not decide on this sale's old status. Not FOR UPDATE over a join to the signup:
        # that took the signup in a mode a recalculation's welcome voucher, checking its key to the
        # signup at COMMIT while holding the counters we wait for, had to wait for: a deadlock.
        signup = Signup.objects.select_for_update(no_key=True).get(pk=signup_id)
        conversion = Conversion.objects.select_for_update(no_key=True).get(pk=conversion_id)
        conversion.signup = signup
        if conversion.status == Conversion.Status.REVERSED:
            return conversion
        was_approved = conversion.status == Conversion.Status.APPROVED
        before = {"status": conversion.status}
        conversion.status = Conversion.Status.REVERSED
        conversion.reversed_at = timezone.now()
        conversion.save(update_fields=["status", "reversed_at"])
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
        counts_announce(program.pk, signup.ambassador_id)
    return conversion
