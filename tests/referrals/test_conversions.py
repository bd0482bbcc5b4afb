"""Conversions: idempotent on external_id, exact amounts, the hold period, refunds that move counters back."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from core.actors import Actor
from core.models import AuditEvent
from referrals.models import Conversion
from referrals.services import conversions_approve_due, signup_record
from tests.referrals.helpers import counters_of, row_counts

pytestmark = pytest.mark.django_db

START = dt.datetime(2025, 6, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def referee(program, ambassador, friend_email):
    """Ana's friend, subscribed with her code."""
    return signup_record(program=program, email=friend_email, referral_code=ambassador.code, actor=Actor.system())[0]


def order(**overrides):
    body = {"external_id": "order-1", "email": "friend@example.org", "amount": "19.90", "currency": "EUR"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def post(tracker, program, body):
    return tracker.post(f"/api/v1/programs/{program.slug}/conversions", body, format="json")


def refund(tracker, program, external_id):
    return tracker.post(f"/api/v1/programs/{program.slug}/conversions/{external_id}/refund", {}, format="json")


def test_a_conversion_is_recorded_pending_with_its_exact_amount(program, ambassador, referee, tracker):
    response = post(tracker, program, order())

    assert response.status_code == 201
    body = response.json()
    assert (body["external_id"], body["amount"], body["currency"]) == ("order-1", "19.90", "EUR")
    assert (body["status"], body["ambassador"], body["email"]) == ("pending", ambassador.code, "friend@example.org")
    conversion = Conversion.objects.get()
    assert conversion.amount == Decimal("19.90")
    assert conversion.signup == referee
    assert AuditEvent.objects.filter(action="conversion.recorded", object_id=str(conversion.pk)).count() == 1
    assert counters_of(ambassador).conversions == 0, "pending conversions do not count"


def test_referee_can_be_named_by_external_id(program, ambassador, tracker):
    signup_record(program=program, email="ext@example.org", external_id="cust-42", actor=Actor.system(),
                  referral_code=ambassador.code)  # fmt: skip

    response = post(tracker, program, order(email=..., referee_external_id="cust-42"))

    assert response.status_code == 201
    assert response.json()["email"] == "ext@example.org"


def test_the_same_external_id_and_body_again_is_200_with_the_same_object(program, referee, tracker):
    first = post(tracker, program, order())

    again = post(tracker, program, order(amount="19.9", email=" Friend@Example.org"))

    assert again.status_code == 200
    assert again.json() == first.json()
    assert Conversion.objects.count() == 1
    assert AuditEvent.objects.filter(action="conversion.recorded").count() == 1


@pytest.mark.parametrize("change", [{"amount": "19.91"}, {"occurred_at": "2025-01-01T00:00:00Z"}])
def test_the_same_external_id_with_another_body_is_409(program, referee, tracker, change):
    post(tracker, program, order())
    before = row_counts()

    response = post(tracker, program, order(**change))

    assert response.status_code == 409
    assert "external_id" in response.json()
    assert row_counts() == before
    assert Conversion.objects.get().amount == Decimal("19.90")


def test_hold_period_keeps_it_pending_until_the_due_approval_runs(program, ambassador, referee, tracker, time_machine):
    time_machine.move_to(START, tick=False)
    post(tracker, program, order())

    time_machine.move_to(START + dt.timedelta(days=13), tick=False)
    assert conversions_approve_due() == 0
    assert Conversion.objects.get().status == Conversion.Status.PENDING

    time_machine.move_to(START + dt.timedelta(days=14, seconds=1), tick=False)
    assert conversions_approve_due() == 1
    assert conversions_approve_due() == 0, "approving twice counts once"

    conversion = Conversion.objects.get()
    assert conversion.status == Conversion.Status.APPROVED
    counters = counters_of(ambassador)
    assert (counters.conversions, counters.converted_amount) == (1, Decimal("19.90"))
    assert AuditEvent.objects.filter(action="conversion.approved", object_id=str(conversion.pk)).count() == 1


def test_hold_period_zero_approves_at_once(program, ambassador, referee, tracker):
    program.hold_period_days = 0
    program.save()

    response = post(tracker, program, order())

    assert response.status_code == 201
    assert response.json()["status"] == "approved"
    assert counters_of(ambassador).conversions == 1


def test_refund_reverses_and_moves_the_counters_back(program, ambassador, referee, tracker):
    program.hold_period_days = 0
    program.save()
    post(tracker, program, order())
    post(tracker, program, order(external_id="order-2", amount="5.00"))
    assert counters_of(ambassador).converted_amount == Decimal("24.90")

    response = refund(tracker, program, "order-1")

    assert response.status_code == 200
    assert response.json()["status"] == "reversed"
    counters = counters_of(ambassador)
    assert (counters.conversions, counters.converted_amount) == (1, Decimal("5.00"))
    event = AuditEvent.objects.get(action="conversion.reversed")
    assert (event.before, event.after) == ({"status": "approved"}, {"status": "reversed"})

    again = refund(tracker, program, "order-1")
    assert again.status_code == 200
    assert counters_of(ambassador).conversions == 1, "a second refund changes nothing"


def test_refund_of_a_pending_conversion_never_counts_it(program, ambassador, referee, tracker, time_machine):
    time_machine.move_to(START, tick=False)
    post(tracker, program, order())
    refund(tracker, program, "order-1")

    time_machine.move_to(START + dt.timedelta(days=30), tick=False)
    assert conversions_approve_due() == 0
    assert counters_of(ambassador).conversions == 0
    assert Conversion.objects.get().status == Conversion.Status.REVERSED


def test_refund_of_an_unknown_external_id_is_404(program, referee, tracker):
    response = refund(tracker, program, "never-seen")

    assert response.status_code == 404


@pytest.mark.parametrize(
    "amount",
    [
        "-1.00",
        "-0.01",
        "1000000000",
        "1e12",
        "99999999999999999999999999999",
        "NaN",
        "sNaN",
        "Infinity",
        "-Infinity",
        "abc",
        "",
        " ",
        "19,90",
        "1.999",
        "0.001",
        "19.90 EUR",
        "0x10",
        True,
        False,
        None,
        ["19.90"],
        {"value": "19.90"},
    ],
)
def test_bad_amounts_are_a_400_on_the_amount_field(program, referee, tracker, amount):
    before = row_counts()

    response = post(tracker, program, order(amount=amount))

    assert response.status_code == 400, response.content
    assert "amount" in response.json()
    assert row_counts() == before


@pytest.mark.parametrize("amount", ["19.90", "0", "0.01", "999999999.99", " 7.5 ", "12"])
def test_good_amounts_are_kept_exactly(program, referee, tracker, amount):
    response = post(tracker, program, order(amount=amount))

    assert response.status_code == 201
    assert Conversion.objects.get().amount == Decimal(amount.strip())


@pytest.mark.parametrize("currency", ["ZZZ", "EURO", "", "€", 978, None])
def test_unknown_currency_is_a_400_on_the_currency_field(program, referee, tracker, currency):
    response = post(tracker, program, order(currency=currency))

    assert response.status_code == 400
    assert "currency" in response.json()
    assert not Conversion.objects.exists()


def test_a_currency_other_than_the_program_s_is_a_400(program, referee, tracker):
    response = post(tracker, program, order(currency="USD"))

    assert response.status_code == 400
    assert "EUR" in response.json()["currency"][0]


def test_lower_case_currency_is_the_same_currency(program, referee, tracker):
    assert post(tracker, program, order(currency="eur")).status_code == 201


def test_an_unknown_referee_is_a_400(program, referee, tracker):
    by_email = post(tracker, program, order(email="stranger@example.org"))
    by_external_id = post(tracker, program, order(email=..., referee_external_id="nobody"))
    by_neither = post(tracker, program, order(email=...))

    assert (by_email.status_code, list(by_email.json())) == (400, ["email"])
    assert (by_external_id.status_code, list(by_external_id.json())) == (400, ["referee_external_id"])
    assert by_neither.status_code == 400
    assert not Conversion.objects.exists()


def test_a_conversion_in_the_future_is_refused(program, referee, tracker):
    response = post(tracker, program, order(occurred_at="2999-01-01T00:00:00Z"))

    assert response.status_code == 400
    assert "occurred_at" in response.json()


def test_conversion_of_an_unattributed_signup_is_recorded_and_counts_for_nobody(program, ambassador, tracker):
    program.hold_period_days = 0
    program.save()
    signup_record(program=program, email="direct@example.org", actor=Actor.system())

    response = post(tracker, program, order(email="direct@example.org"))

    assert response.status_code == 201
    assert response.json()["ambassador"] is None
    assert counters_of(ambassador).conversions == 0
