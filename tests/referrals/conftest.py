"""Fixtures of the tracking-core tests, on top of the personas of tests/conftest.py."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from core.actors import Actor
from referrals.services import conversion_record, signup_record
from rewards.models import RewardTier
from rewards.services import tier_create
from tests.conftest import bearer
from tests.factories import ProgramFactory, enroll


@pytest.fixture
def bob(program):
    """Bob, a second ambassador of the same program, competing with Ana for the same friends."""
    return enroll(program, "bob@example.com", display_name="Bob")


@pytest.fixture
def other_program(db):
    return ProgramFactory(slug="other-launch", name="Another Launch")


@pytest.fixture
def other_key(other_program) -> str:
    """A key carrying every scope, but for another program."""
    from ambassadors.services import api_key_create

    return api_key_create(actor=Actor.system("tests"), program=other_program, scopes=["track", "read", "manage"])[1]


@pytest.fixture
def tracker(track_key) -> APIClient:
    """The shop's server, calling the API with its track key."""
    client = APIClient()
    client.credentials(**bearer(track_key))
    return client


@pytest.fixture
def reader(read_key) -> APIClient:
    client = APIClient()
    client.credentials(**bearer(read_key))
    return client


@pytest.fixture
def scene(program, ambassador, friend_email) -> dict[str, Any]:
    """One of each object the API serves: a signup, its conversion and a tier, for endpoint sweeps."""
    system = Actor.system("test")
    signup = signup_record(program=program, email=friend_email, referral_code=ambassador.code, actor=system)[0]
    conversion_record(
        program=program, actor=system, external_id="o-1", amount="9.00", currency="EUR", email=friend_email
    )
    tier = tier_create(
        actor=Actor.system("tests"),
        program=program,
        name="Three friends",
        kind=RewardTier.Kind.INDIVIDUAL,
        metric=RewardTier.Metric.QUALIFIED_SIGNUPS,
        threshold=Decimal("3"),
        reward_type=RewardTier.RewardType.PERCENT_VOUCHER,
        reward_value=Decimal("20"),
    )
    return {"slug": program.slug, "code": ambassador.code, "signup": signup.pk, "tier": tier.pk}


@pytest.fixture(autouse=True)
def _ip_peppers_loaded(request, django_db_blocker):
    """Each test starts with this process's IP peppers loaded from its own database, as a running process
    has them (reloaded once a minute, referrals.services.peppers): the pinned query counts are the
    redirect's steady state, and no test sees peppers another one created. The cold load (one query,
    once a minute per process) is pinned in test_pepper_rotation."""
    from referrals.services.peppers import _peppers, ip_peppers_forget

    ip_peppers_forget()
    if request.node.get_closest_marker("django_db"):
        with django_db_blocker.unblock():
            _peppers()
    yield
    ip_peppers_forget()
