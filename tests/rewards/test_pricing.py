"""The tier arithmetic of rewards/pricing.py, by example and by property."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from rewards.pricing import next_drop_at, occurrences_due, price_after

D = Decimal


def ladder(drop: str, drop_type: str = "amount") -> SimpleNamespace:
    return SimpleNamespace(drop_value=D(drop), drop_type=drop_type)


def program(base: str | None = "20.00", floor: str | None = "10.00") -> SimpleNamespace:
    return SimpleNamespace(
        base_price=None if base is None else D(base), floor_price=None if floor is None else D(floor)
    )


# --- By example ------------------------------------------------------------------------------------


def test_a_once_only_tier_unlocks_at_its_threshold_and_never_again():
    assert [occurrences_due(D(v), D(3), None) for v in range(8)] == [0, 0, 0, 1, 1, 1, 1, 1]


def test_a_repeating_tier_unlocks_again_every_n_after_its_threshold():
    assert [occurrences_due(D(v), D(3), D(2)) for v in range(10)] == [0, 0, 0, 1, 1, 2, 2, 3, 3, 4]


def test_a_converted_amount_tier_counts_cents():
    assert occurrences_due(D("49.99"), D("50.00"), D("25.50")) == 0
    assert occurrences_due(D("50.00"), D("50.00"), D("25.50")) == 1
    assert occurrences_due(D("75.49"), D("50.00"), D("25.50")) == 1
    assert occurrences_due(D("75.50"), D("50.00"), D("25.50")) == 2


def test_each_milestone_drops_the_price_by_the_amount_down_to_the_floor():
    prices = [price_after(program(), ladder("1.00"), m) for m in (0, 1, 3, 10, 11, 500)]
    assert prices == [D("20.00"), D("19.00"), D("17.00"), D("10.00"), D("10.00"), D("10.00")]


def test_a_percent_drop_is_a_percent_of_the_base_price_rounded_half_up_to_the_cent():
    # 7.5% of 19.99 is 1.49925: each drop is 1.50.
    assert price_after(program("19.99", "0.00"), ladder("7.5", "percent"), 1) == D("18.49")
    assert price_after(program("19.99", "0.00"), ladder("7.5", "percent"), 2) == D("16.99")
    assert price_after(program("19.99", "5.00"), ladder("7.5", "percent"), 100) == D("5.00")


def test_without_a_ladder_or_a_milestone_the_price_is_the_base_price():
    assert price_after(program(), None, 4) == D("20.00")
    assert price_after(program(), ladder("1.00"), 0) == D("20.00")
    assert price_after(program(None, None), ladder("1.00"), 3) is None


def test_a_program_without_a_floor_stops_at_zero():
    assert price_after(program("20.00", None), ladder("3.00"), 7) == D("0.00")


def test_the_next_drop_is_one_step_after_the_last_milestone_until_the_floor():
    assert next_drop_at(step=5, milestones=0, price=D("20.00"), floor=D("10.00")) == 5
    assert next_drop_at(step=5, milestones=3, price=D("17.00"), floor=D("10.00")) == 20
    assert next_drop_at(step=5, milestones=10, price=D("10.00"), floor=D("10.00")) is None


# --- By property -----------------------------------------------------------------------------------

cents = st.integers(min_value=1, max_value=50_000).map(lambda c: D(c) / 100)
counts = st.integers(min_value=0, max_value=5_000).map(D)


def brute_force_occurrences(value: Decimal, threshold: Decimal, repeat: Decimal | None) -> int:
    """Walk the unlock points one by one: threshold, threshold + repeat, ..."""
    found, point = 0, threshold
    while point <= value:
        found += 1
        if not repeat:
            break
        point += repeat
    return found


@given(value=counts, threshold=st.integers(1, 200).map(D), repeat=st.none() | st.integers(1, 50).map(D))
def test_occurrences_match_walking_the_unlock_points_for_counts(value, threshold, repeat):
    assert occurrences_due(value, threshold, repeat) == brute_force_occurrences(value, threshold, repeat)


@given(value=cents, threshold=cents, repeat=st.none() | st.integers(100, 50_000).map(lambda c: D(c) / 100))
def test_occurrences_match_walking_the_unlock_points_for_amounts(value, threshold, repeat):
    assert occurrences_due(value, threshold, repeat) == brute_force_occurrences(value, threshold, repeat)


@given(value=counts, more=counts, threshold=st.integers(1, 200).map(D), repeat=st.none() | st.integers(1, 50).map(D))
def test_more_of_the_metric_never_unlocks_fewer_occurrences(value, more, threshold, repeat):
    assert occurrences_due(value + more, threshold, repeat) >= occurrences_due(value, threshold, repeat)


prices = st.integers(min_value=0, max_value=100_000).map(lambda c: D(c) / 100)


@st.composite
def ladders(draw: st.DrawFn) -> tuple[SimpleNamespace, SimpleNamespace]:
    base = draw(prices)
    floor = draw(st.integers(0, int(base * 100)).map(lambda c: D(c) / 100))
    if draw(st.booleans()):
        tier = ladder(str(draw(st.integers(1, 10_000).map(lambda c: D(c) / 100))), "amount")
    else:
        tier = ladder(str(draw(st.integers(1, 10_000).map(lambda c: D(c) / 100))), "percent")
    return SimpleNamespace(base_price=base, floor_price=floor), tier


@given(setup=ladders(), milestones=st.integers(0, 300))
def test_the_price_never_rises_never_leaves_base_to_floor_and_is_in_cents(setup, milestones):
    prog, tier = setup
    now, after = price_after(prog, tier, milestones), price_after(prog, tier, milestones + 1)
    assert prog.floor_price <= after <= now <= prog.base_price
    assert now == now.quantize(D("0.01"))


@given(setup=ladders(), milestones=st.integers(0, 300))
def test_each_milestone_drops_exactly_one_step_until_the_floor(setup, milestones):
    prog, tier = setup
    step = tier.drop_value if tier.drop_type == "amount" else (prog.base_price * tier.drop_value / 100)
    step = step.quantize(D("0.01"), rounding="ROUND_HALF_UP")
    expected = max(prog.floor_price, prog.base_price - step * milestones)
    assert price_after(prog, tier, milestones) == expected


@given(step=st.integers(1, 1000), milestones=st.integers(0, 1000))
def test_the_next_drop_is_always_ahead_of_the_last_milestone_reached(step, milestones):
    at = next_drop_at(step=step, milestones=milestones, price=D("15.00"), floor=D("10.00"))
    assert at == (milestones + 1) * step
    assert at > milestones * step
