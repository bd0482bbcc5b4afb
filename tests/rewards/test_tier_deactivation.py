"""Deactivating a tier stops new unlocks only: what it granted stays granted, its referees' welcome
vouchers too, and reactivating it grants what became due meanwhile."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.actors import Actor
from core.models import AuditEvent
from rewards.models import RewardGrant
from rewards.services import ReconcileReport, reconcile, tier_update
from tests.rewards.conftest import subscribe, voucher_tier

pytestmark = pytest.mark.django_db

MARKETING = Actor.system("marketing")


@pytest.fixture
def double_sided(program, ambassador, committed):
    """A voucher for Ana every two friends, and a welcome voucher for each friend; two friends so far."""
    tier = voucher_tier(
        program,
        threshold=2,
        repeat_every=Decimal(2),
        referee_reward_type="percent_voucher",
        referee_reward_value=Decimal(10),
    )
    with committed():
        friends = [subscribe(program, ambassador) for _ in range(2)]
    assert sorted(tier.grants.values_list("status", flat=True)) == ["unlocked"] * 3
    return tier, friends


def test_deactivating_a_tier_takes_back_none_of_the_rewards_it_granted(double_sided, committed, mailoutbox):
    tier, _ = double_sided
    mailoutbox.clear()

    with committed():
        tier_update(tier=tier, is_active=False, actor=MARKETING)

    assert sorted(tier.grants.values_list("status", flat=True)) == ["unlocked"] * 3
    assert not AuditEvent.objects.filter(action="reward.revoked").exists()
    assert mailoutbox == []


def test_an_inactive_double_sided_tier_gives_no_welcome_voucher(program, ambassador, double_sided, committed):
    tier, _ = double_sided
    with committed():
        tier_update(tier=tier, is_active=False, actor=MARKETING)

    with committed():
        latecomers = [subscribe(program, ambassador) for _ in range(2)]

    assert not RewardGrant.objects.filter(referee_signup__in=latecomers).exists()
    assert not tier.grants.filter(ambassador=ambassador, occurrence=2).exists()


def test_the_reconciliation_leaves_an_inactive_tier_alone(program, ambassador, double_sided, committed):
    tier, _ = double_sided
    with committed():
        tier_update(tier=tier, is_active=False, actor=MARKETING)
    with committed():
        subscribe(program, ambassador)

    assert reconcile(program=program).as_dict() == ReconcileReport().as_dict()
    assert sorted(tier.grants.values_list("status", flat=True)) == ["unlocked"] * 3


def test_reactivating_a_tier_grants_what_became_due_while_it_was_inactive(program, ambassador, double_sided, committed):
    tier, _ = double_sided
    with committed():
        tier_update(tier=tier, is_active=False, actor=MARKETING)
    with committed():
        latecomers = [subscribe(program, ambassador) for _ in range(2)]

    with committed():
        tier_update(tier=tier, is_active=True, actor=MARKETING)

    assert sorted(tier.grants.filter(ambassador=ambassador).values_list("occurrence", flat=True)) == [1, 2]
    assert tier.grants.filter(referee_signup__in=latecomers, status="unlocked").count() == 2
    assert reconcile(program=program).as_dict() == ReconcileReport().as_dict()
