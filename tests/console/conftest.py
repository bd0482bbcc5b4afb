"""A scene rich enough for the screens: Ana in two programs, clicks through two channels and a bot,
qualified and held signups, approved conversions, a reward reached and one still ahead."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from ambassadors.models import Program
from core.actors import Actor
from referrals.services import conversion_record, link_create, signup_record
from rewards.models import RewardTier
from rewards.services import tier_create
from tests.factories import ProgramFactory, enroll
from tests.referrals.helpers import browser, visit

SYSTEM = Actor.system("test")


def voucher_tier(program: Program, name: str, threshold: str, metric: str = RewardTier.Metric.QUALIFIED_SIGNUPS) -> Any:
    return tier_create(
        program=program, actor=SYSTEM, name=name, kind=RewardTier.Kind.INDIVIDUAL, metric=metric,
        threshold=Decimal(threshold), reward_type=RewardTier.RewardType.PERCENT_VOUCHER, reward_value=Decimal("20"),
    )  # fmt: skip


def ambassador_activity(program: Program, ambassador: Any, *, friends: int, first_ip: int, channel_clicks: int) -> None:
    """Clicks on the main link (one per friend) and on a newsletter link, a bot, and each friend signing up."""
    link = link_create(ambassador=ambassador, channel="newsletter")
    for n in range(friends):
        visit(browser(f"198.51.100.{first_ip + n}"), ambassador.code)
    for n in range(channel_clicks):
        visit(browser(f"203.0.113.{first_ip + n}"), link.code)
    Client(HTTP_USER_AGENT="Twitterbot/1.0").get(f"/r/{ambassador.code}")
    for n in range(friends):
        signup_record(
            program=program, email=f"friend{first_ip + n}@example.org", referral_code=ambassador.code, actor=SYSTEM
        )


@pytest.fixture
def screens(program, ambassador, django_capture_on_commit_callbacks) -> dict[str, Any]:
    """Ana in `book-launch` (two friends, a reward reached, the next at five) and in `summer-club` (hold
    period 0, one purchase of 12.50 approved at once, a 50.00 spending reward ahead); Bob beside her."""
    summer = ProgramFactory(slug="summer-club", name="Summer Club", hold_period_days=0)
    ana_summer = enroll(summer, "ana@example.com", display_name="Ana in summer")
    bob = enroll(program, "bob@example.com", display_name="Bob")
    voucher_tier(program, "Two friends", "2")
    voucher_tier(program, "Five friends", "5")
    voucher_tier(summer, "Fifty spent", "50", metric=RewardTier.Metric.CONVERTED_AMOUNT)
    with django_capture_on_commit_callbacks(execute=True):  # rewards are granted by the recalculation after commit
        ambassador_activity(program, ambassador, friends=2, first_ip=10, channel_clicks=3)
        ambassador_activity(program, bob, friends=1, first_ip=40, channel_clicks=0)
        signup_record(program=program, email="held@mailinator.com", referral_code=ambassador.code, actor=SYSTEM)
        ambassador_activity(summer, ana_summer, friends=1, first_ip=60, channel_clicks=2)
        conversion_record(
            program=summer, actor=SYSTEM, external_id="s-1", amount="12.50", currency="EUR",
            email="friend60@example.org",
        )  # fmt: skip
    return {"book": program, "summer": summer, "ana": ambassador, "ana_summer": ana_summer, "bob": bob}
