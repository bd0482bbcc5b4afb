"""Reward tiers in the staff console: created and changed through the services with the API's validation,
and previewed before saving (with htmx, or without any script) without saving anything."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from ambassadors.models import AmbassadorCounters
from core.actors import Actor
from core.models import AuditEvent
from rewards.models import RewardTier
from rewards.services import tier_create
from tests.factories import ProgramFactory, enroll

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")
LADDER = {"name": "Cheaper together", "kind": "collective", "metric": "qualified_signups", "step": "5",
          "drop_type": "percent", "drop_value": "15", "is_active": "on"}  # fmt: skip
VOUCHER = {"name": "Three friends", "kind": "individual", "metric": "qualified_signups", "threshold": "3",
           "repeat_every": "3", "reward_type": "percent_voucher", "reward_value": "20", "is_active": "on"}  # fmt: skip
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def staff(marketer) -> Client:
    client = Client()
    client.force_login(marketer)
    return client


def url(name: str, program: Any, **kwargs: Any) -> str:
    return reverse(name, kwargs={"slug": program.slug, **kwargs})


def errors_of(response: Any) -> dict[str, list[str]]:
    return {name: list(errors) for name, errors in response.context["form"].errors.items()}


def with_counters(program: Any, *qualified: int, prefix: str = "amb") -> None:
    for n, count in enumerate(qualified):
        ambassador = enroll(program, f"{prefix}{n}@example.com")
        AmbassadorCounters.objects.filter(ambassador=ambassador).update(qualified=count)


# --- Saving ------------------------------------------------------------------------------------------


def test_a_collective_tier_is_created_through_the_service_and_audited(staff, program):
    response = staff.post(url("staff-tier-create", program), LADDER)

    assert response.status_code == 302
    assert response["Location"] == url("staff-program", program) + "#tiers"
    tier = RewardTier.objects.get(program=program)
    assert (tier.kind, tier.step, tier.drop_type, tier.drop_value) == ("collective", 5, "percent", Decimal("15"))
    assert AuditEvent.objects.filter(action="tier.created", object_id=str(tier.pk)).exists()


def test_an_individual_tier_is_created_with_its_repeat(staff, program):
    assert staff.post(url("staff-tier-create", program), VOUCHER).status_code == 302

    tier = RewardTier.objects.get(program=program)
    assert (tier.threshold, tier.repeat_every, tier.reward_value) == (Decimal("3"), Decimal("3"), Decimal("20"))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (VOUCHER | {"threshold": "0"}, "threshold"),
        (VOUCHER | {"threshold": "2.5"}, "threshold"),  # counts are whole numbers
        (VOUCHER | {"reward_value": "120"}, "reward_value"),  # a percent voucher is at most 100%
        (VOUCHER | {"reward_type": ""}, "reward_type"),
        (LADDER | {"step": "0"}, "step"),
        (LADDER | {"drop_value": "101"}, "drop_value"),
        (LADDER | {"drop_type": ""}, "drop_type"),
        (LADDER | {"kind": "other"}, "kind"),
        (VOUCHER | {"name": ""}, "name"),
        (VOUCHER | {"voucher_valid_days": "0"}, "voucher_valid_days"),
        (VOUCHER | {"voucher_valid_days": "3651"}, "voucher_valid_days"),
        (VOUCHER | {"voucher_valid_days": "-3"}, "voucher_valid_days"),
        (VOUCHER | {"reward_type": "custom", "reward_text": "A mug", "voucher_valid_days": "30"}, "voucher_valid_days"),
    ],
)
def test_a_tier_the_api_would_refuse_is_refused_with_the_field_to_fix(staff, program, data, field):
    response = staff.post(url("staff-tier-create", program), data)

    assert response.status_code == 400
    assert field in errors_of(response), errors_of(response)
    assert not RewardTier.objects.exists()


def test_the_form_offers_how_long_vouchers_stay_valid_and_saves_it(staff, program):
    page = staff.get(url("staff-tier-create", program)).content.decode()

    assert 'name="voucher_valid_days"' in page and "Vouchers valid for (days)" in page
    assert "Empty: they never expire." in page
    assert staff.post(url("staff-tier-create", program), VOUCHER | {"voucher_valid_days": "30"}).status_code == 302
    assert RewardTier.objects.get().voucher_valid_days == 30


def test_a_ladder_needs_the_programs_prices(staff):
    program = ProgramFactory(slug="no-price", base_price=None, floor_price=None)

    response = staff.post(url("staff-tier-create", program), LADDER)

    assert response.status_code == 400
    assert "kind" in errors_of(response)


def test_a_second_active_ladder_is_refused(staff, program):
    staff.post(url("staff-tier-create", program), LADDER)

    response = staff.post(url("staff-tier-create", program), LADDER | {"name": "Another"})

    assert response.status_code == 400
    assert "kind" in errors_of(response)
    assert RewardTier.objects.count() == 1


def test_editing_a_tier_goes_through_tier_update(staff, program):
    staff.post(url("staff-tier-create", program), VOUCHER)
    tier = RewardTier.objects.get()

    page = staff.get(url("staff-tier", program, tier_id=tier.pk))
    response = staff.post(url("staff-tier", program, tier_id=tier.pk), VOUCHER | {"threshold": "4"})

    assert page.status_code == 200 and page.context["form"].initial["threshold"] == Decimal("3")
    assert response.status_code == 302
    tier.refresh_from_db()
    assert tier.threshold == Decimal("4")
    event = AuditEvent.objects.get(action="tier.updated", object_id=str(tier.pk))
    assert (event.before["threshold"], event.after["threshold"]) == ("3.00", "4.00")


def test_a_tier_of_another_program_is_a_404(staff, program):
    other = ProgramFactory(slug="other")
    tier = tier_create(program=other, actor=SYSTEM, name="X", kind="individual", threshold=Decimal(1),
                       reward_type="custom", reward_text="Mug")  # fmt: skip

    assert staff.get(url("staff-tier", program, tier_id=tier.pk)).status_code == 404
    assert staff.post(url("staff-tier-preview", program) + f"?tier={tier.pk}", VOUCHER).status_code == 404


# --- The preview -------------------------------------------------------------------------------------


def test_without_script_the_preview_button_shows_the_ladder_under_the_form_and_saves_nothing(staff, program):
    response = staff.post(url("staff-tier-create", program), LADDER | {"preview": "1"})

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="ladder-table"' in html
    # 20.00 base, 15% = 3.00 a drop: 17, 14, 11, then the floor of 10 (a drop of 1.00, stopped by the floor).
    assert [str(step.price) for step in response.context["preview"].steps] == [
        "20.00", "17.00", "14.00", "11.00", "10.00"
    ]  # fmt: skip
    assert "€17.00" in html and "(stopped by the floor)" in html
    assert response.context["form"]["name"].value() == "Cheaper together"  # the form keeps what was typed
    assert not RewardTier.objects.exists()


def test_the_htmx_preview_answers_the_fragment_only(staff, program):
    response = staff.post(url("staff-tier-preview", program), LADDER, **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and 'id="ladder-table"' in html
    assert html.count('class="fill w') == 5  # one bar per line of the ladder
    assert "HX-Request" in response["Vary"]
    assert not RewardTier.objects.exists()


def test_the_preview_of_an_individual_tier_counts_who_would_unlock_it_today(staff, program):
    with_counters(program, 0, 2, 3, 5, 7, 9)

    response = staff.post(url("staff-tier-preview", program), VOUCHER, **HTMX)

    preview = response.context["preview"]
    assert (preview.ambassadors, preview.unlocking, preview.occurrences) == (6, 4, 7)
    assert "would reward 4 ambassadors of 6 today" in response.content.decode()


def test_an_invalid_tier_is_not_previewed_but_explained(staff, program):
    htmx = staff.post(url("staff-tier-preview", program), VOUCHER | {"threshold": "0"}, **HTMX)
    plain = staff.post(url("staff-tier-preview", program), VOUCHER | {"threshold": "0"})

    assert htmx.status_code == 200  # htmx swaps only a 2xx answer
    assert htmx.context["preview"] is None
    assert "The threshold must be above 0." in htmx.content.decode()
    assert plain.status_code == 400
    assert "threshold" in errors_of(plain)


def test_previewing_an_edit_does_not_count_the_tier_against_itself(staff, program):
    staff.post(url("staff-tier-create", program), LADDER)
    tier = RewardTier.objects.get()

    response = staff.post(url("staff-tier-preview", program) + f"?tier={tier.pk}", LADDER | {"step": "10"}, **HTMX)

    assert response.status_code == 200
    assert response.context["preview"].step == 10  # not "the program already has an active ladder"


def test_a_saved_tier_shows_what_it_does_today(staff, program):
    with_counters(program, 1, 4)
    staff.post(url("staff-tier-create", program), VOUCHER | {"repeat_every": ""})
    tier = RewardTier.objects.get()

    response = staff.get(url("staff-tier", program, tier_id=tier.pk))

    assert response.context["preview"].unlocking == 1
    assert "What this tier does today" in response.content.decode()


def test_the_preview_answers_only_a_post(staff, program):
    assert staff.get(url("staff-tier-preview", program)).status_code == 405


def test_a_tier_page_asks_the_same_number_of_queries_whatever_the_number_of_ambassadors(
    staff, program, django_assert_num_queries
):
    staff.post(url("staff-tier-create", program), VOUCHER)
    tier = RewardTier.objects.get()
    page = url("staff-tier", program, tier_id=tier.pk)

    with_counters(program, 1, 4)
    # Session, user, groups (the policy), the program, the tier, the counters its preview reads.
    with django_assert_num_queries(6):
        assert staff.get(page).context["preview"].ambassadors == 2
    with_counters(program, *range(30), prefix="more")
    with django_assert_num_queries(6):
        assert staff.get(page).context["preview"].ambassadors == 32


def test_a_ladder_posted_without_the_individual_settings_is_saved(staff, program):
    # The page's script disables the individual tier's settings when the kind is collective: none is sent.
    ladder = {name: value for name, value in LADDER.items() if name != "metric"}

    assert staff.post(url("staff-tier-create", program), ladder).status_code == 302
    assert RewardTier.objects.get().metric == "qualified_signups"
