"""The Stripe webhook: signed events become conversions and reversals, once; anything unsigned, badly
signed or too old is refused and records nothing."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from ambassadors.models import AmbassadorCounters
from commerce.models import StripeAccount, StripePaymentLink, StripePromotionCode
from commerce.stripe_events import amount_from_minor, minor_from_amount
from core import clock
from core.actors import Actor
from core.models import AuditEvent
from referrals.models import Conversion, Signup
from referrals.services import signup_record
from rewards.models import RewardGrant, RewardTier
from rewards.services import grant_create, tier_create
from tests.commerce.stripe_support import (
    OTHER_SECRET,
    SECRET,
    charge,
    checkout_session,
    deliver,
    event,
    invoice,
)
from tests.factories import ProgramFactory, enroll
from tests.referrals.helpers import browser, row_counts, visit

pytestmark = pytest.mark.django_db

FRIEND = "friend@example.org"


@pytest.fixture
def shop(program):
    """The Book Launch, connected to its Stripe account."""
    StripeAccount.objects.create(program=program, webhook_secret=SECRET)
    return program


def _actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


def _state() -> dict[str, object]:
    return {
        **row_counts(),
        "links": StripePaymentLink.objects.count(),
        "statuses": sorted(Conversion.objects.values_list("external_id", "status")),
    }


# --- Signatures -------------------------------------------------------------------------------------------


def test_a_paid_checkout_with_the_ambassadors_code_is_one_conversion_of_her_referral(shop, ambassador):
    body = event("checkout.session.completed", checkout_session(client_reference_id=ambassador.code))

    response = deliver(shop.slug, body)

    assert response.status_code == 200, response.content
    signup = Signup.objects.get(program=shop, email=FRIEND)
    assert (signup.ambassador, signup.method, signup.status) == (ambassador, "code", "qualified")
    conversion = Conversion.objects.get(program=shop)
    assert (conversion.external_id, conversion.amount, conversion.currency) == ("cs_test_1", Decimal("19.90"), "EUR")
    assert conversion.signup == signup and conversion.status == "pending"
    assert _actions()[-2:] == ["signup.recorded", "conversion.recorded"]
    recorded = AuditEvent.objects.get(action="conversion.recorded")
    assert (recorded.actor_type, recorded.actor_label) == ("system", "stripe evt_1")
    assert StripeAccount.objects.get(program=shop).last_event_type == "checkout.session.completed"


def test_a_bad_signature_answers_400_and_records_nothing(shop, ambassador):
    before = _state()

    body = event("checkout.session.completed", checkout_session(client_reference_id=ambassador.code))

    response = deliver(shop.slug, body, secret=OTHER_SECRET)

    assert response.status_code == 400
    assert "Stripe-Signature" in response.json()["detail"]
    assert _state() == before
    assert StripeAccount.objects.get(program=shop).last_event_at is None


def test_a_signature_older_than_the_librarys_tolerance_answers_400_and_records_nothing(shop, ambassador):
    before = _state()
    body = event("checkout.session.completed", checkout_session(client_reference_id=ambassador.code))

    too_old = deliver(shop.slug, body, timestamp=int(time.time()) - 301)  # the library allows 300 s
    still_fresh = deliver(shop.slug, {**body, "id": "evt_2"}, timestamp=int(time.time()) - 200)

    assert too_old.status_code == 400
    assert still_fresh.status_code == 200
    assert Conversion.objects.count() == before["Conversion"] + 1


def test_no_signature_or_a_tampered_body_answers_400(shop, ambassador):
    url = reverse("stripe-webhook", kwargs={"slug": shop.slug})
    client = Client(enforce_csrf_checks=True)
    before = _state()

    unsigned = client.post(url, '{"type": "invoice.paid"}', content_type="application/json")
    from tests.commerce.stripe_support import signed_headers

    headers = signed_headers('{"type": "ping"}')
    tampered = client.post(url, '{"type": "invoice.paid"}', content_type="application/json", **headers)

    assert (unsigned.status_code, tampered.status_code) == (400, 400)
    assert _state() == before


def test_a_program_without_a_signing_secret_refuses_every_event(program, ambassador):
    response = deliver(
        program.slug, event("checkout.session.completed", checkout_session(client_reference_id=ambassador.code))
    )

    assert response.status_code == 400
    assert Conversion.objects.count() == 0


def test_an_unknown_program_is_404(db):
    assert deliver("no-such-program", event("invoice.paid", invoice())).status_code == 404


def test_get_is_not_allowed(shop):
    assert Client().get(reverse("stripe-webhook", kwargs={"slug": shop.slug})).status_code == 405


def test_bad_signatures_from_one_address_are_rate_limited(shop, settings):
    settings.RATE_LIMIT_STRIPE_WEBHOOK_FAILURES = "3/minute"
    body = event("invoice.paid", invoice())

    answers = [deliver(shop.slug, body, secret=OTHER_SECRET).status_code for _ in range(4)]
    good = deliver(shop.slug, body)

    assert answers == [400, 400, 400, 429]
    assert good.status_code == 429 and int(good["Retry-After"]) >= 1


# --- Idempotency ---------------------------------------------------------------------------------------------


def test_a_redelivered_event_changes_nothing(shop, ambassador):
    body = event("checkout.session.completed", checkout_session(client_reference_id=ambassador.code))
    deliver(shop.slug, body)
    after_first = (_state(), _actions())

    again = deliver(shop.slug, body)

    assert again.status_code == 200
    assert (_state(), _actions()) == after_first
    assert Conversion.objects.count() == 1 and Signup.objects.filter(email=FRIEND).count() == 1


def test_a_refund_after_approval_reverses_the_conversion_and_its_count_once(shop, ambassador):
    shop.hold_period_days = 0  # approved as soon as recorded
    shop.save()
    deliver(shop.slug, event("checkout.session.completed", checkout_session(client_reference_id=ambassador.code)))
    conversion = Conversion.objects.get()
    assert conversion.status == "approved"
    counters = AmbassadorCounters.objects.filter(ambassador=ambassador)
    assert sum(counters.values_list("conversions", flat=True)) == 1

    refund = event("charge.refunded", charge(payment_intent="pi_1"), event_id="evt_refund")
    first = deliver(shop.slug, refund)
    after_first = _actions()
    second = deliver(shop.slug, refund)

    assert (first.status_code, second.status_code) == (200, 200)
    conversion.refresh_from_db()
    assert conversion.status == "reversed"
    assert sum(counters.values_list("conversions", flat=True)) == 0
    assert sum(counters.values_list("converted_amount", flat=True)) == 0
    assert _actions() == after_first
    assert after_first.count("conversion.reversed") == 1
    reversed_event = AuditEvent.objects.get(action="conversion.reversed")
    assert reversed_event.reason == "Refunded in Stripe (ch_1)"


def test_a_partial_refund_leaves_the_conversion(shop, ambassador):
    deliver(shop.slug, event("checkout.session.completed", checkout_session(client_reference_id=ambassador.code)))

    response = deliver(shop.slug, event("charge.refunded", charge(refunded=False), event_id="evt_partial"))

    # Recorded as a partial refund (tests/commerce/test_stripe_partial_refunds.py): the purchase stands.
    assert response.json()["recorded"] is True
    assert Conversion.objects.get().status == "pending"


def test_a_dispute_reverses_the_conversion(shop, ambassador):
    deliver(shop.slug, event("checkout.session.completed", checkout_session(client_reference_id=ambassador.code)))

    dispute = {"id": "dp_1", "object": "dispute", "charge": "ch_9", "payment_intent": "pi_1", "amount": 1990}
    deliver(shop.slug, event("charge.dispute.created", dispute, event_id="evt_dispute"))

    assert Conversion.objects.get().status == "reversed"
    assert AuditEvent.objects.get(action="conversion.reversed").reason == "Disputed in Stripe (dp_1)"


def test_a_refund_of_a_payment_parrain_never_saw_changes_nothing(shop):
    before = (_state(), _actions())

    response = deliver(shop.slug, event("charge.refunded", charge(payment_intent="pi_unknown")))

    assert response.status_code == 200 and response.json()["recorded"] is False
    assert (_state(), _actions()) == before


# --- Who was referred ------------------------------------------------------------------------------------------


def test_no_referral_at_all_answers_200_and_records_nothing(shop, ambassador):
    # A walk-in who subscribed without anyone's link, and a customer Parrain never heard of.
    signup_record(program=shop, email="walkin@example.org", actor=Actor.system("test"))
    before = (_state(), _actions())

    walk_in = deliver(shop.slug, event("checkout.session.completed", checkout_session(email="walkin@example.org")))
    stranger = deliver(
        shop.slug, event("checkout.session.completed", checkout_session("cs_2", email="new@example.org"))
    )
    nobody = deliver(shop.slug, event("checkout.session.completed", checkout_session("cs_3", email=None)))

    assert [r.status_code for r in (walk_in, stranger, nobody)] == [200, 200, 200]
    assert all(r.json()["recorded"] is False for r in (walk_in, stranger, nobody))
    assert (_state(), _actions()) == before


def test_the_customers_email_matching_an_attributed_signup_is_enough(shop, ambassador):
    signup = signup_record(program=shop, email=FRIEND, referral_code=ambassador.code, actor=Actor.system("test"))[0]

    deliver(shop.slug, event("checkout.session.completed", checkout_session(email="Friend@Example.org")))

    assert Conversion.objects.get().signup == signup


def test_a_click_id_in_the_metadata_attributes_the_customer_to_the_click(shop, ambassador):
    _, click_id = visit(browser(), ambassador.code)

    deliver(shop.slug, event("checkout.session.completed", checkout_session(metadata={"parrain_ref": click_id})))

    signup = Signup.objects.get(email=FRIEND)
    assert (signup.ambassador, str(signup.click_id), signup.method) == (ambassador, click_id, "api")
    assert Conversion.objects.get().signup == signup


def test_an_existing_signup_keeps_its_first_attribution(shop, ambassador):
    bob = enroll(shop, "bob@example.com", display_name="Bob", code="BOBCODE")
    signup_record(program=shop, email=FRIEND, referral_code=ambassador.code, actor=Actor.system("test"))

    deliver(shop.slug, event("checkout.session.completed", checkout_session(client_reference_id=bob.code)))

    assert Conversion.objects.get().signup.ambassador == ambassador


def test_an_unknown_code_falls_back_on_the_email(shop, ambassador):
    before = (_state(), _actions())

    response = deliver(shop.slug, event("checkout.session.completed", checkout_session(client_reference_id="NOSUCH")))

    assert response.status_code == 200 and response.json()["recorded"] is False
    assert (_state(), _actions()) == before


def test_an_unpaid_session_records_nothing_until_its_payment_succeeds(shop, ambassador):
    unpaid = checkout_session(client_reference_id=ambassador.code, payment_status="unpaid")

    deliver(shop.slug, event("checkout.session.completed", unpaid))
    assert Conversion.objects.count() == 0

    paid = {**unpaid, "payment_status": "paid"}
    deliver(shop.slug, event("checkout.session.async_payment_succeeded", paid, event_id="evt_2"))
    assert Conversion.objects.get().external_id == "cs_test_1"


# --- Subscriptions, currencies, other events ---------------------------------------------------------------


def test_a_subscription_counts_its_first_payment_once_and_each_renewal(shop, ambassador):
    session = checkout_session(mode="subscription", invoice="in_1", payment_intent=None, amount_total=990,
                               client_reference_id=ambassador.code)  # fmt: skip

    # Stripe does not promise an order: the first invoice's invoice.paid may come before or after the session.
    deliver(shop.slug, event("checkout.session.completed", session, event_id="evt_session"))
    deliver(shop.slug, event("invoice.paid", invoice("in_1"), event_id="evt_in_1"))
    deliver(shop.slug, event("invoice.paid", invoice("in_2"), event_id="evt_in_2"))

    assert sorted(Conversion.objects.values_list("external_id", "amount")) == [
        ("in_1", Decimal("9.90")),
        ("in_2", Decimal("9.90")),
    ]


def test_a_renewal_is_refunded_through_the_payment_that_paid_it(shop, ambassador):
    signup_record(program=shop, email=FRIEND, referral_code=ambassador.code, actor=Actor.system("test"))
    # Newer API versions tell which PaymentIntent paid an invoice in invoice_payment.paid, maybe first.
    payment = {"id": "inpay_1", "object": "invoice_payment", "invoice": "in_7",
               "payment": {"type": "payment_intent", "payment_intent": "pi_7"}}  # fmt: skip
    deliver(shop.slug, event("invoice_payment.paid", payment, event_id="evt_pay"))
    deliver(shop.slug, event("invoice.paid", invoice("in_7"), event_id="evt_in_7"))

    deliver(shop.slug, event("charge.refunded", charge("ch_7", payment_intent="pi_7"), event_id="evt_refund"))

    assert Conversion.objects.get(external_id="in_7").status == "reversed"


def test_a_zero_decimal_currency_is_counted_in_whole_units(db):
    yen = ProgramFactory(slug="tokyo-launch", currency="JPY", base_price=Decimal("2000"), floor_price=Decimal("1000"))
    StripeAccount.objects.create(program=yen, webhook_secret=SECRET)
    ana = enroll(yen, "ana@example.com", display_name="Ana")

    deliver(yen.slug, event("checkout.session.completed", checkout_session(amount_total=1500, currency="jpy",
                                                                           client_reference_id=ana.code)))  # fmt: skip

    conversion = Conversion.objects.get(program=yen)
    assert (conversion.amount, conversion.currency) == (Decimal("1500"), "JPY")


@pytest.mark.parametrize(
    ("minor", "currency", "amount"),
    [(1990, "EUR", "19.90"), (1500, "JPY", "1500"), (1500, "jpy", "1500"), (500, "ISK", "5"), (7, "KRW", "7"),
     (12345, "HUF", "123.45"), (1, "USD", "0.01")],
)  # fmt: skip
def test_stripe_minor_units_become_exact_amounts(minor, currency, amount):
    assert amount_from_minor(minor, currency) == Decimal(amount)
    assert str(amount_from_minor(minor, currency)) == amount
    assert minor_from_amount(Decimal(amount), currency.upper()) == minor


def test_another_currency_than_the_programs_is_not_recorded(shop, ambassador):
    session = checkout_session(currency="usd", client_reference_id=ambassador.code)

    response = deliver(shop.slug, event("checkout.session.completed", session))

    assert response.status_code == 200 and response.json()["recorded"] is False
    assert Conversion.objects.count() == 0


def test_an_event_parrain_has_no_use_for_answers_200(shop):
    before = (_state(), _actions())

    response = deliver(shop.slug, event("customer.created", {"id": "cus_1", "object": "customer"}))

    assert response.status_code == 200 and response.json()["recorded"] is False
    assert (_state(), _actions()) == before
    assert StripeAccount.objects.get(program=shop).last_event_type == "customer.created"


# --- Vouchers used at Stripe's checkout ----------------------------------------------------------------------


def test_a_checkout_with_a_vouchers_promotion_code_redeems_the_voucher_once(shop, ambassador):
    tier = tier_create(program=shop, name="One friend", kind=RewardTier.Kind.INDIVIDUAL,
                       metric=RewardTier.Metric.QUALIFIED_SIGNUPS, threshold=Decimal("1"),
                       reward_type=RewardTier.RewardType.PERCENT_VOUCHER, reward_value=Decimal("20"),
                       actor=Actor.system("test"))  # fmt: skip
    grant = grant_create(tier=tier, occurrence=1, ambassador=ambassador)
    StripePromotionCode.objects.create(
        grant=grant,
        program=shop,
        voucher_code=grant.voucher_code,
        coupon_id="coupon_9",
        promotion_code_id="promo_9",
        created_at=clock.now(),
    )
    # Ana buys with her own voucher: no referral, but the voucher is used.
    session = checkout_session(
        "cs_ana", email="ana@example.com", discounts=[{"coupon": "coupon_9", "promotion_code": "promo_9"}]
    )

    first = deliver(shop.slug, event("checkout.session.completed", session))
    second = deliver(shop.slug, event("checkout.session.completed", session))

    grant.refresh_from_db()
    assert (grant.status, grant.redeemed_order) == (RewardGrant.Status.REDEEMED, "cs_ana")
    assert (first.json()["recorded"], second.json()["recorded"]) == (True, True)
    assert _actions().count("reward.redeemed") == 1
    assert Conversion.objects.count() == 0
