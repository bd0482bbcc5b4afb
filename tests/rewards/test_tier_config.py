"""Marketing configures tiers through the API and the Django admin; a configuration that cannot work is
refused with the field to fix, by the same rule in both places."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ambassadors.models import Program
from rewards.models import RewardTier
from tests.conftest import bearer
from tests.factories import ProgramFactory
from tests.rewards.conftest import price_ladder, voucher_tier

pytestmark = pytest.mark.django_db

PERCENT_AT_3 = {
    "name": "3 friends",
    "kind": "individual",
    "metric": "qualified_signups",
    "threshold": "3",
    "reward_type": "percent_voucher",
    "reward_value": "20",
}
LADDER = {"name": "Community price", "kind": "collective", "step": 5, "drop_type": "amount", "drop_value": "1.00"}


def tiers_url(program: Program) -> str:
    return f"/api/v1/programs/{program.slug}/tiers/"


@pytest.fixture
def manager(api, manage_key):
    api.credentials(**bearer(manage_key))
    return api


# --- API ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        PERCENT_AT_3,
        PERCENT_AT_3 | {"threshold": "5", "repeat_every": "5"},
        {**PERCENT_AT_3, "metric": "approved_conversions", "reward_type": "fixed_voucher", "reward_value": "15.00"},
        {**PERCENT_AT_3, "metric": "converted_amount", "threshold": "99.90", "reward_type": "account_credit"},
        {**PERCENT_AT_3, "reward_type": "custom", "reward_value": None, "reward_text": "A signed copy"},
        PERCENT_AT_3 | {"referee_reward_type": "percent_voucher", "referee_reward_value": "10"},
        LADDER,
        LADDER | {"drop_type": "percent", "drop_value": "5"},
    ],
    ids=["percent", "repeating", "fixed", "credit", "custom", "double-sided", "ladder", "percent-ladder"],
)
def test_a_manage_key_creates_each_kind_of_tier(program, manager, body):
    response = manager.post(tiers_url(program), body, format="json")

    assert response.status_code == 201, response.json()
    tier = RewardTier.objects.get(pk=response.json()["id"])
    assert (tier.program, tier.kind, tier.name) == (program, body["kind"], body["name"])


def test_marketing_staff_create_and_change_tiers_with_their_session(program, api, marketer):
    api.force_login(marketer)

    created = api.post(tiers_url(program), PERCENT_AT_3, format="json")
    changed = api.patch(f"{tiers_url(program)}{created.json()['id']}/", {"threshold": "4"}, format="json")

    assert (created.status_code, changed.status_code) == (201, 200)
    assert RewardTier.objects.get().threshold == Decimal("4")
    assert [t["threshold"] for t in api.get(tiers_url(program)).json()["results"]] == ["4.00"]


@pytest.mark.parametrize("who", ["track key", "auditor", "outsider", "nobody"])
def test_nobody_else_configures_tiers(program, api, track_key, auditor, outsider, who):
    if who == "track key":
        api.credentials(**bearer(track_key))
    elif who != "nobody":
        api.force_login(auditor if who == "auditor" else outsider)

    response = api.post(tiers_url(program), PERCENT_AT_3, format="json")

    assert response.status_code == (401 if who == "nobody" else 403)
    assert not RewardTier.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (PERCENT_AT_3 | {"threshold": "0"}, "threshold", "The threshold must be above 0."),
        (PERCENT_AT_3 | {"threshold": "-3"}, "threshold", "The threshold must be above 0."),
        (PERCENT_AT_3 | {"threshold": "2.5"}, "threshold", "Counts are whole numbers."),
        (PERCENT_AT_3 | {"repeat_every": "0"}, "repeat_every", "'Again every' must be above 0"),
        (PERCENT_AT_3 | {"reward_value": "150"}, "reward_value", "A percent voucher is at most 100%."),
        (PERCENT_AT_3 | {"reward_type": ""}, "reward_type", "Choose what the tier grants."),
        (PERCENT_AT_3 | {"reward_type": "custom", "reward_value": None}, "reward_text", "Describe the custom reward."),
        (LADDER | {"step": 0}, "step", "The step must be at least 1 subscriber."),
        (LADDER | {"drop_value": "25.00"}, "drop_value", "A drop above the base price makes a negative price."),
        (LADDER | {"drop_type": "percent", "drop_value": "120"}, "drop_value", "makes a negative price"),
        (LADDER | {"drop_value": "0"}, "drop_value", "The price drop must be above 0."),
    ],
    ids=[
        "threshold-0",
        "threshold-negative",
        "half-a-friend",
        "repeat-0",
        "percent-150",
        "no-reward",
        "custom-without-text",
        "step-0",
        "drop-above-base",
        "drop-above-100-percent",
        "drop-0",
    ],
)
def test_the_api_refuses_a_tier_that_cannot_work_with_the_field_to_fix(program, manager, body, field, message):
    response = manager.post(tiers_url(program), body, format="json")

    assert response.status_code == 400
    assert message in response.json()[field][0]
    assert not RewardTier.objects.exists()


def test_two_active_tiers_at_the_same_metric_and_threshold_collide(program, manager):
    voucher_tier(program, threshold=3)

    response = manager.post(tiers_url(program), PERCENT_AT_3 | {"name": "Another"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"threshold": ["Another active tier already unlocks at this metric and threshold."]}
    # Another metric at the same threshold is a different tier, not a collision.
    other = manager.post(tiers_url(program), PERCENT_AT_3 | {"metric": "approved_conversions"}, format="json")
    assert other.status_code == 201


def test_a_program_has_one_active_price_ladder(program, manager):
    price_ladder(program)

    response = manager.post(tiers_url(program), LADDER, format="json")

    assert response.status_code == 400
    assert response.json() == {"kind": ["The program already has an active collective ladder."]}


def test_a_ladder_needs_the_programs_base_and_floor_price(manager, manage_key):
    from ambassadors.services import api_key_create
    from core.actors import Actor

    no_price = ProgramFactory(slug="no-price", base_price=None, floor_price=None)
    manager.credentials(**bearer(api_key_create(actor=Actor.system("tests"), program=no_price, scopes=["manage"])[1]))

    response = manager.post(tiers_url(no_price), LADDER, format="json")

    assert response.status_code == 400
    assert "base and floor price" in response.json()["kind"][0]


def test_changing_a_tier_into_a_collision_is_refused_and_leaves_it_unchanged(program, manager):
    voucher_tier(program, threshold=3)
    other = voucher_tier(program, threshold=5)

    response = manager.patch(f"{tiers_url(program)}{other.pk}/", {"threshold": "3"}, format="json")

    assert response.status_code == 400
    assert "threshold" in response.json()
    other.refresh_from_db()
    assert other.threshold == Decimal("5")


def test_a_floor_above_the_base_price_is_refused(program, manager):
    response = manager.patch(f"/api/v1/programs/{program.slug}/", {"floor_price": "25.00"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"floor_price": ["The floor price cannot be above the base price."]}
    program.refresh_from_db()
    assert program.floor_price == Decimal("10.00")


# --- Django admin --------------------------------------------------------------------------------------


def admin_form(program: Program, **fields: Any) -> dict[str, Any]:
    data = {
        "program": program.pk, "name": "3 friends", "kind": "individual", "metric": "qualified_signups",
        "threshold": "3", "repeat_every": "", "reward_type": "percent_voucher", "reward_value": "20",
        "reward_text": "", "referee_reward_type": "", "referee_reward_value": "", "step": "", "drop_type": "",
        "drop_value": "", "is_active": "on",
    }  # fmt: skip
    data.update(fields)
    return data


def form_errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, "the admin accepted the form"
    return dict(response.context["adminform"].form.errors)


def test_the_admin_creates_a_valid_tier(program, admin_client):
    response = admin_client.post("/admin/rewards/rewardtier/add/", admin_form(program))

    assert response.status_code == 302
    assert RewardTier.objects.get().threshold == Decimal("3")


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"threshold": "0"}, "threshold", "The threshold must be above 0."),
        (
            {"kind": "collective", "threshold": "", "reward_type": "", "step": "5", "drop_type": "amount",
             "drop_value": "30.00"},
            "drop_value",
            "A drop above the base price makes a negative price.",
        ),
        (
            {"kind": "collective", "threshold": "", "reward_type": "", "step": "5", "drop_type": "percent",
             "drop_value": "101"},
            "drop_value",
            "A drop of more than 100% makes a negative price.",
        ),
    ],
    ids=["threshold-0", "drop-above-base", "drop-above-100-percent"],
)  # fmt: skip
def test_the_admin_refuses_a_tier_that_cannot_work_with_the_field_to_fix(program, admin_client, fields, field, message):
    response = admin_client.post("/admin/rewards/rewardtier/add/", admin_form(program, **fields))

    assert form_errors(response)[field] == [message]
    assert not RewardTier.objects.exists()


def test_the_admin_refuses_a_tier_colliding_with_another(program, admin_client):
    voucher_tier(program, threshold=3)

    response = admin_client.post("/admin/rewards/rewardtier/add/", admin_form(program, name="Again"))

    assert form_errors(response)["threshold"] == ["Another active tier already unlocks at this metric and threshold."]
    assert RewardTier.objects.count() == 1


def test_the_admin_refuses_a_floor_above_the_base_price(program, admin_client):
    response = admin_client.post(
        f"/admin/ambassadors/program/{program.pk}/change/",
        {
            "slug": program.slug,
            "name": program.name,
            "description": "",
            "destination_url": program.destination_url,
            "allowed_redirect_hosts": '["shop.example.com"]',
            "attribution_window_days": 30,
            "attribution_model": "last_click",
            "hold_period_days": 14,
            "currency": "EUR",
            "base_price": "20.00",
            "floor_price": "25.00",
            "velocity_limit": 5,
            "status": "open",
        },  # fmt: skip
    )

    assert form_errors(response)["floor_price"] == ["The floor price cannot be above the base price."]
    program.refresh_from_db()
    assert program.floor_price == Decimal("10.00")
