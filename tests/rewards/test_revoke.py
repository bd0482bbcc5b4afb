"""When a counted signup is rejected, a conversion refunded or a signup overridden away: a grant not yet
redeemed is revoked (audit event, e-mail); a redeemed one is flagged for staff and kept."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.actors import Actor
from core.errors import InvalidInput
from core.models import AuditEvent
from referrals.services import (
    conversion_approve,
    conversion_record,
    conversion_refund,
    signup_override,
    signup_status_change,
)
from rewards.models import RewardGrant, RewardTier
from rewards.services import ReconcileReport, grant_redeem, reconcile
from tests.conftest import bearer
from tests.factories import enroll
from tests.rewards.conftest import SHOP, subscribe, voucher_tier

pytestmark = pytest.mark.django_db

ADMIN = Actor.system("fraud review")


@pytest.fixture
def unlocked(program, ambassador, committed):
    """Ana has two qualified friends and the voucher they unlocked."""
    voucher_tier(program, threshold=2, name="Two friends")
    with committed():
        friends = [subscribe(program, ambassador) for _ in range(2)]
    return RewardGrant.objects.get(), friends


def test_rejecting_a_counted_signup_revokes_the_unredeemed_grant(unlocked, committed, mailoutbox):
    grant, friends = unlocked
    mailoutbox.clear()

    with committed():
        signup_status_change(signup=friends[0], status="rejected", reason="fake address", actor=ADMIN)

    grant.refresh_from_db()
    assert (grant.status, grant.flagged) == ("revoked", False)
    assert grant.revoked_at is not None
    event = AuditEvent.objects.get(action="reward.revoked")
    assert (event.object_id, event.before["status"], event.after["status"]) == (str(grant.pk), "unlocked", "revoked")
    assert "fell below occurrence 1" in event.reason
    assert [m.to for m in mailoutbox] == [["ana@example.com"]]
    assert "withdrawn" in mailoutbox[0].subject


def test_a_revoked_voucher_is_no_longer_shown(program, ambassador, unlocked, committed, api, read_key):
    grant, friends = unlocked
    with committed():
        signup_status_change(signup=friends[0], status="rejected", reason="fake address", actor=ADMIN)

    body = api.get(f"/api/v1/programs/{program.slug}/ambassadors/{ambassador.code}", **bearer(read_key)).json()

    assert body["rewards"] == [{"tier": "Two friends", "occurrence": 1, "status": "revoked", "voucher_code": None}]


def test_a_redeemed_grant_is_flagged_for_staff_and_kept(unlocked, committed, mailoutbox):
    grant, friends = unlocked
    grant_redeem(grant=grant, actor=Actor.system("shop checkout"))
    mailoutbox.clear()

    with committed():
        signup_status_change(signup=friends[0], status="rejected", reason="fake address", actor=ADMIN)

    grant.refresh_from_db()
    assert (grant.status, grant.flagged) == ("redeemed", True)
    assert AuditEvent.objects.filter(action="reward.flagged", object_id=str(grant.pk)).count() == 1
    assert not AuditEvent.objects.filter(action="reward.revoked").exists()
    assert mailoutbox == []


def test_redeeming_is_audited_and_only_once(unlocked):
    grant, _ = unlocked

    grant_redeem(grant=grant, actor=Actor.system("shop checkout"))
    with pytest.raises(InvalidInput):
        grant_redeem(grant=grant, actor=Actor.system("shop checkout"))

    assert AuditEvent.objects.filter(action="reward.redeemed", object_id=str(grant.pk)).count() == 1


def test_a_revoked_voucher_cannot_be_redeemed(unlocked, committed):
    grant, friends = unlocked
    with committed():
        signup_status_change(signup=friends[0], status="rejected", reason="fake address", actor=ADMIN)
    grant.refresh_from_db()

    with pytest.raises(InvalidInput):
        grant_redeem(grant=grant, actor=Actor.system("shop checkout"))


def test_overriding_a_signup_away_revokes_the_grant_and_credits_the_other_ambassador(program, unlocked, committed):
    grant, friends = unlocked
    bob = enroll(program, "bob@example.com")
    with committed():
        subscribe(program, bob)

    with committed():
        signup_override(signup=friends[1], ambassador=bob, reason="Bob sent the link first", actor=ADMIN)

    grant.refresh_from_db()
    assert grant.status == "revoked"
    assert RewardGrant.objects.get(ambassador=bob).status == "unlocked"


def test_overriding_a_signup_to_nobody_revokes_the_grant(unlocked, committed):
    grant, friends = unlocked

    with committed():
        signup_override(signup=friends[1], ambassador=None, reason="Walked in by themselves", actor=ADMIN)

    grant.refresh_from_db()
    assert grant.status == "revoked"


def test_a_refund_revokes_a_grant_of_approved_conversions(program, ambassador, committed, mailoutbox):
    tier = voucher_tier(program, threshold=1, metric=RewardTier.Metric.APPROVED_CONVERSIONS)
    with committed():
        friend = subscribe(program, ambassador)
        conversion, _ = conversion_record(
            program=program, actor=SHOP, external_id="order-1", email=friend.email, amount="30.00", currency="EUR"
        )
        conversion_approve(conversion_id=conversion.pk, actor=SHOP)
    grant = tier.grants.get()
    mailoutbox.clear()

    with committed():
        conversion_refund(program=program, external_id="order-1", actor=SHOP, reason="chargeback")

    grant.refresh_from_db()
    assert grant.status == "revoked"
    assert AuditEvent.objects.filter(action="reward.revoked", object_id=str(grant.pk)).count() == 1
    assert len(mailoutbox) == 1


def test_qualifying_again_reinstates_the_grant_with_a_fresh_voucher(unlocked, committed):
    grant, friends = unlocked
    with committed():
        signup_status_change(signup=friends[0], status="rejected", reason="looked fake", actor=ADMIN)
    dead_code = RewardGrant.objects.get().voucher_code

    with committed():
        signup_status_change(signup=friends[0], status="qualified", reason="checked: a real person", actor=ADMIN)

    grant.refresh_from_db()
    assert (grant.status, grant.occurrence) == ("unlocked", 1)
    assert grant.voucher_code != dead_code
    assert RewardGrant.objects.count() == 1


def test_only_the_occurrences_above_the_new_count_are_revoked(program, ambassador, committed):
    voucher_tier(program, threshold=1, repeat_every=Decimal(1))
    with committed():
        friends = [subscribe(program, ambassador) for _ in range(3)]

    with committed():
        signup_status_change(signup=friends[2], status="rejected", reason="duplicate person", actor=ADMIN)

    assert dict(RewardGrant.objects.values_list("occurrence", "status")) == {
        1: "unlocked", 2: "unlocked", 3: "revoked",
    }  # fmt: skip


def test_rejecting_a_referee_revokes_their_welcome_voucher(program, ambassador, committed):
    tier = voucher_tier(program, threshold=5, referee_reward_type="percent_voucher", referee_reward_value=Decimal("10"))
    with committed():
        friend = subscribe(program, ambassador)
    welcome = tier.grants.get(referee_signup=friend)

    with committed():
        signup_status_change(signup=friend, status="rejected", reason="fake address", actor=ADMIN)

    welcome.refresh_from_db()
    assert welcome.status == "revoked"
    assert AuditEvent.objects.filter(action="reward.revoked", object_id=str(welcome.pk)).count() == 1


def test_a_flagged_voucher_is_cleared_when_its_referral_qualifies_again(unlocked, committed):
    grant, friends = unlocked
    grant_redeem(grant=grant, actor=Actor.system("shop checkout"))
    with committed():
        signup_status_change(signup=friends[0], status="rejected", reason="looked fake", actor=ADMIN)

    with committed():
        signup_status_change(signup=friends[0], status="qualified", reason="checked: a real person", actor=ADMIN)

    grant.refresh_from_db()
    assert (grant.status, grant.flagged) == ("redeemed", False)
    assert AuditEvent.objects.filter(action="reward.unflagged", object_id=str(grant.pk)).count() == 1
    assert reconcile(program=grant.tier.program).as_dict() == ReconcileReport().as_dict()


def test_a_referee_who_qualifies_again_gets_a_fresh_welcome_voucher(program, ambassador, committed):
    tier = voucher_tier(program, threshold=5, referee_reward_type="percent_voucher", referee_reward_value=Decimal("10"))
    with committed():
        friend = subscribe(program, ambassador)
    with committed():
        signup_status_change(signup=friend, status="rejected", reason="looked fake", actor=ADMIN)
    dead_code = tier.grants.get().voucher_code

    with committed():
        signup_status_change(signup=friend, status="qualified", reason="checked: a real person", actor=ADMIN)

    welcome = tier.grants.get(referee_signup=friend)
    assert welcome.status == "unlocked"
    assert welcome.voucher_code != dead_code


def test_a_referee_no_longer_referred_by_anyone_loses_the_welcome_voucher(program, ambassador, committed):
    tier = voucher_tier(program, threshold=5, referee_reward_type="percent_voucher", referee_reward_value=Decimal("10"))
    with committed():
        friend = subscribe(program, ambassador)

    with committed():
        signup_override(signup=friend, ambassador=None, reason="Walked in by themselves", actor=ADMIN)
    with committed():
        signup_status_change(signup=friend, status="rejected", reason="and a fake address", actor=ADMIN)

    assert tier.grants.get(referee_signup=friend).status == "revoked"
    assert reconcile(program=program).as_dict() == ReconcileReport().as_dict()


def test_a_welcome_voucher_follows_its_referee_to_another_ambassador(program, ambassador, committed):
    tier = voucher_tier(program, threshold=5, referee_reward_type="percent_voucher", referee_reward_value=Decimal("10"))
    bob = enroll(program, "bob@example.com")
    with committed():
        friend = subscribe(program, ambassador)
    code = tier.grants.get().voucher_code

    with committed():
        signup_override(signup=friend, ambassador=bob, reason="Bob sent the link first", actor=ADMIN)

    assert list(tier.grants.values_list("referee_signup", "status", "voucher_code")) == [(friend.pk, "unlocked", code)]
