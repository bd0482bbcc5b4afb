"""Vouchers that expire ("a revoked or expired voucher is refused with its reason").

A tier's `voucher_valid_days` (empty: its vouchers never expire) sets each new grant's `expires_at`; the
voucher API says `expired` once past it (derived from the clock when read, never stored) and refuses to
redeem it with the date, while the order that redeemed it before still gets its 200. The tier's setting is
checked alike by the service, the API, the Django admin and the staff console; the ambassador's dashboard
shows the date.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from core.actors import Actor
from core.errors import InvalidInput
from core.models import AuditEvent
from rewards.models import RewardGrant, RewardTier
from rewards.services import tier_create, tier_update
from rewards.services.grants import grant_create, grant_reinstate, grant_withdraw
from tests.conftest import bearer
from tests.factories import UserFactory
from tests.rewards.conftest import voucher_tier

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")
UNLOCKED_AT = datetime(2027, 1, 4, 9, 30, tzinfo=UTC)
EXPIRES_AT = UNLOCKED_AT + timedelta(days=30)  # 2027-02-03 09:30 UTC


def voucher_url(program: Any, code: str) -> str:
    return reverse("api-voucher", kwargs={"slug": program.slug, "voucher_code": code})


def redeem_url(program: Any, code: str) -> str:
    return reverse("api-voucher-redeem", kwargs={"slug": program.slug, "voucher_code": code})


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


@pytest.fixture
def month_tier(program) -> RewardTier:
    """A 20% voucher at one qualified friend, valid 30 days."""
    return voucher_tier(program, threshold=1, voucher_valid_days=30)


@pytest.fixture
def grant(time_machine, month_tier, ambassador) -> RewardGrant:
    """Ana's voucher, unlocked on 4 January 2027 at 09:30 UTC (the clock stays there until a test moves it)."""
    time_machine.move_to(UNLOCKED_AT, tick=False)
    made = grant_create(tier=month_tier, occurrence=1, ambassador=ambassador)
    assert made is not None
    return made


@pytest.fixture
def shop(api, track_key):
    api.credentials(**bearer(track_key))
    return api


# --- The grant's expiry ------------------------------------------------------------------------------


def test_a_grant_expires_the_tiers_valid_days_after_it_is_unlocked(grant):
    grant.refresh_from_db()

    assert grant.created_at == UNLOCKED_AT
    assert grant.expires_at == EXPIRES_AT


def test_a_tier_without_valid_days_gives_vouchers_that_never_expire(time_machine, program, ambassador):
    tier = voucher_tier(program, threshold=1)
    made = grant_create(tier=tier, occurrence=1, ambassador=ambassador)
    assert made is not None and tier.voucher_valid_days is None

    time_machine.move_to(datetime(2040, 1, 1, tzinfo=UTC), tick=False)

    made.refresh_from_db()
    assert made.expires_at is None
    assert not made.is_expired_at(datetime(2040, 1, 1, tzinfo=UTC))


def test_changing_the_tiers_valid_days_leaves_the_vouchers_already_unlocked_as_they_were(grant, month_tier):
    tier_update(tier=month_tier, actor=SYSTEM, voucher_valid_days=90)

    grant.refresh_from_db()
    assert grant.expires_at == EXPIRES_AT


def test_a_voucher_given_back_after_a_revocation_is_valid_for_the_tiers_days_from_then(time_machine, grant):
    grant_withdraw(grant, reason="The friend's signup was rejected.")
    later = UNLOCKED_AT + timedelta(days=10)
    time_machine.move_to(later, tick=False)

    assert grant_reinstate(grant)

    grant.refresh_from_db()
    assert (grant.status, grant.expires_at) == ("unlocked", later + timedelta(days=30))


# --- The voucher API ---------------------------------------------------------------------------------


def test_the_voucher_answers_its_expiry_and_is_valid_until_then(shop, program, grant, time_machine):
    time_machine.move_to(EXPIRES_AT - timedelta(seconds=1), tick=False)

    body = shop.get(voucher_url(program, grant.voucher_code)).json()

    assert (body["valid"], body["status"], body["expires_at"]) == (True, "unlocked", "2027-02-03T09:30:00Z")


def test_past_its_expiry_the_voucher_is_expired_and_not_valid(shop, program, grant, time_machine):
    time_machine.move_to(EXPIRES_AT, tick=False)

    response = shop.get(voucher_url(program, grant.voucher_code))

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["valid"], body["status"], body["expires_at"]) == (False, "expired", "2027-02-03T09:30:00Z")
    grant.refresh_from_db()
    assert grant.status == RewardGrant.Status.UNLOCKED, "derived when read, never stored"


def test_a_voucher_that_never_expires_answers_a_null_expiry(shop, program, ambassador):
    made = grant_create(tier=voucher_tier(program, threshold=1), occurrence=1, ambassador=ambassador)
    assert made is not None

    body = shop.get(voucher_url(program, made.voucher_code)).json()

    assert (body["valid"], body["status"], body["expires_at"]) == (True, "unlocked", None)


def test_an_expired_voucher_is_refused_at_checkout_with_its_date(shop, program, grant, time_machine):
    time_machine.move_to(EXPIRES_AT + timedelta(days=2), tick=False)

    response = shop.post(redeem_url(program, grant.voucher_code), {"order_reference": "order-7"}, format="json")

    assert response.status_code == 409, response.content
    assert response.json()["detail"] == "This voucher expired on 2027-02-03T09:30:00+00:00."
    grant.refresh_from_db()
    assert (grant.status, grant.redeemed_order) == ("unlocked", "")
    assert not AuditEvent.objects.filter(action="reward.redeemed").exists()


def test_the_order_that_redeemed_it_before_expiry_still_gets_its_redemption(shop, program, grant, time_machine):
    time_machine.move_to(EXPIRES_AT - timedelta(hours=1), tick=False)
    first = shop.post(redeem_url(program, grant.voucher_code), {"order_reference": "order-7"}, format="json")
    time_machine.move_to(EXPIRES_AT + timedelta(days=1), tick=False)

    again = shop.post(redeem_url(program, grant.voucher_code), {"order_reference": "order-7"}, format="json")
    other = shop.post(redeem_url(program, grant.voucher_code), {"order_reference": "order-8"}, format="json")
    checked = shop.get(voucher_url(program, grant.voucher_code)).json()

    assert (first.status_code, again.status_code) == (200, 200), again.content
    assert again.json() == first.json()
    assert again.json()["status"] == "redeemed"
    assert other.status_code == 409 and "already redeemed" in other.json()["detail"]
    assert checked["status"] == "redeemed", "a redeemed voucher stays redeemed, whatever the date"
    assert AuditEvent.objects.filter(action="reward.redeemed").count() == 1


def test_a_revoked_voucher_past_its_expiry_still_says_revoked(shop, program, grant, time_machine):
    grant_withdraw(grant, reason="The friend's signup was rejected.")
    time_machine.move_to(EXPIRES_AT + timedelta(days=1), tick=False)

    body = shop.get(voucher_url(program, grant.voucher_code)).json()
    refused = shop.post(redeem_url(program, grant.voucher_code), {"order_reference": "o-1"}, format="json")

    assert (body["status"], body["valid"]) == ("revoked", False)
    assert refused.status_code == 409 and "revoked" in refused.json()["detail"]


def test_the_schema_documents_the_expiry_and_the_expired_status(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()

    voucher = schema["components"]["schemas"]["VoucherOutput"]["properties"]
    tier = schema["components"]["schemas"]["Tier"]["properties"]
    assert "expires_at" in voucher
    assert "expired" in str(schema["components"]["schemas"]).lower()
    assert tier["voucher_valid_days"]["minimum"] == 1 and tier["voucher_valid_days"]["maximum"] == 3650


# --- The tier's setting, wherever a tier is configured -----------------------------------------------


def tier_body(**fields: Any) -> dict[str, Any]:
    return {
        "name": "Three friends", "kind": "individual", "metric": "qualified_signups", "threshold": "3",
        "reward_type": "percent_voucher", "reward_value": "20", **fields,
    }  # fmt: skip


LADDER = {"name": "Ladder", "kind": "collective", "step": 5, "drop_type": "amount", "drop_value": "1",
          "voucher_valid_days": 30}  # fmt: skip


@pytest.fixture
def manager(api, manage_key):
    api.credentials(**bearer(manage_key))
    return api


@pytest.mark.parametrize("days", [1, 30, 3650])
def test_the_api_accepts_1_to_3650_days(manager, program, days):
    body = tier_body(voucher_valid_days=days)

    response = manager.post(f"/api/v1/programs/{program.slug}/tiers/", body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["voucher_valid_days"] == days
    assert RewardTier.objects.get().voucher_valid_days == days


@pytest.mark.parametrize(
    "body",
    [
        tier_body(voucher_valid_days=0),
        tier_body(voucher_valid_days=3651),
        tier_body(voucher_valid_days=-5),
        tier_body(voucher_valid_days="soon"),
        tier_body(reward_type="custom", reward_value=None, reward_text="A mug", voucher_valid_days=30),
        LADDER,
    ],
    ids=["zero", "over-ten-years", "negative", "not-a-number", "custom-reward", "collective"],
)
def test_the_api_refuses_bad_valid_days_with_the_field(manager, program, body):
    response = manager.post(f"/api/v1/programs/{program.slug}/tiers/", body, format="json")

    assert response.status_code == 400, response.content
    assert "voucher_valid_days" in response.json(), response.json()
    assert not RewardTier.objects.exists()


def test_a_patch_sets_and_clears_the_valid_days(manager, program, month_tier):
    url = f"/api/v1/programs/{program.slug}/tiers/{month_tier.pk}/"

    set_ = manager.patch(url, {"voucher_valid_days": 60}, format="json")
    cleared = manager.patch(url, {"voucher_valid_days": None}, format="json")
    custom = manager.patch(url, {"reward_type": "custom", "reward_text": "A mug"}, format="json")

    assert (set_.status_code, set_.json()["voucher_valid_days"]) == (200, 60)
    assert (cleared.status_code, cleared.json()["voucher_valid_days"]) == (200, None)
    assert custom.status_code == 200, "without valid days, a tier may stop giving a voucher"
    events = AuditEvent.objects.filter(action="tier.updated", object_id=str(month_tier.pk)).order_by("id")
    assert (events[0].before["voucher_valid_days"], events[0].after["voucher_valid_days"]) == (30, 60)


def test_a_patch_that_leaves_valid_days_on_a_tier_without_voucher_is_refused(manager, program, month_tier):
    response = manager.patch(
        f"/api/v1/programs/{program.slug}/tiers/{month_tier.pk}/",
        {"reward_type": "custom", "reward_text": "A mug"},
        format="json",
    )

    assert response.status_code == 400
    assert "voucher_valid_days" in response.json()


def test_a_welcome_voucher_of_the_friend_is_a_voucher_too(program):
    tier = voucher_tier(
        program,
        threshold=1,
        reward_type="custom",
        reward_value=None,
        reward_text="A mug",
        referee_reward_type="fixed_voucher",
        referee_reward_value=Decimal("5"),
        voucher_valid_days=14,
    )

    assert tier.voucher_valid_days == 14


@pytest.mark.parametrize("days", [0, 3651, -1])
def test_the_service_refuses_bad_valid_days_whoever_calls_it(program, days):
    with pytest.raises(InvalidInput) as refused:
        tier_create(
            program=program, actor=SYSTEM, name="X", kind="individual", threshold=Decimal(1),
            reward_type="percent_voucher", reward_value=Decimal(10), voucher_valid_days=days,
        )  # fmt: skip

    assert refused.value.field == "voucher_valid_days"


def admin_tier_form(program: Any, **fields: Any) -> dict[str, Any]:
    return {
        "program": program.pk, "name": "3 friends", "kind": "individual", "metric": "qualified_signups",
        "threshold": "3", "repeat_every": "", "reward_type": "percent_voucher", "reward_value": "20",
        "reward_text": "", "referee_reward_type": "", "referee_reward_value": "", "step": "", "drop_type": "",
        "drop_value": "", "is_active": "on", "voucher_valid_days": "", **fields,
    }  # fmt: skip


def test_the_django_admin_sets_and_checks_the_valid_days(client, program):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    refused = client.post("/admin/rewards/rewardtier/add/", admin_tier_form(program, voucher_valid_days="0"))
    saved = client.post("/admin/rewards/rewardtier/add/", admin_tier_form(program, voucher_valid_days="45"))

    assert refused.status_code == 200
    assert "voucher_valid_days" in refused.context["adminform"].form.errors
    assert saved.status_code == 302
    assert RewardTier.objects.get().voucher_valid_days == 45


# --- The ambassador's dashboard ----------------------------------------------------------------------


def dashboard_text(ambassador: Any) -> str:
    client = Client()
    client.force_login(ambassador.user)
    response = client.get("/dashboard/")
    assert response.status_code == 200
    return text_of(response.content.decode())


def test_the_dashboard_shows_until_when_a_voucher_is_valid_then_that_it_expired(grant, ambassador, time_machine):
    before = dashboard_text(ambassador)
    time_machine.move_to(EXPIRES_AT + timedelta(days=1), tick=False)
    after = dashboard_text(ambassador)

    assert f"{grant.voucher_code} Valid until 02/03/2027 Unlocked" in before
    assert f"{grant.voucher_code} Expired on 02/03/2027 Expired" in after


def test_the_dashboard_shows_no_date_for_a_voucher_that_never_expires(program, ambassador):
    made = grant_create(tier=voucher_tier(program, threshold=1), occurrence=1, ambassador=ambassador)
    assert made is not None

    page = dashboard_text(ambassador)

    assert f"{made.voucher_code} Unlocked" in page
    assert "Valid until" not in page
