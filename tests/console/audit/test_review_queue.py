"""The fraud review queue (/audit/review/): held signups with why, decided one by one or in bulk through
referrals.services.review.signup_review, one audit event per signup, each in its own transaction."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from ambassadors.models import AmbassadorCounters
from core import clock
from core.actors import Actor
from core.models import AuditEvent
from referrals.models import Signup
from referrals.services import signup_record, signup_review
from rewards.models import RewardGrant, RewardTier
from rewards.services import tier_create
from tests.factories import ProgramFactory, enroll
from tests.referrals.helpers import row_counts

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
QUEUE = "/audit/review/"
DECIDE = "/audit/review/decide"


def held(program: Any, email: str, code: str | None) -> Signup:
    """A signup from a throw-away address: held for review (disposable e-mail)."""
    signup = signup_record(program=program, email=email, referral_code=code, actor=SYSTEM)[0]
    assert signup.status == Signup.Status.PENDING_REVIEW
    return signup


@pytest.fixture
def queue(program, ambassador) -> dict[str, Any]:
    other = ProgramFactory(slug="summer-club", name="Summer Club")
    bob = enroll(other, "bob@example.com", display_name="Bob")
    signups = [held(program, f"held{n}@mailinator.com", ambassador.code) for n in range(3)]
    elsewhere = held(other, "elsewhere@mailinator.com", bob.code)
    return {"signups": signups, "elsewhere": elsewhere, "other": other, "bob": bob}


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def texts(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_urls_are_named():
    assert reverse("audit-review") == QUEUE
    assert reverse("audit-review-decide") == DECIDE


def test_the_queue_lists_held_signups_oldest_first_with_why(auditor, program, queue):
    response = signed_in(auditor).get(QUEUE)

    assert response.status_code == 200
    body = response.content.decode()
    emails = ["held0@mailinator.com", "held1@mailinator.com", "held2@mailinator.com", "elsewhere@mailinator.com"]
    positions = [body.index(e) for e in emails]
    assert positions == sorted(positions), "oldest first"
    assert "A disposable (throw-away) e-mail address" in body
    assert "mailinator.com is a disposable domain." in body
    assert "Summer Club" in body and "The Book Launch" in body
    assert f"/audit/signups/{queue['signups'][0].pk}/" in body
    assert 'name="signups"' in body and 'name="reason"' in body


def test_the_queue_filters_by_program_and_leaves_out_decided_signups(auditor, program, ambassador, queue):
    signup_record(program=program, email="fine@example.org", referral_code=ambassador.code, actor=SYSTEM)

    body = signed_in(auditor).get(QUEUE, {"program": "summer-club"}).content.decode()

    assert "elsewhere@mailinator.com" in body
    assert "held0@mailinator.com" not in body
    assert "fine@example.org" not in signed_in(auditor).get(QUEUE).content.decode()


def test_the_queue_pages_by_keyset(auditor, program, ambassador, monkeypatch):
    from console.audit import review

    monkeypatch.setattr(review, "PAGE_SIZE", 2)
    start = clock.now() - timedelta(hours=1)
    for n in range(5):
        monkeypatch.setattr(clock, "now", lambda n=n: start + timedelta(minutes=n))
        held(program, f"p{n}@mailinator.com", ambassador.code)
    monkeypatch.undo()
    monkeypatch.setattr(review, "PAGE_SIZE", 2)
    client, seen, url = signed_in(auditor), [], QUEUE
    for _page in range(3):
        response = client.get(url)
        rows = list(response.context["rows"])
        seen += [row.email for row in rows]
        if not response.context["next_query"]:
            break
        url = f"{QUEUE}?{response.context['next_query']}"

    assert seen == [f"p{n}@mailinator.com" for n in range(5)]


def test_a_bulk_approval_makes_one_audit_event_per_signup_with_reason_and_actor(auditor, queue):
    ids = [s.pk for s in queue["signups"]]

    response = signed_in(auditor).post(DECIDE, {"signups": ids, "decision": "approve", "reason": "Real readers"})

    assert response.status_code == 302 and response["Location"] == QUEUE
    assert set(Signup.objects.filter(pk__in=ids).values_list("status", flat=True)) == {Signup.Status.QUALIFIED}
    events = AuditEvent.objects.filter(action="signup.reviewed").order_by("object_id")
    assert sorted(e.object_id for e in events) == sorted(str(pk) for pk in ids)
    assert {(e.reason, e.actor_label, e.actor_type) for e in events} == {("Real readers", "auditor", "user")}
    assert {e.after["status"] for e in events} == {"qualified"}
    assert "3 signups approved." in texts(response)
    assert Signup.objects.get(pk=queue["elsewhere"].pk).status == Signup.Status.PENDING_REVIEW


def test_a_rejection_of_one(auditor, queue):
    signup = queue["elsewhere"]

    response = signed_in(auditor).post(
        f"{DECIDE}?program=summer-club", {"signups": [signup.pk], "decision": "reject", "reason": "Fake"}
    )

    assert response["Location"] == f"{QUEUE}?program=summer-club"
    assert Signup.objects.get(pk=signup.pk).status == Signup.Status.REJECTED
    assert "1 signup rejected." in texts(response)


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_reason_is_required(auditor, queue, reason):
    before = row_counts()
    ids = [s.pk for s in queue["signups"]]

    response = signed_in(auditor).post(DECIDE, {"signups": ids, "decision": "approve", "reason": reason})

    assert response.status_code == 400
    assert response.context["form"].errors["reason"]
    body = response.content.decode()
    assert "There is a problem" in body and 'id="error-summary"' in body
    assert len(re.findall(r'name="signups"[^>]* checked>', body)) == 3, "the selection is kept"
    assert row_counts() == before
    assert not Signup.objects.exclude(status=Signup.Status.PENDING_REVIEW).filter(pk__in=ids).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decision": "approve", "reason": "r"}, "signups"),
        ({"signups": ["x"], "decision": "approve", "reason": "r"}, "signups"),
        ({"signups": ["1"], "decision": "maybe", "reason": "r"}, "decision"),
    ],
)
def test_bad_input_is_a_form_error_not_a_500(auditor, queue, body, field):
    response = signed_in(auditor).post(DECIDE, body)

    assert response.status_code == 400
    assert field in response.context["form"].errors


def test_a_signup_not_waiting_any_more_is_skipped_and_reported_the_rest_proceed(auditor, queue):
    first, second, third = queue["signups"]
    # Someone else decided the second a moment ago.
    signup_review(signup=second, status=Signup.Status.REJECTED, reason="Spam", actor=SYSTEM)

    response = signed_in(auditor).post(
        DECIDE, {"signups": [first.pk, second.pk, third.pk, 999999], "decision": "approve", "reason": "Fine"}
    )

    assert response.status_code == 302
    assert Signup.objects.get(pk=first.pk).status == Signup.Status.QUALIFIED
    assert Signup.objects.get(pk=second.pk).status == Signup.Status.REJECTED
    assert Signup.objects.get(pk=third.pk).status == Signup.Status.QUALIFIED
    shown = texts(response)
    assert "2 signups approved." in shown
    (warning,) = [m for m in shown if "skipped" in m]
    assert "2 skipped" in warning and "held1@mailinator.com" in warning and "999999" in warning
    assert AuditEvent.objects.filter(action="signup.reviewed", reason="Fine").count() == 2


def test_each_signup_is_decided_in_its_own_transaction(auditor, queue, monkeypatch):
    """No transaction spans the bulk: each call of the service opens its own (the test's own transaction
    is the only one around it), and a failure deciding the second leaves the first and third decided."""
    from django.db import connection

    from console.audit import review

    around: list[int] = []
    calls: list[int] = []
    real = review.signup_review

    def flaky(*, signup: Signup, **kwargs: Any) -> Signup:
        calls.append(signup.pk)
        around.append(len(connection.atomic_blocks))
        if len(calls) == 2:
            from core.errors import Conflict

            raise Conflict("This signup is not waiting for review.", field="status")
        return real(signup=signup, **kwargs)

    monkeypatch.setattr(review, "signup_review", flaky)
    ids = [s.pk for s in queue["signups"]]
    outside = len(connection.atomic_blocks)

    signed_in(auditor).post(DECIDE, {"signups": ids, "decision": "approve", "reason": "Fine"})

    assert calls == sorted(ids)
    assert around == [outside] * 3
    statuses = dict(Signup.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert [statuses[pk] for pk in sorted(ids)] == ["qualified", "pending_review", "qualified"]


def test_marketing_gets_403_and_nothing_changes(marketer, queue):
    before = row_counts()
    ids = [s.pk for s in queue["signups"]]
    client = signed_in(marketer)

    assert client.get(QUEUE).status_code == 403
    assert client.post(DECIDE, {"signups": ids, "decision": "approve", "reason": "x"}).status_code == 403
    assert row_counts() == before
    assert set(Signup.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"pending_review"}


def test_an_ambassador_gets_403_and_anonymous_logs_in(ambassador, queue):
    assert Client().get(QUEUE).status_code == 302
    assert "/accounts/login/" in Client().post(DECIDE, {})["Location"]
    assert ambassador.user is not None
    assert signed_in(ambassador.user).get(QUEUE).status_code == 403


def test_the_counters_and_the_rewards_follow_an_approval(
    auditor, program, ambassador, django_capture_on_commit_callbacks
):
    tier_create(
        program=program, actor=SYSTEM, name="One friend", kind=RewardTier.Kind.INDIVIDUAL,
        metric=RewardTier.Metric.QUALIFIED_SIGNUPS, threshold=Decimal("1"),
        reward_type=RewardTier.RewardType.PERCENT_VOUCHER, reward_value=Decimal("20"),
    )  # fmt: skip
    signup = held(program, "reader@mailinator.com", ambassador.code)
    assert AmbassadorCounters.objects.get(ambassador=ambassador).qualified == 0
    assert not RewardGrant.objects.filter(ambassador=ambassador).exists()

    with django_capture_on_commit_callbacks(execute=True):
        signed_in(auditor).post(DECIDE, {"signups": [signup.pk], "decision": "approve", "reason": "Known reader"})

    assert AmbassadorCounters.objects.get(ambassador=ambassador).qualified == 1
    assert RewardGrant.objects.filter(ambassador=ambassador).count() == 1


def _queue_of(n: int, program: Any, ambassador: Any) -> None:
    for k in range(n):
        held(program, f"q{n}-{k}@mailinator.com", ambassador.code)


def test_the_query_count_of_the_queue_is_constant_in_rows(auditor, program, ambassador, django_assert_num_queries):
    client = signed_in(auditor)
    _queue_of(1, program, ambassador)
    client.get(QUEUE)  # warm the session and the user's groups
    with django_assert_num_queries(5):  # session, user, groups, the page of held signups, the program filter
        first = client.get(QUEUE)
    _queue_of(12, program, ambassador)
    with django_assert_num_queries(5):
        second = client.get(QUEUE)
    assert len(first.context["rows"]) == 1 and len(second.context["rows"]) == 13


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_queue_renders_in_both_languages(auditor, queue, language):
    client = signed_in(auditor)

    response = client.get(QUEUE, HTTP_ACCEPT_LANGUAGE=language)

    assert response.status_code == 200
    assert f'<html lang="{language}">' in response.content.decode()


def test_the_decision_form_carries_its_csrf_token(auditor, queue):
    client = Client(enforce_csrf_checks=True)
    client.force_login(auditor)
    page = client.get(QUEUE).content.decode()
    token = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.split('class="review-decide"')[1])[0]
    signup = queue["signups"][0]
    body = {"signups": [signup.pk], "decision": "reject", "reason": "Spam"}

    assert client.post(DECIDE, body).status_code == 403  # without the token
    assert client.post(DECIDE, {**body, "csrfmiddlewaretoken": token}).status_code == 302
    assert Signup.objects.get(pk=signup.pk).status == Signup.Status.REJECTED
