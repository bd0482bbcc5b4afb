"""A small world with one person of each kind a privacy request is about, built through the real services.

Ana Martin is an ambassador of two programs, with an account she verified and a display name she changed.
Zoé, her friend, subscribed to both through her code (with the shop's customer id), and bought once: she
is known by e-mail only. Olivier, somebody else, subscribed too: nothing about him may move.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType

from ambassadors.models import Ambassador, Program
from ambassadors.services import ambassador_update
from core import clock
from core.actors import Actor
from core.models import EmailOptOut, Notification
from core.notifications import mailbox_digest
from referrals.models import Conversion, Signup
from referrals.services import conversion_record, conversions_approve_due, signup_record
from rewards.models import RewardTier
from rewards.services import tier_create
from tests.factories import ProgramFactory, UserFactory, enroll

SHOP = Actor.system("shop")
ANA = "ana.martin@example.com"
ZOE = "zoe@example.org"
OLIVIER = "olivier@example.net"


@dataclass
class World:
    program: Program
    second: Program
    ana_user: Any
    ana: Ambassador
    ana_second: Ambassador
    zoe_signup: Signup
    zoe_second: Signup
    zoe_conversion: Conversion
    olivier_signup: Signup


@pytest.fixture
def world(db, django_capture_on_commit_callbacks) -> World:
    program = ProgramFactory(slug="book-launch", name="The Book Launch")
    second = ProgramFactory(slug="second-book", name="The Second Book")
    for prog in (program, second):
        tier_create(
            program=prog, actor=SHOP, name="One friend", kind=RewardTier.Kind.INDIVIDUAL,
            metric=RewardTier.Metric.QUALIFIED_SIGNUPS, threshold=Decimal("1"),
            reward_type=RewardTier.RewardType.PERCENT_VOUCHER, reward_value=Decimal("20"),
        )  # fmt: skip
        tier_create(
            program=prog, actor=SHOP, name="Community price", kind=RewardTier.Kind.COLLECTIVE,
            step=2, drop_type=RewardTier.DropType.AMOUNT, drop_value=Decimal("1.00"),
        )  # fmt: skip
    ana_user = UserFactory(username="ana", email=ANA, first_name="Ana", last_name="Martin")
    EmailAddress.objects.create(user=ana_user, email=ANA, verified=True, primary=True)
    ana = enroll(program, ANA, user=ana_user)
    ana_second = enroll(second, ANA, user=ana_user, display_name="Ana M.")
    # Her display name changes: the trail's before/after now hold her name.
    ana = ambassador_update(ambassador=ana, actor=Actor.for_user(ana_user), display_name="Ana Martin")
    with django_capture_on_commit_callbacks(execute=True):
        zoe_signup = signup_record(
            program=program, email=ZOE, referral_code=ana.code, actor=SHOP, external_id="cust-4242"
        )[0]
        zoe_second = signup_record(program=second, email=ZOE, referral_code=ana_second.code, actor=SHOP)[0]
        olivier_signup = signup_record(program=program, email=OLIVIER, referral_code=ana.code, actor=SHOP)[0]
        zoe_conversion = conversion_record(
            program=program, actor=SHOP, external_id="order-7777", amount="19.90", currency="EUR", email=ZOE
        )[0]
        conversions_approve_due(now=clock.now() + timedelta(days=30))
    # Zoé unsubscribed from the price news of the first program, and was told her friend's news once.
    EmailOptOut.objects.create(
        mailbox_digest=mailbox_digest(ZOE), program_id=program.pk, kind="price_dropped", created_at=clock.now()
    )
    Notification.objects.create(
        event_key=f"price.dropped:program:{program.pk}", recipient=ZOE, sent_at=clock.now(), created_at=clock.now()
    )
    # An admin once changed her signup: the admin's history names it by its str(), her address.
    LogEntry.objects.create(
        user=UserFactory(username="root", is_staff=True, is_superuser=True),
        content_type=ContentType.objects.get_for_model(Signup),
        object_id=str(zoe_signup.pk),
        object_repr=str(zoe_signup),
        action_flag=CHANGE,
        change_message="[]",
    )
    zoe_conversion.refresh_from_db()
    assert zoe_conversion.status == Conversion.Status.APPROVED
    return World(program, second, ana_user, ana, ana_second, zoe_signup, zoe_second, zoe_conversion, olivier_signup)
