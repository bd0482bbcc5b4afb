"""Every admin list page answers for a superuser, and read-only rows cannot be edited or deleted there."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib import admin
from django.urls import reverse

from core.actors import Actor
from referrals.services import signup_record
from rewards.models import RewardGrant
from rewards.services import tier_create
from tests.factories import UserFactory


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def some_data(ambassador, django_capture_on_commit_callbacks):
    tier_create(
        actor=Actor.system("tests"),
        program=ambassador.program, name="One friend", kind="individual", threshold=Decimal("1"),
        reward_type="percent_voucher", reward_value=Decimal("10"),
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):  # the recalculation runs after commit
        signup_record(
            program=ambassador.program, email="f@example.org", referral_code=ambassador.code, actor=Actor.system()
        )


@pytest.mark.parametrize(
    "model", [m for m in admin.site._registry if m._meta.app_label in {"ambassadors", "referrals", "rewards"}]
)
def test_admin_changelist_answers(client, superuser, some_data, model):
    client.force_login(superuser)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")

    assert client.get(url).status_code == 200


def test_redeem_action_marks_the_voucher_redeemed_with_an_audit_event(client, superuser, some_data):
    from core.models import AuditEvent

    grant = RewardGrant.objects.get()
    client.force_login(superuser)
    url = reverse("admin:rewards_rewardgrant_changelist")

    client.post(url, {"action": "mark_redeemed", "_selected_action": [grant.pk]})

    grant.refresh_from_db()
    assert grant.status == RewardGrant.Status.REDEEMED
    assert AuditEvent.objects.filter(action="reward.redeemed", object_id=str(grant.pk)).exists()


def test_audit_event_cannot_be_deleted_from_the_admin(client, superuser, some_data):
    from core.models import AuditEvent

    event = AuditEvent.objects.first()
    client.force_login(superuser)

    response = client.post(reverse("admin:core_auditevent_delete", args=[event.pk]), {"post": "yes"})

    assert response.status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()
