"""The export: everything held about one person, and nothing about anybody else."""

from __future__ import annotations

import json

import pytest
from allauth.account.models import EmailAddress

from core.actors import Actor
from core.errors import InvalidInput, NotFound
from core.models import AuditEvent
from rewards.services import person_export, person_find, person_of_user
from tests.factories import UserFactory
from tests.privacy.conftest import ANA, OLIVIER, ZOE

pytestmark = pytest.mark.django_db
STAFF = Actor.system("tests")


def test_a_referee_known_by_email_gets_her_signups_in_every_program_her_purchase_and_her_opt_outs(world):
    data = person_export(person=person_find(email="  ZOE@example.org "), actor=STAFF, reason="Access request")

    assert data["format"] == "parrain.person-export/1"
    assert data["accounts"] == [] and data["ambassador_profiles"] == []
    signups = {s["program"]: s for s in data["signups"]}
    assert set(signups) == {"book-launch", "second-book"}
    first = signups["book-launch"]
    assert first["email"] == ZOE and first["external_id"] == "cust-4242"
    assert first["referred_by"] == world.ana.code  # who referred her: a code, never Ana's address
    assert first["conversions"] == [
        {"external_id": "order-7777", "amount": "19.90", "currency": "EUR",
         "occurred_at": first["conversions"][0]["occurred_at"], "status": "approved"}
    ]  # fmt: skip
    assert data["email_opt_outs"] == [
        {"program": "book-launch", "kind": "price_dropped", "since": data["email_opt_outs"][0]["since"]}
    ]
    assert [e["event"] for e in data["emails_sent"]] == [f"price.dropped:program:{world.program.pk}"]
    text = json.dumps(data)
    assert ANA not in text and OLIVIER not in text and "Ana Martin" not in text


def test_an_ambassador_gets_her_account_profiles_counts_and_rewards_not_her_friends(world):
    data = person_export(person=person_of_user(user=world.ana_user), actor=Actor.for_user(world.ana_user))

    (account,) = data["accounts"]
    assert account["email"] == ANA and account["first_name"] == "Ana" and account["last_name"] == "Martin"
    assert account["email_addresses"] == [{"email": ANA, "verified": True, "primary": True}]
    profiles = {p["program"]: p for p in data["ambassador_profiles"]}
    assert set(profiles) == {"book-launch", "second-book"}
    assert profiles["book-launch"]["display_name"] == "Ana Martin"
    assert profiles["book-launch"]["counts"] == {
        "signups": 2, "qualified": 2, "conversions": 1, "converted_amount": "19.90"
    }  # fmt: skip
    assert [r["tier"] for r in profiles["book-launch"]["rewards"]] == ["One friend"]
    assert data["signups"] == []  # she subscribed to nothing herself
    text = json.dumps(data)
    assert ZOE not in text and OLIVIER not in text and "cust-4242" not in text and "order-7777" not in text


def test_the_export_is_audited_with_ids_and_reason_never_the_data(world):
    person_export(person=person_find(email=ZOE), actor=STAFF, reason="Access request #12")

    event = AuditEvent.objects.get(action="person.exported")
    assert event.reason == "Access request #12"
    assert event.after["signups"] == sorted([world.zoe_signup.pk, world.zoe_second.pk])
    assert ZOE not in json.dumps([event.before, event.after, event.reason, event.actor_label, event.object_id])


def test_an_address_typed_in_but_never_verified_leads_to_nobody_elses_signups(world):
    impostor = UserFactory(username="impostor", email=ZOE)
    EmailAddress.objects.create(user=impostor, email=ZOE, verified=False, primary=True)

    data = person_export(person=person_of_user(user=impostor), actor=Actor.for_user(impostor))

    assert data["signups"] == []
    # Nor does an admin's lookup of Zoé's address take the impostor's account for hers.
    assert impostor.pk not in person_find(email=ZOE).user_ids


@pytest.mark.parametrize("email", ["", "not-an-address", "a@", "@b.com", "x" * 300 + "@example.com", "a b@c.d"])
def test_a_bad_address_is_refused_as_invalid_input(world, email):
    with pytest.raises(InvalidInput):
        person_find(email=email)


def test_an_address_nobody_holds_exports_nothing(world):
    person = person_find(email="nobody@example.com")

    assert not person.found
    with pytest.raises(NotFound):
        person_export(person=person, actor=STAFF)
