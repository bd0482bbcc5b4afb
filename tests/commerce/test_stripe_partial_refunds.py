"""Partial refunds from Stripe: the conversion keeps its amount and records how much was refunded, from
Stripe's cumulative figure (never added up, so a redelivery changes nothing); once the refunds reach the
amount, the conversion is reversed like a full refund."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ambassadors.models import AmbassadorCounters
from commerce.models import StripeAccount, StripeChargeRefund
from commerce.stripe_events import refunded_amounts
from core.models import AuditEvent
from referrals.models import Conversion
from tests.commerce.stripe_support import SECRET, checkout_session, deliver, event

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(program):
    """The Book Launch, connected to its Stripe account, conversions approved as soon as recorded."""
    program.hold_period_days = 0
    program.save()
    StripeAccount.objects.create(program=program, webhook_secret=SECRET)
    return program


@pytest.fixture
def purchase(shop, ambassador) -> Conversion:
    """Ana's friend pays 19.90 EUR through Stripe Checkout (PaymentIntent pi_1, charge ch_1)."""
    deliver(shop.slug, event("checkout.session.completed", checkout_session(client_reference_id=ambassador.code)))
    return Conversion.objects.get()


def _refund(amount_refunded: int, *, charge_id: str = "ch_1", payment_intent: str = "pi_1",
            amount: int = 1990, currency: str = "eur") -> dict[str, Any]:  # fmt: skip
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_refunded": amount_refunded,
        "currency": currency,
        "payment_intent": payment_intent,
        "refunded": amount_refunded >= amount,
    }


def _actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


def test_a_partial_refund_keeps_the_conversion_and_records_the_amount(shop, ambassador, purchase):
    response = deliver(shop.slug, event("charge.refunded", _refund(500), event_id="evt_r1"))

    assert response.status_code == 200 and response.json()["recorded"] is True
    purchase.refresh_from_db()
    assert (purchase.status, purchase.amount) == ("approved", Decimal("19.90"))
    assert refunded_amounts(program=shop, external_ids=[purchase.external_id]) == {purchase.external_id: Decimal("5")}
    audit = AuditEvent.objects.get(action="conversion.partially_refunded")
    assert audit.before == {"charge": "ch_1", "charge_refunded": "0.00", "refunded": "0.00"}
    assert audit.after == {"charge": "ch_1", "charge_refunded": "5.00", "refunded": "5.00"}
    assert audit.reason == "Refunded in Stripe (ch_1)"
    counters = AmbassadorCounters.objects.filter(ambassador=ambassador)
    assert sum(counters.values_list("conversions", flat=True)) == 1  # the purchase still counts


def test_a_redelivered_partial_refund_changes_nothing(shop, purchase):
    body = event("charge.refunded", _refund(500), event_id="evt_r1")
    deliver(shop.slug, body)
    after_first = (_actions(), list(StripeChargeRefund.objects.values_list("amount_refunded", flat=True)))

    again = deliver(shop.slug, body)

    assert again.status_code == 200
    assert (_actions(), list(StripeChargeRefund.objects.values_list("amount_refunded", flat=True))) == after_first
    assert refunded_amounts(program=shop, external_ids=[purchase.external_id])[purchase.external_id] == Decimal("5")


def test_a_second_partial_refund_raises_the_figure_to_stripes_total_never_adds(shop, purchase):
    deliver(shop.slug, event("charge.refunded", _refund(500), event_id="evt_r1"))
    deliver(shop.slug, event("charge.refunded", _refund(800), event_id="evt_r2"))
    # The first event arriving again late (Stripe does not promise order): the total stays 8.00.
    deliver(shop.slug, event("charge.refunded", _refund(500), event_id="evt_r1"))

    assert refunded_amounts(program=shop, external_ids=[purchase.external_id])[purchase.external_id] == Decimal("8")
    assert _actions().count("conversion.partially_refunded") == 2
    purchase.refresh_from_db()
    assert purchase.status == "approved"


def test_partial_refunds_reaching_the_amount_reverse_the_conversion_once(shop, ambassador, purchase):
    deliver(shop.slug, event("charge.refunded", _refund(990), event_id="evt_r1"))
    # Stripe marks the charge refunded when its refunds reach its amount.
    last = event("charge.refunded", _refund(1990), event_id="evt_r2")
    deliver(shop.slug, last)
    deliver(shop.slug, last)

    purchase.refresh_from_db()
    assert purchase.status == "reversed"
    assert _actions().count("conversion.reversed") == 1
    counters = AmbassadorCounters.objects.filter(ambassador=ambassador)
    assert sum(counters.values_list("conversions", flat=True)) == 0
    assert sum(counters.values_list("converted_amount", flat=True)) == 0


def test_refunds_of_two_charges_adding_up_to_the_amount_reverse_it(shop, purchase):
    # A purchase paid by a PaymentIntent that needed two charges (the first one partly refunded, then
    # another charge refunded): each charge's refunds are summed with the other's, never with themselves.
    deliver(shop.slug, event("charge.refunded", _refund(1000, charge_id="ch_1", amount=1000), event_id="evt_a"))
    purchase.refresh_from_db()
    assert purchase.status == "reversed"  # the first charge refunded whole: a full refund, as before

    # And for a partial sum: a fresh purchase, two partial refunds on two charges.
    deliver(shop.slug, event("checkout.session.completed", checkout_session("cs_test_2", payment_intent="pi_2",
                                                                            email="friend@example.org")))  # fmt: skip
    second = Conversion.objects.get(external_id="cs_test_2")
    deliver(shop.slug, event("charge.refunded", _refund(990, charge_id="ch_2", payment_intent="pi_2",
                                                        amount=1500), event_id="evt_b"))  # fmt: skip
    second.refresh_from_db()
    assert second.status == "approved"
    deliver(shop.slug, event("charge.refunded", _refund(1000, charge_id="ch_3", payment_intent="pi_2",
                                                        amount=1500), event_id="evt_c"))  # fmt: skip
    second.refresh_from_db()
    assert second.status == "reversed"
    assert refunded_amounts(program=shop, external_ids=["cs_test_2"]) == {"cs_test_2": Decimal("19.90")}


def test_a_partial_refund_in_another_currency_or_without_amount_is_ignored(shop, purchase):
    before = _actions()

    other = deliver(shop.slug, event("charge.refunded", _refund(500, currency="usd"), event_id="evt_usd"))
    nothing = deliver(shop.slug, event("charge.refunded", _refund(0), event_id="evt_zero"))

    assert (other.json()["recorded"], nothing.json()["recorded"]) == (False, False)
    assert _actions() == before and StripeChargeRefund.objects.count() == 0


def test_a_partial_refund_of_a_payment_parrain_never_saw_changes_nothing(shop):
    response = deliver(shop.slug, event("charge.refunded", _refund(500, payment_intent="pi_unknown")))

    assert response.json() == {"received": True, "recorded": False, "note": "ignored: no conversion of this payment"}
    assert StripeChargeRefund.objects.count() == 0


def test_a_partial_refund_after_the_reversal_changes_nothing(shop, purchase):
    dispute = {"id": "dp_1", "object": "dispute", "charge": "ch_1", "payment_intent": "pi_1", "amount": 1990}
    deliver(shop.slug, event("charge.dispute.created", dispute, event_id="evt_dispute"))
    before = _actions()

    deliver(shop.slug, event("charge.refunded", _refund(500), event_id="evt_r1"))

    assert _actions() == before
    purchase.refresh_from_db()
    assert purchase.status == "reversed"
