"""Signups held for review are approved or rejected from the Django admin: an action asks for the reason
on a confirmation page, decides each signup through the review service (audited, recalculated), and says
which ones it skipped."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from core.actors import Actor
from core.models import AuditEvent
from referrals.models import Signup
from referrals.services import signup_record
from tests.factories import UserFactory, staff_user
from tests.referrals.helpers import counters_of

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/referrals/signup/"


@pytest.fixture
def root(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def held(program, ambassador):
    """Two friends of Ana's with disposable addresses, held for review."""
    return [
        signup_record(program=program, email=f"friend{i}@mailinator.com", referral_code=ambassador.code,
                      actor=Actor.system("test"))[0]
        for i in range(2)
    ]  # fmt: skip


@pytest.fixture
def qualified(program, ambassador, friend_email):
    return signup_record(program=program, email=friend_email, referral_code=ambassador.code, actor=Actor.system())[0]


def shown(response) -> list[str]:
    """The messages the change list shows after the action."""
    return [str(m) for m in response.context["messages"]]


def select(action: str, signups: list[Signup], **extra: str) -> dict:
    return {"action": action, "_selected_action": [s.pk for s in signups], **extra}


def test_the_approve_action_first_asks_for_a_reason(root, held):
    response = root.post(CHANGELIST, select("approve_selected", held))

    assert response.status_code == 200
    assert "admin/referrals/signup/review_confirmation.html" in [t.name for t in response.templates]
    assert 'name="reason"' in response.content.decode()
    assert all(s.status == "pending_review" for s in Signup.objects.all())


def test_approving_with_a_reason_qualifies_each_held_signup_audited(root, held, ambassador):
    response = root.post(CHANGELIST, select("approve_selected", held, apply="1", reason="Checked by phone"),
                         follow=True)  # fmt: skip

    assert response.status_code == 200
    assert {s.status for s in Signup.objects.all()} == {"qualified"}
    events = AuditEvent.objects.filter(action="signup.reviewed")
    assert sorted(int(e.object_id) for e in events) == sorted(s.pk for s in held)
    assert {(e.reason, e.actor_label) for e in events} == {("Checked by phone", "root")}
    assert counters_of(ambassador).qualified == 2
    assert shown(response) == ["2 signup(s) approved."]


def test_rejecting_with_a_reason_rejects_and_skips_those_not_waiting_for_review(root, held, qualified):
    response = root.post(CHANGELIST, select("reject_selected", [*held, qualified], apply="1", reason="Fake"),
                         follow=True)  # fmt: skip

    assert [Signup.objects.get(pk=s.pk).status for s in held] == ["rejected", "rejected"]
    qualified.refresh_from_db()
    assert qualified.status == "qualified"
    assert shown(response) == [f"{qualified.email}: This signup is not waiting for review.", "2 signup(s) rejected."]


def test_a_decision_without_a_reason_shows_the_page_again_and_decides_nothing(root, held):
    response = root.post(CHANGELIST, select("reject_selected", held, apply="1", reason="  "))

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert {s.status for s in Signup.objects.all()} == {"pending_review"}
    assert not AuditEvent.objects.filter(action="signup.reviewed").exists()


def test_marketing_staff_do_not_get_the_review_actions(client, held):
    marketer = staff_user("marketer", group="marketing")
    marketer.user_permissions.add(Permission.objects.get(codename="view_signup"))
    client.force_login(marketer)

    client.post(CHANGELIST, select("approve_selected", held, apply="1", reason="ok"))

    assert {s.status for s in Signup.objects.all()} == {"pending_review"}
