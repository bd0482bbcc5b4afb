"""Ambassadors get each unlocked reward once: a grant with its own voucher, shown in the API, e-mailed."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from core.models import AuditEvent
from referrals.models import Signup
from referrals.services import conversion_approve, conversion_record
from rewards.models import RewardGrant, RewardTier
from tests.conftest import bearer
from tests.factories import enroll
from tests.rewards.conftest import SHOP, subscribe, voucher_tier

pytestmark = pytest.mark.django_db

VOUCHER = re.compile(r"^[2-9A-HJKMNP-Z]{4}(-[2-9A-HJKMNP-Z]{4}){3}$")


def _reward_emails(outbox: list) -> list:
    """The reward e-mails, without the "a friend subscribed" ones each qualified friend also brings."""
    return [m for m in outbox if "a friend subscribed" not in m.subject]


def test_the_third_qualified_friend_unlocks_one_voucher(program, ambassador, committed, mailoutbox):
    tier = voucher_tier(program, threshold=3)
    with committed():
        subscribe(program, ambassador)
        subscribe(program, ambassador)
    assert not RewardGrant.objects.exists()

    with committed():
        subscribe(program, ambassador)

    grant = RewardGrant.objects.get()
    assert (grant.tier, grant.ambassador, grant.occurrence, grant.status) == (tier, ambassador, 1, "unlocked")
    assert VOUCHER.match(grant.voucher_code)
    event = AuditEvent.objects.get(action="reward.unlocked")
    assert (event.object_type, event.object_id, event.actor_type) == ("reward_grant", str(grant.pk), "system")
    rewards = _reward_emails(mailoutbox)
    assert [m.to for m in rewards] == [["ana@example.com"]]
    assert grant.voucher_code in rewards[0].body
    assert tier.name in rewards[0].subject


def test_a_once_only_tier_is_never_granted_twice(program, ambassador, committed, mailoutbox):
    voucher_tier(program, threshold=2)

    with committed():
        for _ in range(7):
            subscribe(program, ambassador)

    assert list(RewardGrant.objects.values_list("occurrence", flat=True)) == [1]
    assert len(_reward_emails(mailoutbox)) == 1


def test_a_repeating_tier_grants_each_occurrence_with_its_own_voucher(program, ambassador, committed, mailoutbox):
    voucher_tier(program, threshold=3, repeat_every=Decimal(2))

    with committed():
        for _ in range(8):  # unlocks at 3, 5 and 7
            subscribe(program, ambassador)

    grants = RewardGrant.objects.order_by("occurrence")
    assert [g.occurrence for g in grants] == [1, 2, 3]
    assert len({g.voucher_code for g in grants}) == 3
    assert len(_reward_emails(mailoutbox)) == 3


def test_signups_that_do_not_qualify_unlock_nothing(program, ambassador, committed):
    voucher_tier(program, threshold=2)

    with committed():
        subscribe(program, ambassador, email="someone@mailinator.com")  # disposable: pending review
        subscribe(program, ambassador, email=ambassador.email)  # self-referral: rejected
        subscribe(program, ambassador)

    assert set(Signup.objects.values_list("status", flat=True)) == {"pending_review", "rejected", "qualified"}
    assert not RewardGrant.objects.exists()


def test_each_ambassador_counts_only_their_own_referrals(program, ambassador, committed):
    bob = enroll(program, "bob@example.com")
    voucher_tier(program, threshold=2)

    with committed():
        subscribe(program, ambassador)
        subscribe(program, bob)
        subscribe(program, None)
        subscribe(program, ambassador)

    assert list(RewardGrant.objects.values_list("ambassador", flat=True)) == [ambassador.pk]


def convert(program, signup: Signup, external_id: str, amount: str) -> None:
    conversion, _ = conversion_record(
        program=program, actor=SHOP, external_id=external_id, email=signup.email, amount=amount, currency="EUR"
    )
    assert conversion.status == "pending"  # inside the 14-day hold period


def test_conversions_count_once_approved_after_the_hold_period(program, ambassador, committed):
    tier = voucher_tier(
        program, threshold=2, metric=RewardTier.Metric.APPROVED_CONVERSIONS, reward_type="fixed_voucher"
    )
    with committed():
        friend = subscribe(program, ambassador)
        convert(program, friend, "order-1", "19.90")
        convert(program, friend, "order-2", "5.00")
    assert not tier.grants.exists()

    with committed():
        conversion_approve(conversion_id=friend.conversions.get(external_id="order-1").pk, actor=SHOP)
    assert not tier.grants.exists()
    with committed():
        conversion_approve(conversion_id=friend.conversions.get(external_id="order-2").pk, actor=SHOP)

    assert list(tier.grants.values_list("ambassador", "occurrence")) == [(ambassador.pk, 1)]


def test_an_account_credit_unlocks_on_the_amount_converted(program, ambassador, committed):
    tier = voucher_tier(
        program,
        threshold=50,
        repeat_every=Decimal(50),
        metric=RewardTier.Metric.CONVERTED_AMOUNT,
        reward_type="account_credit",
        reward_value=Decimal("5.00"),
    )
    with committed():
        friend = subscribe(program, ambassador)
        for n, amount in enumerate(["19.90", "19.90", "19.90", "49.99"]):
            convert(program, friend, f"order-{n}", amount)
            conversion_approve(conversion_id=friend.conversions.get(external_id=f"order-{n}").pk, actor=SHOP)

    # 59.70 after three orders, 109.69 after the fourth: two occurrences, not a third.
    assert sorted(tier.grants.values_list("occurrence", flat=True)) == [1, 2]


def test_a_custom_reward_is_granted_like_any_other(program, ambassador, committed):
    tier = voucher_tier(program, threshold=1, reward_type="custom", reward_value=None, reward_text="A signed copy")

    with committed():
        subscribe(program, ambassador)

    assert tier.grants.get().ambassador == ambassador


def test_a_double_sided_tier_gives_each_qualified_referee_a_welcome_voucher(program, ambassador, committed, mailoutbox):
    tier = voucher_tier(program, threshold=2, referee_reward_type="percent_voucher", referee_reward_value=Decimal("10"))

    with committed():
        first = subscribe(program, ambassador, email="first@example.org")
        subscribe(program, ambassador, email="trash@mailinator.com")  # pending review: no welcome
        subscribe(program, None, email="walk-in@example.org")  # nobody referred them
        second = subscribe(program, ambassador, email="second@example.org")

    welcome = tier.grants.filter(referee_signup__isnull=False)
    assert sorted(welcome.values_list("referee_signup", flat=True)) == [first.pk, second.pk]
    assert {g.status for g in welcome} == {"unlocked"}
    assert tier.grants.filter(ambassador=ambassador).count() == 1
    recipients = sorted(m.to[0] for m in _reward_emails(mailoutbox))
    assert recipients == ["ana@example.com", "first@example.org", "second@example.org"]


def test_every_voucher_code_is_unique(program, ambassador, committed):
    voucher_tier(program, threshold=1, repeat_every=Decimal(1), referee_reward_type="fixed_voucher",
                 referee_reward_value=Decimal("5"))  # fmt: skip

    with committed():
        for _ in range(40):
            subscribe(program, ambassador)

    codes = list(RewardGrant.objects.values_list("voucher_code", flat=True))
    assert len(codes) == 80
    assert len(set(codes)) == 80
    assert all(VOUCHER.match(code) for code in codes)


def test_the_ambassador_detail_lists_the_rewards(program, ambassador, committed, api, read_key):
    voucher_tier(program, threshold=1, repeat_every=Decimal(2), name="Every other friend")
    with committed():
        for _ in range(3):
            subscribe(program, ambassador)
    codes = dict(RewardGrant.objects.values_list("occurrence", "voucher_code"))

    response = api.get(f"/api/v1/programs/{program.slug}/ambassadors/{ambassador.code}", **bearer(read_key))

    assert response.status_code == 200
    assert response.json()["rewards"] == [
        {"tier": "Every other friend", "occurrence": 1, "status": "unlocked", "voucher_code": codes[1]},
        {"tier": "Every other friend", "occurrence": 2, "status": "unlocked", "voucher_code": codes[2]},
    ]


def test_me_shows_the_signed_in_ambassador_their_rewards_and_progress(program, ambassador, committed, api):
    voucher_tier(program, threshold=2, name="Two friends")
    voucher_tier(program, threshold=5, name="Five friends")
    with committed():
        for _ in range(3):
            subscribe(program, ambassador)
    api.force_login(ambassador.user)

    response = api.get("/api/v1/me")

    assert response.status_code == 200
    (mine,) = response.json()["programs"]
    code = RewardGrant.objects.get().voucher_code
    assert mine["rewards"] == [{"tier": "Two friends", "occurrence": 1, "status": "unlocked", "voucher_code": code}]
    assert mine["progress"] == {
        "tier": "Five friends", "metric": "qualified_signups", "current": 3, "target": 5, "remaining": 2,
    }  # fmt: skip


def test_another_ambassadors_rewards_are_not_in_my_me(program, ambassador, committed, api):
    bob = enroll(program, "bob@example.com")
    voucher_tier(program, threshold=1)
    with committed():
        subscribe(program, ambassador)
    api.force_login(bob.user)

    (mine,) = api.get("/api/v1/me").json()["programs"]

    assert mine["code"] == bob.code
    assert mine["rewards"] == []
