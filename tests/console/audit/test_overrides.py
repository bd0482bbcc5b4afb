"""Overrides and review from a signup's audit page: reassign, unassign, approve or reject, each with a
mandatory reason, through referrals.services; errors as form errors (400), success back to the page with a
message, the counters and rewards following, and the trail saying who, when and why. Marketing and
ambassadors cannot: 403, and nothing changes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from core.actors import Actor
from core.models import AuditEvent
from referrals.models import Signup
from referrals.services import signup_record
from rewards.models import RewardGrant, RewardTier
from rewards.services import tier_create
from tests.factories import enroll
from tests.referrals.helpers import counters_of, row_counts

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


@pytest.fixture
def scene(program, ambassador, django_capture_on_commit_callbacks):
    """Ana's friend signed up with her code (a one-friend voucher unlocked); Bob is beside her; a signup
    from a throw-away address is held for review."""
    bob = enroll(program, "bob@example.com", display_name="Bob")
    tier_create(
        program=program, actor=SYSTEM, name="One friend", kind=RewardTier.Kind.INDIVIDUAL,
        metric=RewardTier.Metric.QUALIFIED_SIGNUPS, threshold=Decimal("1"),
        reward_type=RewardTier.RewardType.PERCENT_VOUCHER, reward_value=Decimal("20"),
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        signup = signup_record(
            program=program, email="friend@example.org", referral_code=ambassador.code, actor=SYSTEM
        )[0]
        held = signup_record(program=program, email="x@mailinator.com", referral_code=bob.code, actor=SYSTEM)[0]
    assert held.status == Signup.Status.PENDING_REVIEW
    return {"program": program, "ana": ambassador, "bob": bob, "signup": signup, "held": held}


@pytest.fixture
def admin_client(auditor):
    client = Client()
    client.force_login(auditor)
    return client


def override(client, signup, **data):
    return client.post(reverse("audit-signup-override", args=[signup.pk]), data)


def review(client, signup, **data):
    return client.post(reverse("audit-signup-review", args=[signup.pk]), data)


def test_reassigning_moves_the_credit_the_counts_and_the_rewards(scene, admin_client,
                                                                 django_capture_on_commit_callbacks):  # fmt: skip
    signup, ana, bob = scene["signup"], scene["ana"], scene["bob"]
    assert (counters_of(ana).qualified, counters_of(bob).qualified) == (1, 0)

    with django_capture_on_commit_callbacks(execute=True):  # the recalculation the service enqueues
        response = override(admin_client, signup, action="reassign", ambassador_code=bob.code.lower(),
                            reason="Bob's newsletter brought her; Ana's click was a retarget")  # fmt: skip

    assert response.status_code == 302 and response["Location"] == reverse("audit-signup", args=[signup.pk])
    signup.refresh_from_db()
    assert (signup.ambassador, signup.method) == (bob, Signup.Method.MANUAL)
    assert (counters_of(ana).qualified, counters_of(bob).qualified) == (0, 1)
    assert (counters_of(ana).signups, counters_of(bob).signups) == (0, 2)
    assert RewardGrant.objects.filter(ambassador=bob).exists()  # Bob's one-friend voucher followed
    event = AuditEvent.objects.filter(action="signup.overridden").get()
    assert (event.actor_label, event.before["ambassador"], event.after["ambassador"]) == ("auditor", ana.code, bob.code)
    page = admin_client.get(response["Location"])
    body = page.content.decode()
    assert f"The signup is now credited to {bob.code}." in body
    assert "Bob&#x27;s newsletter brought her" in body and "auditor" in body
    trail = page.context["audit"].events
    assert [(e.what, e.who) for e in trail][-1] == ("Credit changed by an admin", "auditor")


def test_unassigning_credits_nobody(scene, admin_client):
    signup, ana = scene["signup"], scene["ana"]

    response = override(admin_client, signup, action="unassign", reason="Ana signed up her own second address")

    assert response.status_code == 302
    signup.refresh_from_db()
    assert (signup.ambassador, signup.method) == (None, Signup.Method.NONE)
    assert counters_of(ana).qualified == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "reassign", "ambassador_code": "NOSUCH9", "reason": "why not"}, "No ambassador has this code"),
        ({"action": "reassign", "ambassador_code": "", "reason": "why not"}, "This field is required."),
        ({"action": "reassign", "ambassador_code": "BOB", "reason": "   "}, "Say why"),
        ({"action": "unassign", "reason": ""}, "Say why"),
        ({"action": "shuffle", "reason": "because"}, "Choose to reassign or to unassign."),
    ],
)
def test_a_bad_override_is_a_form_error_and_changes_nothing(scene, admin_client, data, message):
    if data.get("ambassador_code") == "BOB":
        data = {**data, "ambassador_code": scene["bob"].code}
    before = row_counts()

    response = override(admin_client, scene["signup"], **data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert 'class="error-summary"' in response.content.decode()
    assert row_counts() == before
    assert Signup.objects.get(pk=scene["signup"].pk).ambassador == scene["ana"]


def test_reassigning_to_whoever_is_credited_already_is_refused(scene, admin_client):
    response = override(admin_client, scene["signup"], action="reassign", ambassador_code=scene["ana"].code, reason="x")

    assert response.status_code == 400
    assert "already credited" in response.content.decode()


def test_an_ambassador_of_another_program_is_unknown_here(scene, admin_client):
    from tests.factories import ProgramFactory

    stranger = enroll(ProgramFactory(slug="elsewhere"), "eve@example.com")

    response = override(admin_client, scene["signup"], action="reassign", ambassador_code=stranger.code, reason="x")

    assert response.status_code == 400
    assert "No ambassador has this code in this program." in response.content.decode()


@pytest.mark.parametrize(("decision", "status", "qualified"), [("approve", "qualified", 1), ("reject", "rejected", 0)])
def test_reviewing_a_held_signup(scene, admin_client, decision, status, qualified):
    held, bob = scene["held"], scene["bob"]

    response = review(admin_client, held, decision=decision, reason="Checked the order history")

    assert response.status_code == 302
    held.refresh_from_db()
    assert (held.status, held.reason, held.reason_detail) == (status, "reviewed", "Checked the order history")
    assert counters_of(bob).qualified == qualified
    assert AuditEvent.objects.filter(action="signup.reviewed", object_id=str(held.pk)).count() == 1


def test_reviewing_what_is_not_held_is_a_form_error(scene, admin_client):
    before = row_counts()

    response = review(admin_client, scene["signup"], decision="reject", reason="late")
    empty = review(admin_client, scene["held"], decision="approve", reason="")

    assert response.status_code == 400
    assert "This signup is not waiting for review." in response.content.decode()
    assert empty.status_code == 400 and "Say why" in empty.content.decode()
    assert row_counts() == before


@pytest.mark.parametrize("who", ["marketer", "ambassador", "anonymous"])
def test_only_admins_override_or_review(scene, who, marketer):
    client = Client()
    if who == "marketer":
        client.force_login(marketer)
    elif who == "ambassador":
        client.force_login(scene["ana"].user)
    before = row_counts()
    counts = (counters_of(scene["ana"]).qualified, counters_of(scene["bob"]).qualified)

    reassign = override(client, scene["signup"], action="reassign", ambassador_code=scene["bob"].code, reason="me")
    approve = review(client, scene["held"], decision="approve", reason="me")

    expected = 302 if who == "anonymous" else 403
    assert (reassign.status_code, approve.status_code) == (expected, expected)
    assert row_counts() == before
    assert (counters_of(scene["ana"]).qualified, counters_of(scene["bob"]).qualified) == counts
    assert Signup.objects.get(pk=scene["signup"].pk).ambassador == scene["ana"]


def test_the_page_offers_the_changes_to_an_admin(scene, admin_client):
    body = admin_client.get(reverse("audit-signup", args=[scene["signup"].pk])).content.decode()
    assert reverse("audit-signup-override", args=[scene["signup"].pk]) in body


def test_overrides_are_posts_with_a_csrf_token(scene, auditor):
    client = Client(enforce_csrf_checks=True)
    client.force_login(auditor)
    url = reverse("audit-signup", args=[scene["signup"].pk])

    assert client.get(reverse("audit-signup-override", args=[scene["signup"].pk])).status_code == 405
    assert override(client, scene["signup"], action="unassign", reason="no token").status_code == 403
    token = client.get(url).context["csrf_token"]
    done = override(client, scene["signup"], action="unassign", reason="with a token", csrfmiddlewaretoken=str(token))
    assert done.status_code == 302
