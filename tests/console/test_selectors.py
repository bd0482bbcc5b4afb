"""console.selectors: the typed read models of the screens, what each holds, and what each costs in queries
with one row and with many (the same)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from console.selectors import (
    AmbassadorCard,
    AmbassadorRef,
    AmbassadorStats,
    ChannelLine,
    ProgramRef,
    Progress,
    RewardLine,
    ambassador_card,
    attribution_explain,
    my_programs,
    program_overview,
)
from core.actors import Actor
from referrals.models import Signup
from referrals.selectors import ambassador_for_code
from referrals.services import signup_override, signup_record
from rewards.models import RewardGrant, RewardTier
from rewards.services import tier_create
from tests.console.conftest import SYSTEM
from tests.factories import ProgramFactory, enroll, staff_user
from tests.referrals.helpers import browser, visit

pytestmark = pytest.mark.django_db


def test_an_ambassador_card_holds_stats_rewards_progress_and_channels(screens):
    ana = ambassador_for_code(screens["book"], screens["ana"].code)

    card = ambassador_card(ana)

    voucher = RewardGrant.objects.get(ambassador=ana).voucher_code
    assert card == AmbassadorCard(
        email="ana@example.com",
        code=ana.code,
        display_name="Ana",
        link_path=f"/r/{ana.code}",
        program=ProgramRef(slug="book-launch", name="The Book Launch"),
        stats=AmbassadorStats(clicks=5, signups=3, qualified=2, conversions=0),
        rewards=(RewardLine(tier="Two friends", occurrence=1, status="unlocked", voucher_code=voucher),),
        progress=Progress(tier="Five friends", metric="qualified_signups", current=2, target=5, remaining=3),
        channels=(
            ChannelLine(channel="newsletter", code=f"{ana.code}-NEWSLETTER", clicks=3),
            ChannelLine(channel="main", code=ana.code, clicks=2),
        ),
    )


def test_a_card_is_a_frozen_plain_value(screens):
    card = ambassador_card(screens["ana"])

    with pytest.raises(dataclasses.FrozenInstanceError):
        card.code = "OTHER"  # type: ignore[misc]


def test_a_new_ambassador_has_zeros_no_rewards_and_no_progress_without_tiers(db):
    newcomer = enroll(ProgramFactory(slug="quiet"), "new@example.com")

    card = ambassador_card(newcomer)

    assert card.stats == AmbassadorStats(clicks=0, signups=0, qualified=0, conversions=0)
    assert (card.rewards, card.progress, card.channels) == ((), None, ())


def test_a_revoked_voucher_is_not_shown(screens):
    grant = RewardGrant.objects.get(ambassador=screens["ana"])
    RewardGrant.objects.filter(pk=grant.pk).update(status=RewardGrant.Status.REVOKED)

    (line,) = ambassador_card(screens["ana"]).rewards

    assert (line.status, line.voucher_code) == ("revoked", None)


def test_my_programs_lists_only_my_ambassadorships(screens):
    cards = my_programs(screens["ana"].user)

    assert [c.program.slug for c in cards] == ["book-launch", "summer-club"]
    assert all(c.email == "ana@example.com" for c in cards)


# my_programs: 1 the ambassadorships with program and counters, 2 the days the click retention purged,
# 3 clicks per link (roll-ups of those days and later click rows), 4 signups, 5 approved conversions,
# 6 grants with their tiers, 7 the programs' active individual tiers.
MY_PROGRAMS_QUERIES = 7


def test_my_programs_costs_the_same_queries_for_one_program_as_for_many(db, django_assert_num_queries):
    first = enroll(ProgramFactory(slug="first"), "ana@example.com")
    visit(browser(), first.code)
    with django_assert_num_queries(MY_PROGRAMS_QUERIES):
        assert len(my_programs(first.user)) == 1

    for n in range(6):
        program = ProgramFactory(slug=f"more-{n}")
        voucher_tier = tier_create(
            program=program, actor=SYSTEM, name="One friend", kind=RewardTier.Kind.INDIVIDUAL,
            metric=RewardTier.Metric.QUALIFIED_SIGNUPS, threshold=Decimal("1"),
            reward_type=RewardTier.RewardType.PERCENT_VOUCHER, reward_value=Decimal("10"),
        )  # fmt: skip
        assert voucher_tier.pk
        more = enroll(program, "ana@example.com")
        visit(browser(f"198.51.100.{n + 1}"), more.code)
        signup_record(program=program, email=f"f{n}@example.org", referral_code=more.code, actor=SYSTEM)
    with django_assert_num_queries(MY_PROGRAMS_QUERIES):
        assert len(my_programs(first.user)) == 7


# --- program_overview --------------------------------------------------------------------------------


def _ladder(program):
    return tier_create(
        program=program, actor=SYSTEM, name="Community price", kind=RewardTier.Kind.COLLECTIVE, step=1,
        drop_type="amount", drop_value=Decimal("1.00"),
    )  # fmt: skip


def _subscribers(program, count, django_capture_on_commit_callbacks, start=0):
    for n in range(start, start + count):
        with django_capture_on_commit_callbacks(execute=True):  # milestones are reached by the recalculation
            signup_record(program=program, email=f"sub{n}@example.org", actor=SYSTEM)


def test_program_overview_shows_price_counters_and_milestones_in_order(program, django_capture_on_commit_callbacks):
    _ladder(program)
    _subscribers(program, 2, django_capture_on_commit_callbacks)

    overview = program_overview(program)

    assert (overview.slug, overview.name, overview.status) == ("book-launch", "The Book Launch", "open")
    assert (overview.signups, overview.qualified) == (2, 2)
    assert overview.price.current_price == "18.00"
    assert overview.price.milestones_reached == 2
    assert [(m.occurrence, m.count_at, m.price_after) for m in overview.milestones] == [
        (1, 1, "19.00"),
        (2, 2, "18.00"),
    ]


# program_overview: 1 program counters, 2 milestones; program_price: 3 collective tier, 4 its counters,
# 5 milestones reached.
OVERVIEW_QUERIES = 5


def test_program_overview_costs_the_same_queries_with_one_milestone_as_with_many(
    program, django_capture_on_commit_callbacks, django_assert_num_queries
):
    _ladder(program)
    _subscribers(program, 1, django_capture_on_commit_callbacks)
    with django_assert_num_queries(OVERVIEW_QUERIES):
        assert len(program_overview(program).milestones) == 1

    _subscribers(program, 7, django_capture_on_commit_callbacks, start=1)
    with django_assert_num_queries(OVERVIEW_QUERIES):
        assert len(program_overview(program).milestones) == 8


# --- attribution_explain -----------------------------------------------------------------------------


def test_a_click_credited_signup_is_explained_by_its_click(program, ambassador):
    _, click_id = visit(browser(), ambassador.code)
    signup = signup_record(program=program, email="friend@example.org", click_id=click_id, actor=SYSTEM)[0]

    explanation = attribution_explain(signup)

    assert (explanation.method, explanation.status, explanation.reason) == ("api", "qualified", "")
    assert explanation.ambassador == AmbassadorRef(code=ambassador.code, display_name="Ana")
    assert explanation.click is not None
    assert (explanation.click.id, explanation.click.channel, explanation.click.is_bot) == (click_id, "main", False)
    assert [e.action for e in explanation.events] == ["signup.recorded"]


def test_an_overridden_signup_shows_every_decision_oldest_first(program, ambassador):
    bob = enroll(program, "bob@example.com", display_name="Bob")
    auditor = Actor.for_user(staff_user("auditor", group="auditors"))
    signup = signup_record(program=program, email="friend@example.org", referral_code=ambassador.code, actor=SYSTEM)[0]
    signup = signup_override(signup=signup, ambassador=bob, reason="Bob brought her", actor=auditor)

    explanation = attribution_explain(signup)

    assert (explanation.method, explanation.click) == ("manual", None)
    assert explanation.ambassador == AmbassadorRef(code=bob.code, display_name="Bob")
    assert [e.action for e in explanation.events] == ["signup.recorded", "signup.overridden"]
    assert ambassador.code in explanation.events[0].reason  # first credited for the code given
    assert explanation.events[1].reason == "Bob brought her"
    assert explanation.events[1].actor_label == "auditor"
    assert explanation.events[1].after["ambassador"] == bob.code


def test_an_unattributed_signup_is_explained_as_such(program):
    signup = signup_record(program=program, email="walk-in@example.org", actor=SYSTEM)[0]

    explanation = attribution_explain(signup)

    assert (explanation.method, explanation.ambassador, explanation.click) == ("none", None, None)


# attribution_explain: 1 the signup with its ambassador, click and link, 2 its audit events.
EXPLAIN_QUERIES = 2


def test_attribution_explain_costs_the_same_queries_with_one_event_as_with_many(
    program, ambassador, django_assert_num_queries
):
    bob = enroll(program, "bob@example.com")
    signup = signup_record(program=program, email="friend@example.org", referral_code=ambassador.code, actor=SYSTEM)[0]
    with django_assert_num_queries(EXPLAIN_QUERIES):
        assert len(attribution_explain(signup).events) == 1

    for n in range(6):
        signup = signup_override(
            signup=signup, ambassador=bob if n % 2 == 0 else ambassador, reason=f"#{n}", actor=SYSTEM
        )
    assert Signup.objects.get(pk=signup.pk).ambassador_id == ambassador.pk
    with django_assert_num_queries(EXPLAIN_QUERIES):
        assert len(attribution_explain(signup).events) == 7
