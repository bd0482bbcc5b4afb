"""Erasure: nothing left names the person; every count, price, reward and milestone stays; the trail keeps
its integrity and says who erased whom; a second erasure changes nothing."""

from __future__ import annotations

import json

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction

from ambassadors.models import Ambassador, AmbassadorCounters, ProgramCounters
from core.actors import Actor
from core.errors import InvalidInput, NotFound
from core.models import ActorPseudonym, AuditEvent, EmailOptOut, Notification
from referrals.models import Conversion, Signup
from rewards.models import Milestone, RewardGrant
from rewards.selectors import program_price
from rewards.services import person_erase, person_find, person_of_user, reconcile
from tests.factories import staff_user
from tests.privacy.conftest import ANA, OLIVIER, ZOE

pytestmark = pytest.mark.django_db
User = get_user_model()

ERASED_VALUES = (ZOE, ANA, "Ana Martin", "Ana M.", "cust-4242", "order-7777")


def _auditor_actor():
    return Actor.for_user(staff_user("auditor", group="auditors"))


def _erase_both(world):
    person_erase(person=person_find(email=ZOE), actor=_auditor_actor(), reason="Erasure request #7")
    person_erase(person=person_of_user(user=world.ana_user), actor=Actor.for_user(world.ana_user), reason="Self")


def _rows_holding(value: str) -> dict[str, int]:
    """Every table of the database, each row read whole as text (PostgreSQL), searched for `value`."""
    found = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT count(*) FROM {quoted} t WHERE t::text ILIKE %s", [f"%{value}%"])  # noqa: S608
            if count := cursor.fetchone()[0]:
                found[table] = count
    return found


def _state(world) -> dict:
    return {
        "program": list(ProgramCounters.objects.order_by("pk").values_list("pk", "signups", "qualified")),
        "ambassadors": list(
            AmbassadorCounters.objects.order_by("pk").values_list(
                "pk", "signups", "qualified", "conversions", "converted_amount"
            )
        ),
        "milestones": list(Milestone.objects.order_by("pk").values_list("pk", "occurrence", "count_at", "price_after")),
        "grants": list(RewardGrant.objects.order_by("pk").values_list("pk", "status", "voucher_code")),
        "signups": list(
            Signup.objects.order_by("pk").values_list("pk", "program_id", "ambassador_id", "status", "method")
        ),
        "conversions": list(Conversion.objects.order_by("pk").values_list("pk", "signup_id", "amount", "status")),
        "prices": [program_price(world.program), program_price(world.second)],
    }


@pytest.mark.postgres
def test_no_table_holds_the_erased_addresses_names_or_ids_any_more(world):
    for value in ERASED_VALUES:
        assert _rows_holding(value), f"the world should hold {value} before the erasure"

    _erase_both(world)

    for value in (ZOE, ANA, "Ana Martin", "Ana M.", "cust-4242"):
        assert _rows_holding(value) == {}, value
    # The order number is the shop's own: only the webhook messages sent back to the shop still carry it.
    assert set(_rows_holding("order-7777")) <= {"core_outboxmessage"}
    assert _rows_holding(OLIVIER)  # somebody else's data is untouched


def test_the_erased_rows_carry_one_pseudonym_and_the_accounts_cannot_sign_in(world, client):
    _erase_both(world)

    zoe = Signup.objects.get(pk=world.zoe_signup.pk)
    assert zoe.email.startswith("erased-") and zoe.email.endswith("@erased.invalid")
    assert zoe.email == zoe.email_canonical
    assert Signup.objects.get(pk=world.zoe_second.pk).email == zoe.email  # one person, one pseudonym
    assert zoe.external_id == f"{zoe.email.split('@')[0]}-s{zoe.pk}"
    assert Conversion.objects.get(pk=world.zoe_conversion.pk).external_id.startswith("erased-")
    user = User.objects.get(pk=world.ana_user.pk)
    assert user.username.startswith("erased-") and user.email.endswith("@erased.invalid")
    assert (user.first_name, user.last_name, user.is_active, user.has_usable_password()) == ("", "", False, False)
    assert not EmailAddress.objects.filter(user=user).exists()
    assert not ActorPseudonym.objects.filter(user=user).exists()
    profiles = Ambassador.objects.filter(pk__in=[world.ana.pk, world.ana_second.pk])
    assert {(p.display_name, p.is_active, p.email == user.email) for p in profiles} == {("", False, True)}
    assert not client.login(username=ANA, password="pw-for-tests")
    assert not EmailOptOut.objects.exists()
    assert not Notification.objects.filter(recipient__in=[ZOE, ANA]).exists()
    assert Notification.objects.filter(recipient=zoe.email).exists()


def test_every_count_price_reward_and_milestone_stays_and_reconciliation_repairs_nothing(world):
    assert Milestone.objects.exists(), "the world should have reached a price drop"
    before = _state(world)

    _erase_both(world)

    assert _state(world) == before
    report = reconcile()
    assert report.as_dict() == dict.fromkeys(report.as_dict(), 0)
    assert _state(world) == before


def test_the_erasure_event_says_who_erased_whom_and_never_the_data(world):
    auditor = staff_user("auditor", group="auditors")

    result = person_erase(person=person_find(email=ZOE), actor=Actor.for_user(auditor), reason=f"Request from {ZOE}")

    event = AuditEvent.objects.get(action="person.erased")
    assert event.pk == result.event_id
    assert event.actor_label == "auditor"
    assert event.after["pseudonym"] == result.pseudonym
    assert event.after["signups"] == sorted([world.zoe_signup.pk, world.zoe_second.pk])
    assert event.reason == f"Request from {result.pseudonym}@erased.invalid"  # the address typed in is redacted
    row = json.dumps([event.before, event.after, event.reason, event.actor_label, event.object_id])
    assert all(value not in row for value in ERASED_VALUES)


def test_the_trail_keeps_every_event_and_its_shape_with_pseudonyms_in_place_of_the_values(world):
    before = {e.pk: (e.action, e.object_type, e.object_id, e.actor_id, e.created_at) for e in AuditEvent.objects.all()}
    named = AuditEvent.objects.get(action="ambassador.updated", object_id=str(world.ana.pk))
    recorded = AuditEvent.objects.get(action="conversion.recorded")

    _erase_both(world)

    after = {e.pk: (e.action, e.object_type, e.object_id, e.actor_id, e.created_at) for e in AuditEvent.objects.all()}
    assert {pk: row for pk, row in after.items() if pk in before} == before
    named.refresh_from_db()
    assert named.after["display_name"] == "[erased]"
    recorded.refresh_from_db()
    assert recorded.after["external_id"] == Conversion.objects.get().external_id
    declared = AuditEvent.objects.filter(action="person.erased").values_list("after__redacted_events", flat=True)
    assert {named.pk, recorded.pk} <= {pk for ids in declared for pk in ids}


def test_a_second_erasure_changes_nothing_and_records_nothing(world):
    first = person_erase(person=person_find(email=ZOE), actor=_auditor_actor(), reason="Erasure request #7")
    snapshot = (
        list(Signup.objects.order_by("pk").values()),
        AuditEvent.objects.count(),
    )

    with pytest.raises(NotFound):  # the address is gone: nothing leads to her any more
        person_erase(person=person_find(email=ZOE), actor=_auditor_actor(), reason="Again")
    again = person_erase(
        person=person_find(email=f"{first.pseudonym}@erased.invalid"), actor=_auditor_actor(), reason="Again"
    )

    assert again.already_erased
    assert (list(Signup.objects.order_by("pk").values()), AuditEvent.objects.count()) == snapshot


def test_an_erasure_without_a_reason_is_refused_and_changes_nothing(world):
    with pytest.raises(InvalidInput):
        person_erase(person=person_find(email=ZOE), actor=_auditor_actor(), reason="   ")

    assert Signup.objects.filter(email=ZOE).count() == 2


# --- The trail's trigger (PostgreSQL): still append-only after an erasure, but for its declared redaction


def _events_of_erasure(world):
    _erase_both(world)
    erasure = AuditEvent.objects.filter(action="person.erased").order_by("pk").first()
    redacted = AuditEvent.objects.get(pk=erasure.after["redacted_events"][0])
    return erasure, redacted


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE core_auditevent SET reason = 'rewritten' WHERE id = %s",
        "UPDATE core_auditevent SET after = '{}' WHERE id = %s",
        "DELETE FROM core_auditevent WHERE id = %s",
    ],
)
def test_after_an_erasure_the_trail_still_refuses_update_and_delete(world, sql):
    erasure, redacted = _events_of_erasure(world)

    for event in (erasure, redacted):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.filter(pk__in=[erasure.pk, redacted.pk]).count() == 2


@pytest.mark.postgres
def test_the_redaction_setting_opens_only_the_listed_events_and_only_their_data_columns(world):
    erasure, redacted = _events_of_erasure(world)
    unlisted = AuditEvent.objects.exclude(pk__in=erasure.after["redacted_events"]).exclude(pk=erasure.pk).first()
    attempts = [
        ("UPDATE core_auditevent SET reason = 'x' WHERE id = %s", unlisted.pk),  # not declared by the erasure
        ("UPDATE core_auditevent SET action = 'x' WHERE id = %s", redacted.pk),  # declared, but not a data column
        ("UPDATE core_auditevent SET created_at = now() WHERE id = %s", redacted.pk),
        ("UPDATE core_auditevent SET after = '{}' WHERE id = %s", erasure.pk),  # the declaration itself
        ("DELETE FROM core_auditevent WHERE id = %s", redacted.pk),
    ]
    for sql, pk in attempts:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('parrain.audit_erasure_event', %s, true)", [str(erasure.pk)])
            cursor.execute(sql, [pk])
    # What the exception is for: the data columns of a declared event, in the erasure's transaction.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('parrain.audit_erasure_event', %s, true)", [str(erasure.pk)])
        cursor.execute("UPDATE core_auditevent SET reason = reason WHERE id = %s", [redacted.pk])
