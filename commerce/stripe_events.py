"""Stripe events, verified by the webhook view (commerce.stripe_webhook), turned into Parrain's own records.

- `checkout.session.completed` (paid) and `checkout.session.async_payment_succeeded`, and `invoice.paid`:
  a conversion of the referred customer, its external id the Stripe object's id, so a redelivered event
  is the same conversion (referrals.services.conversion_record is idempotent on it). A subscription's
  first payment arrives twice (the Session and its first Invoice): the Session records it under the
  Invoice's id, so both name the same conversion.
- `charge.refunded` (in full) and `charge.dispute.created`: the conversion reversed
  (referrals.services.conversion_refund, a no-op the second time). A partial refund keeps the conversion and
  its amount and records how much was refunded (StripeChargeRefund: Stripe's cumulative `amount_refunded`
  per charge, only ever raised); once the refunds reach the conversion's amount, it is reversed.
- A Session or Invoice paid with one of Parrain's promotion codes redeems that voucher for the order.

Who was referred: `client_reference_id`, or `metadata.parrain_ref`, carrying the ambassador's code or the
click id (a signup is then recorded for the customer's e-mail, if none exists: the first attribution
stands); else the customer's e-mail matching an attributed signup. Nobody: nothing is recorded.
Every record is made by the referrals and rewards services, with their audit events.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from babel.numbers import get_currency_precision
from django.db import transaction
from django.db.models import Q, Sum

from ambassadors.mailbox import canonical_mailbox
from ambassadors.models import Program
from commerce.models import StripeChargeRefund, StripePaymentLink, StripePromotionCode
from core import clock
from core.actors import Actor
from core.audit import audit_record
from core.errors import Conflict, InvalidInput, NotFound, ParrainError
from core.locking import transaction_retry
from referrals.models import Conversion, Signup
from referrals.services import conversion_record, conversion_refund, signup_record
from rewards.services.grants import grant_redeem_for_order

logger = logging.getLogger(__name__)

# Stripe's amounts are integers in the currency's minor unit as Stripe counts it, which is not always the
# ISO 4217 (or CLDR) exponent: ISK, for one, is zero-decimal in CLDR but two-decimal in Stripe's API.
# Stripe's own lists (https://docs.stripe.com/currencies#zero-decimal, #three-decimal); every other
# currency is two-decimal in its API.
STRIPE_ZERO_DECIMAL = frozenset(
    ["BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"]
)
STRIPE_THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])
REF_METADATA_KEY = "parrain_ref"


@dataclass(frozen=True)
class EventOutcome:
    """What an event did: `recorded` when it changed something (or found it done), and a short note for the
    logs and the answer Stripe keeps in its delivery log (ids only, never an e-mail address)."""

    recorded: bool
    note: str


def stripe_exponent(currency: str) -> int:
    currency = currency.upper()
    if currency in STRIPE_ZERO_DECIMAL:
        return 0
    if currency in STRIPE_THREE_DECIMAL:
        return 3
    return 2


def amount_from_minor(minor: int, currency: str) -> Decimal:
    """The exact amount of `minor` units of `currency` as Stripe counts them: 1990 EUR -> 19.90, 1500 JPY ->
    1500, 500 ISK -> 5. Written with the currency's own decimal places (Babel's, at most 2) when it is
    exactly that: Stripe's two-decimal ISK amounts always end in 00."""
    amount = Decimal(int(minor)).scaleb(-stripe_exponent(currency))
    quantum = Decimal(1).scaleb(-min(get_currency_precision(currency.upper()), 2))
    exact = amount.quantize(quantum)
    return exact if exact == amount else amount


def minor_from_amount(amount: Decimal, currency: str) -> int:
    """The inverse: the integer Stripe expects for `amount` of `currency`; ValueError if not whole."""
    minor = amount.scaleb(stripe_exponent(currency))
    if minor != minor.to_integral_value():
        raise ValueError(f"{amount} {currency} is not a whole number of Stripe's minor units")
    return int(minor)


def _id(value: Any) -> str:
    """An object's id whether Stripe sent it as a string or expanded it into an object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _moment(timestamp: Any) -> datetime | None:
    if isinstance(timestamp, int) and not isinstance(timestamp, bool) and timestamp > 0:
        return min(datetime.fromtimestamp(timestamp, tz=UTC), clock.now())
    return None


def _metadata_ref(*holders: Any) -> str:
    for holder in holders:
        metadata = holder.get("metadata") if isinstance(holder, dict) else None
        if isinstance(metadata, dict) and isinstance(metadata.get(REF_METADATA_KEY), str):
            ref = metadata[REF_METADATA_KEY].strip()
            if ref:
                return ref
    return ""


def _referred_signup(program: Program, *, ref: str, email: str, actor: Actor) -> Signup | None:
    """The referred customer's signup (design 2.2 through the signup service), or None: not referred."""
    if ref and email:
        referral_code: str | None = ref
        click_id: str | None = None
        try:
            uuid.UUID(ref)
        except ValueError:
            pass
        else:
            referral_code, click_id = None, ref
        try:
            signup, _ = signup_record(
                program=program, email=email, actor=actor, referral_code=referral_code, click_id=click_id
            )
        except ParrainError as exc:
            # An unknown code, a malformed e-mail, a closed program: the e-mail may still match below.
            logger.info("stripe: the reference of %s did not record a signup: %s", actor.label, exc.message)
        else:
            if signup.ambassador_id is not None:
                return signup
    if email:
        return (
            Signup.objects.filter(
                program=program, email_canonical=canonical_mailbox(email.strip().lower()), ambassador__isnull=False
            )
            .select_related("ambassador")
            .first()
        )
    return None


def _links_write(program: Program, external_id: str, stripe_ids: Iterable[str]) -> None:
    now = clock.now()
    rows = [
        StripePaymentLink(program=program, stripe_id=stripe_id, external_id=external_id, created_at=now)
        for stripe_id in dict.fromkeys(i for i in stripe_ids if i and i != external_id)
    ]
    # A redelivery, or a race with it, writes nothing new: the constraint keeps one row per id.
    StripePaymentLink.objects.bulk_create(rows, ignore_conflicts=True)


def _conversion_record(
    program: Program,
    *,
    actor: Actor,
    signup: Signup,
    external_id: str,
    amount_minor: Any,
    currency: Any,
    occurred_at: datetime | None,
    stripe_ids: Iterable[str],
) -> EventOutcome:
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or not isinstance(currency, str):
        return EventOutcome(False, "ignored: no amount")
    if amount_minor <= 0:
        return EventOutcome(False, "ignored: nothing was paid")
    currency = currency.upper()
    _links_write(program, external_id, stripe_ids)
    try:
        conversion, created = conversion_record(
            program=program,
            actor=actor,
            external_id=external_id,
            amount=amount_from_minor(amount_minor, currency),
            currency=currency,
            email=signup.email,
            occurred_at=occurred_at,
        )
    except Conflict:
        # Recorded already from the other half of the pair (a subscription's Session and first Invoice
        # carry the same purchase): the first record stands.
        return EventOutcome(True, f"conversion {external_id} already recorded")
    except InvalidInput as exc:
        # Another currency than the program's, an amount out of range: Stripe retrying would change nothing.
        logger.warning("stripe: %s not recorded: %s", external_id, exc.message)
        return EventOutcome(False, f"ignored: {exc.message}")
    return EventOutcome(True, f"conversion {conversion.external_id} {'recorded' if created else 'already recorded'}")


def _vouchers_redeem(program: Program, discounts: Any, *, order_reference: str, actor: Actor) -> list[str]:
    """Redeem the program's vouchers among `discounts` (a Session's [{coupon, promotion_code}], an
    Invoice's expanded Discount objects) for the order. Returns the notes."""
    promotion_ids, coupon_ids = set(), set()
    for discount in discounts if isinstance(discounts, list) else []:
        if not isinstance(discount, dict):
            continue  # an unexpanded Discount id (`di_...`) names neither
        promotion_ids.add(_id(discount.get("promotion_code")))
        source = discount.get("source")
        coupon_ids.add(_id(discount.get("coupon")) or (_id(source.get("coupon")) if isinstance(source, dict) else ""))
    promotion_ids.discard("")
    coupon_ids.discard("")
    if not promotion_ids and not coupon_ids:
        return []
    notes = []
    rows = StripePromotionCode.objects.filter(program=program).filter(
        Q(promotion_code_id__in=promotion_ids) | Q(coupon_id__in=coupon_ids)
    )
    for row in rows.select_related("grant"):
        try:
            _, redeemed = grant_redeem_for_order(grant=row.grant, order_reference=order_reference, actor=actor)
        except (Conflict, NotFound, InvalidInput) as exc:
            # Stripe took the code already: the customer keeps the discount; the refusal is logged for staff.
            logger.warning("stripe: voucher of grant %s not redeemed for %s: %s", row.grant_id, order_reference, exc)
            notes.append(f"voucher of grant {row.grant_id} not redeemed")
        else:
            notes.append(f"voucher of grant {row.grant_id} {'redeemed' if redeemed else 'already redeemed'}")
    return notes


def _with_vouchers(outcome: EventOutcome, notes: list[str]) -> EventOutcome:
    if not notes:
        return outcome
    return EventOutcome(True, "; ".join([outcome.note, *notes]))


def _checkout_completed(program: Program, session: dict[str, Any], event: dict[str, Any], actor: Actor) -> EventOutcome:
    if session.get("payment_status") != "paid":
        # Unpaid (a delayed payment method: async_payment_succeeded follows) or free: no purchase yet.
        return EventOutcome(False, "ignored: the session is not paid")
    session_id = _id(session)
    notes = _vouchers_redeem(program, session.get("discounts"), order_reference=session_id, actor=actor)
    invoice_id = _id(session.get("invoice"))
    if session.get("mode") == "subscription" and invoice_id:
        external_id = invoice_id  # the first Invoice's invoice.paid names the same purchase
    elif session.get("mode") == "payment":
        external_id = session_id
    else:
        return _with_vouchers(EventOutcome(False, "ignored: no payment in this session"), notes)
    email = _str(_dict(session.get("customer_details")).get("email")) or _str(session.get("customer_email"))
    ref = _str(session.get("client_reference_id")) or _metadata_ref(session)
    signup = _referred_signup(program, ref=ref, email=email, actor=actor)
    if signup is None:
        return _with_vouchers(EventOutcome(False, "ignored: no referral"), notes)
    outcome = _conversion_record(
        program,
        actor=actor,
        signup=signup,
        external_id=external_id,
        amount_minor=session.get("amount_total"),
        currency=session.get("currency"),
        occurred_at=_moment(event.get("created")),
        stripe_ids=[session_id, _id(session.get("payment_intent"))],
    )
    return _with_vouchers(outcome, notes)


def _invoice_payment_ids(invoice: dict[str, Any]) -> list[str]:
    """The PaymentIntents and Charges that paid an invoice, as far as the event tells (older API versions
    name them on the invoice; newer ones list its payments when included)."""
    ids = [_id(invoice.get("payment_intent")), _id(invoice.get("charge"))]
    payments = invoice.get("payments")
    for payment in payments.get("data", []) if isinstance(payments, dict) else []:
        detail = payment.get("payment") if isinstance(payment, dict) else None
        if isinstance(detail, dict):
            ids += [_id(detail.get("payment_intent")), _id(detail.get("charge"))]
    return ids


def _invoice_paid(program: Program, invoice: dict[str, Any], event: dict[str, Any], actor: Actor) -> EventOutcome:
    invoice_id = _id(invoice)
    notes = _vouchers_redeem(program, invoice.get("discounts"), order_reference=invoice_id, actor=actor)
    parent = _dict(invoice.get("parent"))
    ref = _metadata_ref(invoice, parent.get("subscription_details"), invoice.get("subscription_details"))
    signup = _referred_signup(program, ref=ref, email=_str(invoice.get("customer_email")), actor=actor)
    if signup is None:
        return _with_vouchers(EventOutcome(False, "ignored: no referral"), notes)
    transitions = invoice.get("status_transitions")
    paid_at = _moment(transitions.get("paid_at")) if isinstance(transitions, dict) else None
    outcome = _conversion_record(
        program,
        actor=actor,
        signup=signup,
        external_id=invoice_id,
        amount_minor=invoice.get("amount_paid"),
        currency=invoice.get("currency"),
        occurred_at=paid_at or _moment(event.get("created")),
        stripe_ids=_invoice_payment_ids(invoice),
    )
    return _with_vouchers(outcome, notes)


def _invoice_payment_paid(
    program: Program, payment: dict[str, Any], event: dict[str, Any], actor: Actor
) -> EventOutcome:
    """Which PaymentIntent or Charge paid an invoice (newer API versions tell it here only)."""
    invoice_id = _id(payment.get("invoice"))
    detail = _dict(payment.get("payment"))
    ids = [_id(detail.get("payment_intent")), _id(detail.get("charge"))]
    if not invoice_id or not any(ids):
        return EventOutcome(False, "ignored: no invoice or payment")
    _links_write(program, invoice_id, ids)
    return EventOutcome(True, f"payment of {invoice_id} noted")


def _reverse(program: Program, stripe_ids: list[str], *, actor: Actor, reason: str) -> EventOutcome:
    conversion = _conversion_of(program, [i for i in stripe_ids if i])
    if conversion is None:
        return EventOutcome(False, "ignored: no conversion of this payment")
    reversed_ = conversion_refund(program=program, external_id=conversion.external_id, actor=actor, reason=reason)
    return EventOutcome(True, f"conversion {reversed_.external_id} reversed")


def _conversion_of(program: Program, stripe_ids: list[str]) -> Conversion | None:
    external_ids = list(
        StripePaymentLink.objects.filter(program=program, stripe_id__in=stripe_ids).values_list(
            "external_id", flat=True
        )
    )
    return (
        Conversion.objects.filter(program=program, external_id__in=[*external_ids, *stripe_ids])
        .only("pk", "external_id", "signup_id")
        .first()
    )


@transaction_retry()
def _refund_record(
    program: Program, conversion: Conversion, *, charge_id: str, refunded: Decimal, currency: str, actor: Actor
) -> EventOutcome:
    """Raise the charge's refunded figure to `refunded` (Stripe's cumulative amount_refunded, never added to);
    when the conversion's refunds reach its amount, reverse it (conversion_refund), else audit the partial
    refund. A redelivered or older event raises nothing and records nothing."""
    reason = f"Refunded in Stripe ({charge_id})"
    with transaction.atomic():
        # Lock order (core.locking): the signup, then the conversion, as conversion_refund takes them. The
        # conversion's lock: two partial refunds of its charges committing together must each see the
        # other's figure, so that the one reaching the amount reverses it.
        Signup.objects.select_for_update(no_key=True).filter(pk=conversion.signup_id).first()
        locked = Conversion.objects.select_for_update(no_key=True).get(pk=conversion.pk)
        now = clock.now()
        row, created = StripeChargeRefund.objects.get_or_create(
            program=program,
            charge_id=charge_id,
            defaults={
                "external_id": locked.external_id,
                "amount_refunded": refunded,
                "currency": currency,
                "updated_at": now,
            },
        )
        before = Decimal(0) if created else row.amount_refunded
        raised = created or StripeChargeRefund.objects.filter(pk=row.pk, amount_refunded__lt=refunded).update(
            amount_refunded=refunded, updated_at=now
        )
        if locked.status == Conversion.Status.REVERSED:
            return EventOutcome(True, f"conversion {locked.external_id} already reversed")
        if not raised:
            return EventOutcome(True, f"refund of {charge_id} already recorded")
        total = StripeChargeRefund.objects.filter(program=program, external_id=locked.external_id).aggregate(
            total=Sum("amount_refunded")
        )["total"] or Decimal(0)
        if total >= locked.amount:
            conversion_refund(program=program, external_id=locked.external_id, actor=actor, reason=reason)
            return EventOutcome(True, f"conversion {locked.external_id} reversed")
        audit_record(
            actor=actor,
            action="conversion.partially_refunded",
            object_type="conversion",
            object_id=locked.pk,
            program_id=program.pk,
            before={
                "charge": charge_id,
                "charge_refunded": _figure(before, currency),
                "refunded": _figure(total - refunded + before, currency),
            },
            after={
                "charge": charge_id,
                "charge_refunded": _figure(refunded, currency),
                "refunded": _figure(total, currency),
            },
            reason=reason,
        )
    return EventOutcome(True, f"conversion {locked.external_id} partially refunded ({total} of {locked.amount})")


def _figure(amount: Decimal, currency: str) -> str:
    """An amount as the audit trail writes it: with the currency's own decimals when exact ("5.00", "0.00")."""
    return str(amount_from_minor(minor_from_amount(amount, currency), currency))


def refunded_amounts(*, program: Program, external_ids: Iterable[str]) -> dict[str, Decimal]:
    """How much of each conversion Stripe refunded without reversing it (partial refunds), by external id;
    conversions with no refund are absent. A reversed conversion counts as wholly refunded elsewhere."""
    rows = (
        StripeChargeRefund.objects.filter(program=program, external_id__in=list(external_ids))
        .values("external_id")
        .annotate(total=Sum("amount_refunded"))
    )
    return {row["external_id"]: row["total"] for row in rows}


def _charge_refunded(program: Program, charge: dict[str, Any], event: dict[str, Any], actor: Actor) -> EventOutcome:
    ids = [i for i in (_id(charge), _id(charge.get("payment_intent")), _id(charge.get("invoice"))) if i]
    refunded_minor, currency = charge.get("amount_refunded"), charge.get("currency")
    if charge.get("refunded") is True:
        # Refunded whole (whatever amount it says): the purchase is reversed.
        return _reverse(program, ids, actor=actor, reason=f"Refunded in Stripe ({_id(charge)})")
    if (
        not isinstance(refunded_minor, int)
        or isinstance(refunded_minor, bool)
        or refunded_minor <= 0
        or not isinstance(currency, str)
    ):
        return EventOutcome(False, "ignored: no amount refunded")
    conversion = _conversion_of(program, ids)
    if conversion is None:
        return EventOutcome(False, "ignored: no conversion of this payment")
    currency = currency.upper()
    if currency != program.currency.upper():
        return EventOutcome(False, f"ignored: refunded in {currency}, not the program's currency")
    refunded = amount_from_minor(refunded_minor, currency)
    return _refund_record(program, conversion, charge_id=_id(charge), refunded=refunded, currency=currency, actor=actor)


def _dispute_created(program: Program, dispute: dict[str, Any], event: dict[str, Any], actor: Actor) -> EventOutcome:
    ids = [_id(dispute.get("charge")), _id(dispute.get("payment_intent"))]
    return _reverse(program, ids, actor=actor, reason=f"Disputed in Stripe ({_id(dispute)})")


Handler = Callable[[Program, dict[str, Any], dict[str, Any], Actor], EventOutcome]
HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _checkout_completed,
    "checkout.session.async_payment_succeeded": _checkout_completed,
    "invoice.paid": _invoice_paid,
    "invoice_payment.paid": _invoice_payment_paid,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_created,
}
# What to select when adding the endpoint in Stripe (the README and the staff page list them).
STRIPE_EVENTS = tuple(HANDLERS)


def stripe_event_handle(*, program: Program, event: dict[str, Any]) -> EventOutcome:
    """Apply one verified Stripe event to the program. Safe to run again for the same event (Stripe
    delivers at least once): every record it makes is idempotent on Stripe's ids."""
    handler = HANDLERS.get(str(event.get("type", "")))
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if handler is None or not isinstance(obj, dict) or not _id(obj):
        return EventOutcome(False, "ignored: not an event Parrain uses")
    actor = Actor.system(f"stripe {str(event.get('id', ''))[:64]}")
    return handler(program, obj, event, actor)
