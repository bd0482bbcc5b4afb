"""Override API (design 2.6): an admin reassigns or unassigns a signup, with a mandatory reason."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.actors import Actor, pseudonym_of
from core.models import AuditEvent
from referrals.models import Signup
from referrals.services import conversion_record, signup_record
from tests.referrals.helpers import counters_of, program_counters, row_counts

pytestmark = pytest.mark.django_db


@pytest.fixture
def referred(program, ambassador, friend_email):
    """Ana's friend, who bought for 30.00 once the hold period was over."""
    program.hold_period_days = 0
    program.save()
    system = Actor.system("test")
    signup = signup_record(program=program, email=friend_email, referral_code=ambassador.code, actor=system)[0]
    conversion_record(program=program, actor=system, external_id="o-1", amount="30.00", currency="EUR",
                      email=friend_email)  # fmt: skip
    return signup


@pytest.fixture
def admin_api(api, auditor):
    api.force_login(auditor)
    return api


def override(client, program, signup, **body):
    return client.post(f"/api/v1/programs/{program.slug}/signups/{signup.pk}/override", body, format="json")


@pytest.mark.parametrize(
    "body",
    [{"ambassador_code": None}, {"ambassador_code": None, "reason": ""}, {"ambassador_code": None, "reason": "   "}],
)
def test_an_override_without_a_reason_is_a_400_and_changes_nothing(program, referred, admin_api, body):
    before = row_counts()

    response = override(admin_api, program, referred, **body)

    assert response.status_code == 400
    assert "reason" in response.json()
    assert row_counts() == before
    assert Signup.objects.get().method == "code"


def test_reassigning_moves_every_counter_from_one_ambassador_to_the_other(
    program, ambassador, bob, referred, admin_api
):
    assert (counters_of(ambassador).qualified, counters_of(ambassador).conversions) == (1, 1)

    response = override(admin_api, program, referred, ambassador_code=bob.code.lower(), reason="Bob sent the link")

    assert response.status_code == 200
    assert (response.json()["ambassador"], response.json()["method"]) == (bob.code, "manual")
    ana, bobs = counters_of(ambassador), counters_of(bob)
    assert (ana.signups, ana.qualified, ana.conversions, ana.converted_amount) == (0, 0, 0, Decimal("0"))
    assert (bobs.signups, bobs.qualified, bobs.conversions, bobs.converted_amount) == (1, 1, 1, Decimal("30.00"))
    assert program_counters(program.pk).qualified == 1, "the program's subscriber count does not move"


def test_the_override_writes_an_audit_event_with_before_after_reason_and_actor(
    program, ambassador, bob, referred, admin_api, auditor
):
    override(admin_api, program, referred, ambassador_code=bob.code, reason="  Bob sent the link  ")

    event = AuditEvent.objects.get(action="signup.overridden")
    assert (event.object_type, event.object_id, event.program_id) == ("signup", str(referred.pk), program.pk)
    assert event.before["ambassador"] == ambassador.code and event.before["method"] == "code"
    assert event.after["ambassador"] == bob.code and event.after["method"] == "manual"
    assert event.reason == "Bob sent the link"
    # The auditor acts under a pseudonym (erasure-proof) and, being staff, under their username too.
    assert (event.actor_type, event.actor_id, event.actor_label) == ("user", pseudonym_of(auditor), "auditor")
    assert event.actor_id.startswith("u_") and event.actor_id != str(auditor.pk)


def test_unassigning_takes_the_credit_away_from_the_ambassador(program, ambassador, referred, admin_api):
    response = override(admin_api, program, referred, ambassador_code=None, reason="Typo in the code")

    assert response.status_code == 200
    assert (response.json()["ambassador"], response.json()["method"]) == (None, "none")
    ana = counters_of(ambassador)
    assert (ana.signups, ana.qualified, ana.conversions) == (0, 0, 0)
    event = AuditEvent.objects.get(action="signup.overridden")
    assert (event.before["ambassador"], event.after["ambassador"]) == (ambassador.code, None)


def test_crediting_an_unattributed_signup_gives_the_ambassador_its_counts(program, ambassador, admin_api):
    signup = signup_record(program=program, email="direct@example.org", actor=Actor.system())[0]

    override(admin_api, program, signup, ambassador_code=ambassador.code, reason="Told us on the phone")

    assert (counters_of(ambassador).signups, counters_of(ambassador).qualified) == (1, 1)


@pytest.mark.parametrize("code", ["NOSUCH", "bad code", "x" * 65])
def test_override_to_an_unknown_ambassador_is_a_400(program, referred, admin_api, code):
    before = row_counts()

    response = override(admin_api, program, referred, ambassador_code=code, reason="why not")

    assert response.status_code == 400
    assert "ambassador_code" in response.json()
    assert row_counts() == before


def test_override_to_an_ambassador_of_another_program_is_a_400(program, referred, admin_api, other_program):
    from tests.factories import enroll

    stranger = enroll(other_program, "zed@example.com")

    response = override(admin_api, program, referred, ambassador_code=stranger.code, reason="why not")

    assert response.status_code == 400


def test_override_of_a_signup_of_another_program_is_404(program, referred, admin_api, other_program):
    response = admin_api.post(
        f"/api/v1/programs/{other_program.slug}/signups/{referred.pk}/override",
        {"ambassador_code": None, "reason": "x"},
        format="json",
    )

    assert response.status_code == 404
