"""Strict input: amounts are plain ASCII decimals with the currency's places; names of programs, tiers,
links and ambassadors hold no line break or invisible control character; external ids neither."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail

from ambassadors.models import Ambassador, Program
from core.actors import Actor
from core.errors import InvalidInput
from referrals.models import Conversion, ReferralLink
from referrals.services import link_create, parse_amount, signup_record
from rewards.models import RewardGrant, RewardTier
from rewards.tasks import grant_notify
from tests.conftest import bearer
from tests.referrals.helpers import row_counts
from tests.rewards.conftest import subscribe, voucher_tier

pytestmark = pytest.mark.django_db


@pytest.fixture
def referee(program, ambassador, friend_email):
    return signup_record(program=program, email=friend_email, referral_code=ambassador.code, actor=Actor.system())[0]


def post_conversion(tracker, program, amount, currency="EUR", external_id="order-1"):
    body = {"external_id": external_id, "email": "friend@example.org", "amount": amount, "currency": currency}
    return tracker.post(f"/api/v1/programs/{program.slug}/conversions", body, format="json")


# --- Amounts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [
        "1_000",  # Python's Decimal reads underscores as digit separators
        "1_0.00",
        "١٢٣",  # Arabic-Indic digits: Decimal reads any Unicode digit
        "١٢.٥٠",
        "１２",  # fullwidth
        "१२",  # Devanagari
        "1e3",
        "1E2",
        "+5",
        "5.",
        ".5",
        "19.999",
        "0.001",
        19.9,  # a JSON number: it went through a binary float before reaching us
        19.0,
    ],
)
def test_an_amount_that_is_not_a_plain_decimal_is_a_400_on_the_amount_field(program, referee, tracker, amount):
    before = row_counts()

    response = post_conversion(tracker, program, amount)

    assert response.status_code == 400, (amount, response.content)
    assert "amount" in response.json()
    assert row_counts() == before


@pytest.mark.parametrize(("amount", "stored"), [("19.9", "19.90"), ("19.90", "19.90"), (" 19.90 ", "19.90"),
                                                 ("7", "7.00"), (12, "12.00"), ("0", "0.00")])  # fmt: skip
def test_a_plain_decimal_or_a_whole_json_number_is_kept_exactly(program, referee, tracker, amount, stored):
    response = post_conversion(tracker, program, amount)

    assert response.status_code == 201, response.content
    assert response.json()["amount"] == stored
    assert Conversion.objects.get().amount == Decimal(stored)


@pytest.mark.parametrize(
    ("currency", "amount", "ok"),
    [("JPY", "100", True), ("JPY", "100.5", False), ("JPY", "100.0", False), ("EUR", "19.9", True),
     ("EUR", "19.999", False)],
)  # fmt: skip
def test_an_amount_has_at_most_the_currencys_minor_unit_places(currency, amount, ok):
    if ok:
        assert parse_amount(amount, currency) == Decimal(amount)
    else:
        with pytest.raises(InvalidInput) as refused:
            parse_amount(amount, currency)
        assert refused.value.field == "amount"


def test_a_yen_program_refuses_fractional_yen_over_the_api(ambassador, tracker, api, program):
    program.currency = "JPY"
    program.base_price = program.floor_price = None
    program.save()
    signup_record(program=program, email="friend@example.org", referral_code=ambassador.code, actor=Actor.system())

    refused = post_conversion(tracker, program, "100.5", currency="JPY")
    accepted = post_conversion(tracker, program, "100", currency="JPY", external_id="order-2")

    assert refused.status_code == 400 and "amount" in refused.json()
    assert accepted.status_code == 201


@pytest.mark.parametrize("currency", ["BHD", "KWD", "CLF"])
def test_a_program_cannot_count_in_a_currency_with_more_places_than_amounts_are_stored_with(api, marketer, currency):
    api.force_login(marketer)

    response = api.post("/api/v1/programs/", {"slug": "dinars", "name": "Dinars", "currency": currency}, format="json")

    assert response.status_code == 400
    assert "cannot count in" in response.json()["currency"][0]
    assert not Program.objects.filter(slug="dinars").exists()


# --- Control characters in names ---------------------------------------------------------------------

CONTROL = ["Launch\r\nBcc: victim@example.org", "Tab\there", "Zero\u200bwidth", "Bidi\u202eevil", "Line\u2028sep",
           "Del\x7f", "C1\x85control"]  # fmt: skip


@pytest.mark.parametrize("name", CONTROL)
def test_a_program_name_with_a_control_character_is_refused_by_the_api(api, marketer, program, name):
    api.force_login(marketer)

    created = api.post("/api/v1/programs/", {"slug": "new-one", "name": name, "currency": "EUR"}, format="json")
    changed = api.patch(f"/api/v1/programs/{program.slug}/", {"name": name}, format="json")

    assert created.status_code == 400 and "name" in created.json(), created.content
    assert changed.status_code == 400 and "name" in changed.json(), changed.content
    program.refresh_from_db()
    assert program.name == "The Book Launch"


@pytest.mark.parametrize("field", ["name", "reward_text"])
def test_a_tier_name_or_reward_text_with_a_line_break_is_refused(program, api, manage_key, field):
    api.credentials(**bearer(manage_key))
    body = {"name": "3 friends", "kind": "individual", "threshold": "3", "reward_type": "custom",
            "reward_text": "A signed copy"}  # fmt: skip
    body[field] = "A signed\r\ncopy"

    created = api.post(f"/api/v1/programs/{program.slug}/tiers/", body, format="json")
    tier = voucher_tier(program)
    changed = api.patch(f"/api/v1/programs/{program.slug}/tiers/{tier.pk}/", {field: "x\ny"}, format="json")

    assert created.status_code == 400 and field in created.json(), created.content
    assert changed.status_code == 400 and field in changed.json(), changed.content
    assert RewardTier.objects.count() == 1


@pytest.mark.parametrize("channel", ["news\r\nletter", "insta\tgram", "tik\u200btok"])
def test_a_link_channel_with_a_control_character_is_refused(ambassador, channel):
    with pytest.raises(InvalidInput) as refused:
        link_create(ambassador=ambassador, channel=channel)

    assert refused.value.field == "channel"
    assert not ReferralLink.objects.exists()


@pytest.mark.parametrize("display_name", ["Ana\r\nBcc: x@example.org", "Ana\u202e"])
def test_an_ambassador_display_name_with_a_control_character_is_refused(program, api, track_key, display_name):
    api.credentials(**bearer(track_key))

    response = api.post(f"/api/v1/programs/{program.slug}/ambassadors",
                        {"email": "new@example.com", "display_name": display_name}, format="json")  # fmt: skip

    assert response.status_code == 400
    assert "display_name" in response.json()
    assert not Ambassador.objects.filter(email="new@example.com").exists()


@pytest.mark.parametrize(
    "display_name", ["Ana \U0001f468\u200d\U0001f469\u200d\U0001f467", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0645"]
)
def test_a_display_name_keeps_emoji_sequences_and_persian_non_joiners(program, api, track_key, display_name):
    api.credentials(**bearer(track_key))

    response = api.post(f"/api/v1/programs/{program.slug}/ambassadors",
                        {"email": "new@example.com", "display_name": display_name}, format="json")  # fmt: skip

    assert response.status_code == 201, response.json()
    assert Ambassador.objects.get(email="new@example.com").display_name == display_name


@pytest.mark.parametrize("external_id", ["order\n1", "order\r1", "order\t1", "order\x851", "order\u200b1"])
def test_an_external_id_with_a_control_character_is_refused(program, referee, tracker, external_id):
    before = row_counts()

    response = post_conversion(tracker, program, "19.90", external_id=external_id)

    assert response.status_code == 400
    assert "external_id" in response.json()
    assert row_counts() == before


# --- E-mails built from names stored before the check ------------------------------------------------


def test_the_unlock_email_is_sent_even_when_a_stored_name_holds_a_line_break(
    program, ambassador, django_capture_on_commit_callbacks
):
    voucher_tier(program, threshold=1)
    # Rows written before names were checked: the services refuse such names now.
    Program.objects.filter(pk=program.pk).update(name="Book\r\nLaunch")
    RewardTier.objects.update(name="One friend\r\nBcc: victim@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        subscribe(program, ambassador)  # the unlock e-mail goes on commit
    grant = RewardGrant.objects.get()

    grant_notify(grant.pk, "revoked")

    assert [m.subject for m in mail.outbox if "a friend subscribed" not in m.subject] == [
        "Book Launch: you unlocked “One friend Bcc: victim@example.org”",
        "Book Launch: a reward was withdrawn",
    ]
    assert all(m.bcc == [] and m.to == ["ana@example.com"] for m in mail.outbox)
