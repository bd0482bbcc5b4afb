"""Fraud review (design 2.4 and 4): a signup held in `pending_review` is approved or rejected by an admin
or a `manage` key, with a reason; the decision is audited and the rewards are recalculated."""

from __future__ import annotations

import pytest

from core.actors import Actor
from core.errors import Conflict
from core.models import AuditEvent
from referrals.models import Signup
from referrals.services import signup_record, signup_review
from rewards.models import RewardGrant
from tests.conftest import bearer
from tests.referrals.helpers import counters_of, program_counters, row_counts
from tests.rewards.conftest import voucher_tier

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(program, ambassador):
    """A friend of Ana's who signed up with a disposable address: held for review, not counted."""
    signup = signup_record(
        program=program, email="friend@mailinator.com", referral_code=ambassador.code, actor=Actor.system("test")
    )[0]
    assert signup.status == Signup.Status.PENDING_REVIEW
    return signup


@pytest.fixture
def qualified(program, ambassador, friend_email):
    return signup_record(program=program, email=friend_email, referral_code=ambassador.code, actor=Actor.system())[0]


def review(client, program, signup, **body):
    return client.post(f"/api/v1/programs/{program.slug}/signups/{signup.pk}/review", body, format="json")


@pytest.fixture
def admin_api(api, auditor):
    api.force_login(auditor)
    return api


def test_an_admin_approves_a_held_signup_which_then_counts(program, ambassador, held, admin_api):
    response = review(admin_api, program, held, decision="approve", reason="Checked: a real person")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["status"], body["reason"], body["ambassador"]) == (
        held.pk, "qualified", "reviewed", ambassador.code,
    )  # fmt: skip
    assert counters_of(ambassador).qualified == 1
    assert program_counters(program.pk).qualified == 1


def test_a_manage_key_rejects_a_held_signup_with_its_reason_audited(program, ambassador, held, api, manage_key):
    api.credentials(**bearer(manage_key))

    response = review(api, program, held, decision="reject", reason="  A throwaway address  ")

    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    event = AuditEvent.objects.get(action="signup.reviewed")
    assert (event.object_id, event.reason, event.actor_type) == (str(held.pk), "A throwaway address", "api_key")
    assert (event.before["status"], event.after["status"]) == ("pending_review", "rejected")
    assert counters_of(ambassador).qualified == 0


def test_approving_triggers_the_recalculation_that_unlocks_the_reward(
    program, ambassador, held, admin_api, django_capture_on_commit_callbacks
):
    voucher_tier(program, threshold=1)

    with django_capture_on_commit_callbacks(execute=True):
        review(admin_api, program, held, decision="approve", reason="Checked")

    assert RewardGrant.objects.filter(ambassador=ambassador, status="unlocked").count() == 1


def test_a_signup_not_waiting_for_review_is_a_409_and_changes_nothing(program, qualified, admin_api):
    before = row_counts()

    response = review(admin_api, program, qualified, decision="reject", reason="Second thoughts")

    assert response.status_code == 409
    assert response.json() == {"status": ["This signup is not waiting for review."]}
    assert row_counts() == before
    qualified.refresh_from_db()
    assert qualified.status == Signup.Status.QUALIFIED


def test_a_signup_reviewed_once_cannot_be_reviewed_again(program, held, admin_api):
    assert review(admin_api, program, held, decision="reject", reason="fake").status_code == 200

    assert review(admin_api, program, held, decision="approve", reason="changed my mind").status_code == 409


def test_the_service_refuses_a_signup_not_waiting_for_review(qualified):
    with pytest.raises(Conflict) as refused:
        signup_review(signup=qualified, status="rejected", reason="fake", actor=Actor.system("test"))

    assert refused.value.field == "status"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decision": "approve"}, "reason"),
        ({"decision": "approve", "reason": "   "}, "reason"),
        ({"decision": "maybe", "reason": "hmm"}, "decision"),
        ({"reason": "hmm"}, "decision"),
    ],
)
def test_a_review_without_a_decision_or_a_reason_is_a_400(program, held, admin_api, body, field):
    before = row_counts()

    response = review(admin_api, program, held, **body)

    assert response.status_code == 400
    assert field in response.json()
    assert row_counts() == before


@pytest.mark.parametrize(
    ("who", "status"),
    [("nobody", 401), ("outsider", 403), ("marketer", 403), ("track key", 403), ("read key", 403),
     ("other program's key", 403)],
)  # fmt: skip
def test_only_admins_and_manage_keys_review(
    program, held, api, who, status, outsider, marketer, track_key, read_key, other_key
):
    if who in ("outsider", "marketer"):
        api.force_login(outsider if who == "outsider" else marketer)
    elif who != "nobody":
        api.credentials(**bearer({"track key": track_key, "read key": read_key}.get(who, other_key)))

    response = review(api, program, held, decision="approve", reason="ok")

    assert response.status_code == status
    held.refresh_from_db()
    assert held.status == Signup.Status.PENDING_REVIEW


def test_a_signup_of_another_program_is_a_404(program, other_program, held, api, other_key):
    api.credentials(**bearer(other_key))

    response = review(api, other_program, held, decision="approve", reason="ok")

    assert response.status_code == 404
