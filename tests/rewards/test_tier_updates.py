"""A partial update of a tier or a program runs the same validation as its creation, on the merged values;
a database constraint that still refuses a row is a 400 naming the field, never a 500."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ambassadors.models import Program
from core.constraints import constraint_errors_as_invalid_input
from core.errors import InvalidInput
from rewards.models import RewardTier
from tests.conftest import bearer
from tests.rewards.conftest import price_ladder, voucher_tier

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(api, manage_key):
    api.credentials(**bearer(manage_key))
    return api


def tier_url(tier: RewardTier) -> str:
    return f"/api/v1/programs/{tier.program.slug}/tiers/{tier.pk}/"


@pytest.mark.parametrize(
    ("make", "body", "field"),
    [
        # Found by schemathesis on a live server: an individual tier has no step, so nothing checked it.
        (voucher_tier, {"step": 0}, "step"),
        (price_ladder, {"step": 0}, "step"),
        # A ladder has no threshold, so nothing checked one given to it either.
        (price_ladder, {"threshold": "0"}, "threshold"),
        (price_ladder, {"repeat_every": "-1"}, "repeat_every"),
        (voucher_tier, {"repeat_every": "0"}, "repeat_every"),
        (voucher_tier, {"kind": "collective"}, "step"),
    ],
    ids=["individual-step-0", "ladder-step-0", "ladder-threshold-0", "ladder-repeat-negative", "repeat-0", "switch"],
)
def test_patching_a_tier_with_a_value_its_kind_ignores_is_a_400_naming_the_field(program, manager, make, body, field):
    tier = make(program)
    before = {name: getattr(tier, name) for name in ("kind", "step", "threshold", "repeat_every")}

    response = manager.patch(tier_url(tier), body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    tier.refresh_from_db()
    assert {name: getattr(tier, name) for name in before} == before


def test_creating_an_individual_tier_with_a_step_of_0_is_refused_too(program, manager):
    body = {"name": "3 friends", "kind": "individual", "threshold": "3", "reward_type": "percent_voucher",
            "reward_value": "20", "step": 0}  # fmt: skip

    response = manager.post(f"/api/v1/programs/{program.slug}/tiers/", body, format="json")

    assert response.status_code == 400
    assert "step" in response.json()


def test_a_check_constraint_that_slips_through_is_invalid_input_naming_its_field(program):
    tier = voucher_tier(program)

    with pytest.raises(InvalidInput) as refused, constraint_errors_as_invalid_input(RewardTier):
        RewardTier.objects.filter(pk=tier.pk).update(step=0)

    assert refused.value.field == "step"


def test_a_unique_constraint_that_slips_through_is_invalid_input_naming_its_field(program):
    with pytest.raises(InvalidInput) as refused, constraint_errors_as_invalid_input(Program):
        Program.objects.create(slug=program.slug, name="Same slug")

    assert refused.value.field == "slug"


def test_a_floor_below_zero_slipping_through_names_the_floor_price(program):
    with pytest.raises(InvalidInput) as refused, constraint_errors_as_invalid_input(Program):
        Program.objects.filter(pk=program.pk).update(floor_price=Decimal("-1"))

    assert refused.value.field == "floor_price"


def test_patching_a_program_with_only_a_floor_checks_it_against_the_stored_base(program, manager):
    response = manager.patch(f"/api/v1/programs/{program.slug}/", {"floor_price": "-1.00"}, format="json")

    assert response.status_code == 400
    assert "floor_price" in response.json()
    program.refresh_from_db()
    assert program.floor_price == Decimal("10.00")
