"""The tier preview (console/staff/preview.py) against ladders and unlock counts computed by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ambassadors.models import AmbassadorCounters
from console.staff.forms import TierForm
from console.staff.preview import LadderPreview, price_ladder, tier_preview, unlock_preview
from rewards.models import RewardTier
from tests.factories import ProgramFactory, enroll

D = Decimal


def prices(ladder: LadderPreview) -> list[str]:
    return [str(line.price) for line in ladder.steps]


def test_an_amount_drop_goes_down_by_the_amount_each_step_to_the_floor():
    ladder = price_ladder(
        base_price=D("20.00"), floor_price=D("10.00"), step=5, drop_type="amount", drop_value=D("2.50")
    )

    assert prices(ladder) == ["20.00", "17.50", "15.00", "12.50", "10.00"]
    assert [line.subscribers for line in ladder.steps] == [0, 5, 10, 15, 20]
    assert [str(line.drop) for line in ladder.steps] == ["0.00", "2.50", "2.50", "2.50", "2.50"]
    assert ladder.drops_to_floor == 4
    assert ladder.floor_at == 20
    assert ladder.hidden_steps == 0
    assert [line.at_floor for line in ladder.steps] == [False, False, False, False, True]
    assert not any(line.cut_short for line in ladder.steps[:-1])
    # The bars: 100%, 87.5% (to 90), 75%, 62.5% (to 60, half to even), 50%.
    assert [line.bar for line in ladder.steps] == [100, 90, 75, 60, 50]


def test_a_percent_drop_is_a_share_of_the_base_price_and_the_floor_cuts_the_last_step_short():
    # 15% of 20.00 is 3.00 a step: 17, 14, 11, then 8 would go below the floor of 10: it stops at 10.
    ladder = price_ladder(
        base_price=D("20.00"), floor_price=D("10.00"), step=10, drop_type="percent", drop_value=D("15")
    )

    assert prices(ladder) == ["20.00", "17.00", "14.00", "11.00", "10.00"]
    assert [str(line.drop) for line in ladder.steps] == ["0.00", "3.00", "3.00", "3.00", "1.00"]
    assert ladder.drops_to_floor == 4
    assert ladder.floor_at == 40
    assert ladder.steps[-1].cut_short
    assert not ladder.steps[-2].cut_short


def test_a_percent_drop_is_rounded_to_the_cent_half_up():
    # 10% of 9.99 is 0.999, rounded to 1.00: 9.99, 8.99, 7.99, 6.99, 5.99, then the floor of 5.00.
    ladder = price_ladder(base_price=D("9.99"), floor_price=D("5.00"), step=1, drop_type="percent", drop_value=D("10"))

    assert prices(ladder) == ["9.99", "8.99", "7.99", "6.99", "5.99", "5.00"]
    assert ladder.drops_to_floor == 5


def test_a_drop_that_rounds_to_nothing_never_reaches_the_floor():
    # 0.1% of 1.00 is 0.001, which rounds to 0.00: the price never moves.
    ladder = price_ladder(base_price=D("1.00"), floor_price=D("0.50"), step=3, drop_type="percent", drop_value=D("0.1"))

    assert ladder.drops_to_floor is None
    assert ladder.floor_at is None
    assert prices(ladder) == ["1.00"]
    assert ladder.hidden_steps == 0


def test_a_long_ladder_is_drawn_in_part_and_says_where_the_floor_is():
    ladder = price_ladder(
        base_price=D("100.00"), floor_price=D("0.00"), step=10, drop_type="amount", drop_value=D("1"), max_rows=40
    )

    assert len(ladder.steps) == 41  # the base and 40 drops
    assert ladder.steps[-1].price == D("60.00")
    assert ladder.drops_to_floor == 100
    assert ladder.hidden_steps == 60
    assert ladder.floor_at == 1000


def test_a_base_price_equal_to_the_floor_has_nothing_to_drop():
    ladder = price_ladder(base_price=D("10.00"), floor_price=D("10.00"), step=5, drop_type="amount", drop_value=D("1"))

    assert prices(ladder) == ["10.00"]
    assert ladder.drops_to_floor == 0
    assert ladder.steps[0].at_floor and not ladder.steps[0].cut_short


def test_the_subscribers_of_today_say_how_far_the_price_falls_at_once_and_stop_at_the_floor():
    common = {"base_price": D("20.00"), "floor_price": D("10.00"), "step": 5, "drop_type": "amount"}

    today = price_ladder(**common, drop_value=D("2.50"), subscribers_today=23)
    beyond = price_ladder(**common, drop_value=D("2.50"), subscribers_today=500)

    assert (today.drops_today, today.price_today) == (4, D("10.00"))  # 23 // 5 = 4 drops: the floor
    assert (beyond.drops_today, beyond.price_today) == (4, D("10.00"))
    halfway = price_ladder(**common, drop_value=D("1.00"), subscribers_today=12)
    assert (halfway.drops_today, halfway.price_today) == (2, D("18.00"))


def counters(*values: int, amount: str = "0") -> list[AmbassadorCounters]:
    return [AmbassadorCounters(qualified=v, conversions=v, converted_amount=D(amount)) for v in values]


def test_an_individual_tier_counts_the_ambassadors_it_would_reward_today():
    # Qualified 0, 2, 3, 5, 7, 9 against a threshold of 3: four ambassadors reach it.
    preview = unlock_preview(
        metric="qualified_signups", threshold=D("3"), repeat_every=None, counters=counters(0, 2, 3, 5, 7, 9)
    )

    assert (preview.ambassadors, preview.unlocking, preview.occurrences) == (6, 4, 4)


def test_repeat_every_counts_each_occurrence_due():
    # Again every 3: 3-5 -> 1, 6-8 -> 2, 9-11 -> 3; so 3, 5, 7, 9 make 1 + 1 + 2 + 3 = 7 rewards.
    preview = unlock_preview(
        metric="qualified_signups", threshold=D("3"), repeat_every=D("3"), counters=counters(0, 2, 3, 5, 7, 9)
    )

    assert (preview.unlocking, preview.occurrences) == (4, 7)


def test_the_converted_amount_metric_reads_the_amount_in_cents():
    lines = counters(0, amount="49.99") + counters(0, amount="50.00") + counters(0, amount="120.00")

    preview = unlock_preview(metric="converted_amount", threshold=D("50"), repeat_every=D("50"), counters=lines)

    assert (preview.unlocking, preview.occurrences) == (2, 3)  # 50.00 -> 1, 120.00 -> 2


# --- The same through the database and the form's validation -------------------------------------------


@pytest.mark.django_db
def test_the_preview_of_an_individual_tier_reads_the_active_ambassadors_counters(django_assert_num_queries):
    program = ProgramFactory(slug="counted")
    for email, qualified in (("a@example.com", 1), ("b@example.com", 4), ("c@example.com", 6)):
        AmbassadorCounters.objects.filter(ambassador=enroll(program, email)).update(qualified=qualified)
    gone = enroll(program, "gone@example.com")
    AmbassadorCounters.objects.filter(ambassador=gone).update(qualified=50)
    type(gone).objects.filter(pk=gone.pk).update(is_active=False)
    fields = {"kind": "individual", "metric": "qualified_signups", "threshold": D("4"), "repeat_every": None}

    with django_assert_num_queries(1):
        preview = tier_preview(program, fields)

    assert preview is not None and not isinstance(preview, LadderPreview)
    assert (preview.ambassadors, preview.unlocking, preview.occurrences) == (3, 2, 2)


@pytest.mark.django_db
def test_a_threshold_of_zero_is_refused_before_any_preview():
    program = ProgramFactory(slug="zero")
    form = TierForm(
        {"name": "Nothing", "kind": "individual", "metric": "qualified_signups", "threshold": "0",
         "reward_type": "custom", "reward_text": "A mug", "is_active": "on"},
        program=program,
    )  # fmt: skip

    assert not form.is_valid()
    assert "threshold" in form.errors


@pytest.mark.django_db
def test_a_collective_tier_checked_by_the_form_previews_its_ladder():
    program = ProgramFactory(slug="ladder", base_price=D("20.00"), floor_price=D("10.00"))
    form = TierForm(
        {"name": "Drop", "kind": "collective", "step": "5", "drop_type": "percent", "drop_value": "15",
         "metric": "qualified_signups", "is_active": "on"},
        program=program,
    )  # fmt: skip

    assert form.is_valid(), form.errors
    preview = tier_preview(program, form.tier_fields())

    assert isinstance(preview, LadderPreview)
    assert prices(preview) == ["20.00", "17.00", "14.00", "11.00", "10.00"]
    assert RewardTier.objects.count() == 0  # a preview saves nothing
