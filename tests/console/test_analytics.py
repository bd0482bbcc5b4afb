"""console.analytics against a small program whose every figure was computed by hand (see the comments of
`shop`): the funnel, subscribers per day and week, the 80/20 share, K per cohort, the value ranking and the
influencer/ambassador labels, with walk-ins, held and rejected signups, bot clicks, pending and refunded
purchases, an inactive ambassador and one without any click. Also an empty program, and the query counts.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from ambassadors.models import Ambassador
from console.analytics import (
    CohortPoint,
    FunnelStep,
    ParetoPoint,
    Period,
    ReachRow,
    ValueRow,
    WeekPoint,
    cohorts,
    daily_subscribers,
    funnel,
    funnel_sales,
    pareto,
    percent,
    program_analytics,
    reach,
    reach_stream,
    sources,
    value_ranking,
    value_stream,
    weekly_sources,
)
from core.actors import Actor
from referrals.models import Click, Conversion, RollupDay, Signup
from referrals.services import (
    conversion_approve,
    conversion_record,
    conversion_refund,
    signup_override,
    signup_record,
    signup_review,
    signup_status_change,
)
from referrals.services.rollups import rollup_due
from rewards.models import Milestone, RewardTier
from rewards.services import tier_create
from tests.factories import ProgramFactory, UserFactory, enroll, staff_user

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
# February and March 2026: 59 days, ISO weeks 5 (from Monday 26 January) to 14 (Monday 30 March).
PERIOD = Period(first=date(2026, 2, 1), last=date(2026, 3, 31))
PAGE_QUERIES = 8


def at(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


# Every figure below is read three ways, and must be the same: from the source rows alone (nothing rolled up
# yet), from the roll-ups of every past day and week (the weeks of 2 February to 23 March whole, the other
# days from the daily roll-ups), and half and half (the roll-ups up to 5 March: the weeks up to the one of
# 23 February, 2 to 5 March from the daily roll-ups, the rest from the source rows).
READS = {"source rows": None, "rolled up": at(4, 10), "half rolled up": at(3, 6)}


@pytest.fixture(params=list(READS))
def shop(request, time_machine) -> dict[str, Any]:
    built = _shop(time_machine)
    rolled_up_until = READS[request.param]
    if rolled_up_until is not None:
        rollup_due(programs=[built["program"]], now=rolled_up_until)
        assert RollupDay.objects.filter(program=built["program"], signups_sealed=True).exists()
        # Whole weeks read from the weekly roll-ups, other days from the daily ones or the source rows.
        read = sources(built["program"], PERIOD)
        assert read.signup_weeks and read.click_weeks
        assert read.signup_days or read.raw_signups
    return built


def _shop(time_machine: Any) -> dict[str, Any]:
    """The program, built through the services at the moments given. Thresholds: influencer >= 10 clicks and
    under 20 %; ambassador >= 2 qualified and at least 25 %.

    Ambassadors (joined): Ana 2 Feb, Bob 15 Feb, Cleo 3 Mar, Dan 3 Mar (nothing at all), Fay 6 Mar (codes
    only, no click), Eve 20 Jan (inactive today).
    Human clicks in the period: Ana 4 (+1 bot, +1 in April), Bob 12 (+3 bots), Cleo 2, Eve 1: 19.
    Signups (12:00 UTC): Ana's friends a1 10 Feb, a2 2 Mar, a3 9 Mar (qualified), a4 10 Mar (held for
    review), a5 11 Mar (rejected), a7 5 Apr (after the period); Bob's b1 3 Mar; Cleo's c1 4 Mar, c2 20 Mar;
    Eve's e0 25 Jan (before), e1 6 Mar; Fay's f1 7 Mar, f2 8 Mar; walk-ins: Ana herself 5 Feb, w1 20 Feb,
    w2 9 Mar.
    Purchases: a1 30.00 on 5 Mar approved and 20.00 on 6 Mar refunded; a2 10.00 pending; a3 15.00 in April;
    a5 (rejected) 70.00 approved; b1 100.00 approved; c1 25.00 approved; e0 40.00 on 2 Mar approved; w1
    60.00 approved; Ana's own 50.00 on 1 Mar approved.
    """
    tm = time_machine
    tm.move_to(at(1, 10), tick=False)
    program = ProgramFactory(
        slug="jam-club",
        name="Jam Club",
        influencer_min_clicks=10,
        influencer_max_rate=Decimal("20"),
        ambassador_min_qualified=2,
        ambassador_min_rate=Decimal("25"),
    )
    people: dict[str, Any] = {}
    for name, (month, day) in {
        "eve": (1, 20),
        "ana": (2, 2),
        "bob": (2, 15),
        "cleo": (3, 3),
        "dan": (3, 3),
        "fay": (3, 6),
    }.items():
        tm.move_to(at(month, day, 9), tick=False)
        people[name] = enroll(program, f"{name}@example.com", display_name=name.title())

    def clicks(who: str, count: int, moment: datetime, *, bot: bool = False) -> None:
        for _ in range(count):
            Click.objects.create(program=program, ambassador=people[who], created_at=moment, is_bot=bot)

    clicks("ana", 4, at(2, 3))
    clicks("ana", 1, at(2, 3), bot=True)
    clicks("ana", 1, at(4, 2))
    clicks("bob", 12, at(2, 20))
    clicks("bob", 3, at(2, 21), bot=True)
    clicks("cleo", 2, at(3, 3, 18))
    clicks("eve", 1, at(3, 1))

    def signup(email: str, who: str | None, moment: datetime) -> Any:
        tm.move_to(moment, tick=False)
        code = people[who].code if who else None
        return signup_record(program=program, email=email, referral_code=code, actor=SYSTEM)[0]

    signup("e0@example.org", "eve", at(1, 25))
    signup("ana@example.com", None, at(2, 5))  # Ana herself, a walk-in
    signup("a1@example.org", "ana", at(2, 10))
    signup("w1@example.org", None, at(2, 20))
    signup("a2@example.org", "ana", at(3, 2))
    signup("b1@example.org", "bob", at(3, 3))
    signup("c1@example.org", "cleo", at(3, 4))
    signup("e1@example.org", "eve", at(3, 6))
    signup("f1@example.org", "fay", at(3, 7))
    signup("f2@example.org", "fay", at(3, 8))
    signup("a3@example.org", "ana", at(3, 9))
    signup("w2@example.org", None, at(3, 9))
    held = signup("a4@mailinator.com", "ana", at(3, 10))
    rejected = signup("a5@mailinator.com", "ana", at(3, 11))
    signup_review(signup=rejected, status="rejected", reason="A fake", actor=SYSTEM)
    signup("c2@example.org", "cleo", at(3, 20))
    signup("a7@example.org", "ana", at(4, 5))
    assert held.status == "pending_review"

    def purchase(external_id: str, email: str, amount: str, moment: datetime, *, then: str = "approve") -> None:
        tm.move_to(moment, tick=False)
        conversion = conversion_record(
            program=program, actor=SYSTEM, external_id=external_id, amount=amount, currency="EUR", email=email
        )[0]
        if then in ("approve", "refund"):
            assert conversion_approve(conversion_id=conversion.pk, actor=SYSTEM)
        if then == "refund":
            conversion_refund(program=program, external_id=external_id, actor=SYSTEM)

    purchase("own-1", "ana@example.com", "50.00", at(3, 1))
    purchase("e0-1", "e0@example.org", "40.00", at(3, 2))
    purchase("w1-1", "w1@example.org", "60.00", at(3, 3))
    purchase("a1-1", "a1@example.org", "30.00", at(3, 5))
    purchase("a1-2", "a1@example.org", "20.00", at(3, 6), then="refund")
    purchase("a2-1", "a2@example.org", "10.00", at(3, 10), then="pending")
    purchase("a5-1", "a5@mailinator.com", "70.00", at(3, 12))
    purchase("b1-1", "b1@example.org", "100.00", at(3, 15))
    purchase("c1-1", "c1@example.org", "25.00", at(3, 21))
    purchase("a3-1", "a3@example.org", "15.00", at(4, 3))
    assert Conversion.objects.filter(status="reversed").count() == 1

    tier = tier_create(
        program=program, actor=SYSTEM, name="Ladder", kind=RewardTier.Kind.COLLECTIVE, step=1000,
        drop_type=RewardTier.DropType.AMOUNT, drop_value=Decimal("1.00"),
    )  # fmt: skip
    Milestone.objects.create(tier=tier, program=program, occurrence=1, count_at=1000, price_after=Decimal("19.00"),
                             reached_at=at(3, 4, 15))  # fmt: skip
    Milestone.objects.create(tier=tier, program=program, occurrence=2, count_at=2000, price_after=Decimal("18.00"),
                             reached_at=at(4, 6))  # fmt: skip
    Ambassador.objects.filter(pk=people["eve"].pk).update(is_active=False)
    tm.move_to(at(4, 10), tick=False)
    return {"program": program, **people}


def test_percent_rounds_half_up_to_one_place_and_never_divides_by_zero():
    assert percent(2, 3) == Decimal("66.7")
    assert percent(1, 8) == Decimal("12.5")
    assert percent(5, 0) is None


def test_the_funnel_follows_referred_signups_and_leaves_out_bots_walk_ins_rejected_and_refunds(shop):
    result = funnel(shop["program"], PERIOD)

    # 19 human clicks; 11 referred signups (a1-a5, b1, c1, c2, e1, f1, f2), 9 of them qualified (not a4
    # held, not a5 rejected); converted: a1 (30.00, its refunded 20.00 left out), b1, c1; not a2 (pending),
    # not a3 (April).
    assert (result.clicks, result.signups, result.qualified, result.converted) == (19, 11, 9, 3)
    assert result.walk_ins == 3  # Ana herself, w1, w2
    assert (result.approved_conversions, result.revenue, result.currency) == (3, Decimal("155.00"), "EUR")
    assert result.steps == (
        FunnelStep("clicks", 19, None),
        FunnelStep("signups", 11, Decimal("57.9")),  # 11/19
        FunnelStep("qualified", 9, Decimal("81.8")),  # 9/11
        FunnelStep("converted", 3, Decimal("33.3")),  # 3/9
    )


def test_subscribers_per_day_are_zero_filled_with_the_milestones_of_the_period(shop):
    result = daily_subscribers(shop["program"], PERIOD)

    assert len(result.days) == 59
    by_day = {point.day: (point.signups, point.qualified) for point in result.days}
    assert by_day[date(2026, 2, 1)] == (0, 0)
    assert by_day[date(2026, 2, 10)] == (1, 1)
    assert by_day[date(2026, 3, 9)] == (2, 2)  # a3 and the walk-in w2
    assert by_day[date(2026, 3, 10)] == (1, 0)  # a4, held
    assert by_day[date(2026, 3, 11)] == (1, 0)  # a5, rejected
    assert sum(p.signups for p in result.days) == 14
    assert sum(p.qualified for p in result.days) == 12
    assert [(m.day, m.occurrence, m.count_at, m.price_after, m.tier) for m in result.milestones] == [
        (date(2026, 3, 4), 1, 1000, Decimal("19.00"), "Ladder")
    ]


def test_sources_per_iso_week_split_qualified_signups_into_referred_and_walk_ins(shop):
    weeks = weekly_sources(shop["program"], PERIOD)

    assert [w.week for w in weeks][0] == date(2026, 1, 26)
    assert [w.week for w in weeks][-1] == date(2026, 3, 30)
    assert len(weeks) == 10
    busy = [w for w in weeks if w.referred or w.walk_ins]
    assert busy == [
        WeekPoint(date(2026, 2, 2), 2026, 6, referred=0, walk_ins=1, referred_share=Decimal("0.0")),
        WeekPoint(date(2026, 2, 9), 2026, 7, referred=1, walk_ins=0, referred_share=Decimal("100.0")),
        WeekPoint(date(2026, 2, 16), 2026, 8, referred=0, walk_ins=1, referred_share=Decimal("0.0")),
        WeekPoint(date(2026, 3, 2), 2026, 10, referred=6, walk_ins=0, referred_share=Decimal("100.0")),
        WeekPoint(date(2026, 3, 9), 2026, 11, referred=1, walk_ins=1, referred_share=Decimal("50.0")),
        WeekPoint(date(2026, 3, 16), 2026, 12, referred=1, walk_ins=0, referred_share=Decimal("100.0")),
    ]
    assert weeks[0].referred_share is None  # nobody that week


def test_the_top_fifth_of_active_ambassadors_and_the_cumulative_curve(shop):
    result = pareto(shop["program"], PERIOD)

    # Active: Ana 3, Cleo 2, Fay 2, Bob 1, Dan 0 (Eve is inactive): 8. The top 20 % is ceil(0.2 x 5) = 1: Ana.
    assert (result.ambassadors, result.top_count, result.referred_qualified, result.top_qualified) == (5, 1, 8, 3)
    assert result.top_share == Decimal("37.5")
    curve = {point.percentile: point.share for point in result.curve}
    assert len(result.curve) == 101
    assert result.curve[0] == ParetoPoint(Decimal("0.0"), Decimal("0.0"))
    assert curve[Decimal("20.0")] == Decimal("37.5")  # Ana
    assert curve[Decimal("21.0")] == Decimal("62.5")  # + Cleo (2)
    assert curve[Decimal("60.0")] == Decimal("87.5")  # + Fay (2)
    assert curve[Decimal("80.0")] == Decimal("100.0")  # + Bob (1)
    assert curve[Decimal("100.0")] == Decimal("100.0")  # + Dan (0)


def test_k_per_monthly_cohort_of_ambassadors(shop):
    result = cohorts(shop["program"], PERIOD)

    # February: Ana (a1, a2, a3; not a4, a5, nor a7 after the period) and Bob (b1): 4 / 2.
    # March: Cleo (2), Dan (0), Fay (2): 4 / 3. Eve joined in January: outside.
    assert result == (
        CohortPoint(date(2026, 2, 1), joined=2, qualified=4, k=Decimal("2.00")),
        CohortPoint(date(2026, 3, 1), joined=3, qualified=4, k=Decimal("1.33")),
    )


def test_value_ranks_by_what_recruits_bring_beside_own_spend(shop):
    p = shop
    rows = value_ranking(p["program"], PERIOD, limit=10)

    # Recruits' approved purchases in the period, whenever they signed up (Eve's e0 in January counts);
    # refunded, pending, rejected and April ones do not. Own spend: Ana's own 50.00.
    def row(who: str, *numbers: Any) -> ValueRow:
        a = p[who]
        return ValueRow(a.pk, a.code, a.display_name, a.email, *numbers)

    assert rows == (
        row("bob", 1, 1, Decimal("100.00"), 0, Decimal("0.00")),
        row("eve", 1, 1, Decimal("40.00"), 0, Decimal("0.00")),
        row("ana", 3, 1, Decimal("30.00"), 1, Decimal("50.00")),
        row("cleo", 2, 1, Decimal("25.00"), 0, Decimal("0.00")),
        row("fay", 2, 0, Decimal("0.00"), 0, Decimal("0.00")),
        row("dan", 0, 0, Decimal("0.00"), 0, Decimal("0.00")),
    )
    assert value_ranking(p["program"], PERIOD, limit=2) == rows[:2]


def test_a_reassigned_or_rejected_recruit_takes_their_purchases_along(shop, django_capture_on_commit_callbacks):
    """A purchase carries its signup's credit for the analytics: an override or a review moves it at once."""
    p = shop
    a1 = Signup.objects.get(program=p["program"], email="a1@example.org")
    b1 = Signup.objects.get(program=p["program"], email="b1@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        signup_override(signup=a1, ambassador=p["fay"], reason="Fay sent the link", actor=SYSTEM)
        signup_status_change(signup=b1, status="rejected", reason="A fake", actor=SYSTEM)

    values = {row.code: row for row in value_ranking(p["program"], PERIOD, limit=10)}

    # a1's 30.00 (approved in the period) moves from Ana to Fay; b1's 100.00 no longer counts for Bob.
    assert (values[p["ana"].code].recruit_conversions, values[p["ana"].code].recruit_revenue) == (0, Decimal("0.00"))
    assert (values[p["fay"].code].recruit_conversions, values[p["fay"].code].recruit_revenue) == (1, Decimal("30.00"))
    assert (values[p["bob"].code].qualified_recruits, values[p["bob"].code].recruit_revenue) == (0, Decimal("0.00"))
    assert values[p["ana"].code].own_spend == Decimal("50.00")  # her own purchase is hers whoever is credited
    sales = funnel_sales(p["program"], PERIOD)
    assert (sales.converted, sales.approved_conversions, sales.revenue) == (2, 2, Decimal("55.00"))


def test_reach_labels_influencers_and_ambassadors_with_the_program_thresholds(shop):
    p = shop
    result = reach(p["program"], PERIOD, limit=10)

    def row(who: str, clicks: int, qualified: int, rate: str | None, label: str) -> ReachRow:
        a = p[who]
        return ReachRow(a.pk, a.code, a.display_name, clicks, qualified, Decimal(rate) if rate else None, label)

    assert result.rows == (
        row("bob", 12, 1, "8.3", "influencer"),  # >= 10 clicks, under 20 %
        row("ana", 4, 3, "75.0", "ambassador"),  # bots and the April click not counted
        row("cleo", 2, 2, "100.0", "ambassador"),
        row("eve", 1, 1, "100.0", ""),  # one qualified: under 2
        row("fay", 0, 2, None, "ambassador"),  # codes only: no click, no division by zero
        row("dan", 0, 0, None, ""),
    )
    assert (result.ambassadors, result.influencers, result.converters) == (6, 1, 3)
    assert reach(p["program"], PERIOD, limit=1).rows == result.rows[:1]


def test_a_rate_exactly_at_the_thresholds(shop):
    program = shop["program"]
    program.influencer_max_rate = Decimal("8.33")  # Bob: 1/12 = 8.333..% is not under 8.33 %
    program.ambassador_min_rate = Decimal("75")  # Ana: exactly 75 % is enough
    labels = {row.code: row.label for row in reach(program, PERIOD, limit=10).rows}

    assert labels[shop["bob"].code] == ""
    assert labels[shop["ana"].code] == "ambassador"
    assert labels[shop["cleo"].code] == "ambassador"


def test_the_page_model_agrees_with_each_figure_computed_alone(shop):
    program = shop["program"]

    result = program_analytics(program, PERIOD, value_limit=3, reach_limit=2)

    assert result.funnel == funnel(program, PERIOD)
    assert result.cohorts == cohorts(program, PERIOD)
    assert result.pareto == pareto(program, PERIOD)
    assert result.value == value_ranking(program, PERIOD, limit=3)
    assert result.reach == reach(program, PERIOD, limit=2)
    assert result.daily == daily_subscribers(program, PERIOD)
    assert result.weekly == weekly_sources(program, PERIOD)


def test_an_empty_program_gives_zeros_and_no_division_by_zero():
    program = ProgramFactory(slug="empty")
    period = Period(first=date(2026, 3, 1), last=date(2026, 3, 7))

    result = program_analytics(program, period)

    assert result.funnel.steps == (
        FunnelStep("clicks", 0, None),
        FunnelStep("signups", 0, None),
        FunnelStep("qualified", 0, None),
        FunnelStep("converted", 0, None),
    )
    assert result.funnel.revenue == Decimal("0.00")
    assert [(d.signups, d.qualified) for d in result.daily.days] == [(0, 0)] * 7
    assert result.pareto.top_share is None and result.pareto.curve == ()
    assert [c.k for c in result.cohorts] == [None]
    assert result.value == () and result.reach.rows == ()
    assert len(result.weekly) == 2  # 1 Mar is a Sunday: weeks of 23 Feb and 2 Mar


def test_an_ambassador_who_brought_nobody_leaves_no_curve_but_a_count():
    program = ProgramFactory(slug="quiet")
    enroll(program, "solo@example.com")

    result = pareto(program, PERIOD)

    assert (result.ambassadors, result.top_count, result.referred_qualified, result.top_share) == (1, 1, 0, None)
    assert result.curve == ()


def test_the_streams_give_every_ambassador_in_the_order_of_the_page(shop):
    program = shop["program"]

    value = list(value_stream(program, PERIOD))
    reach_rows = list(reach_stream(program, PERIOD))

    assert [row[0] for row in value] == [row.code for row in value_ranking(program, PERIOD, limit=10)]
    assert [row[0] for row in reach_rows] == [row.code for row in reach(program, PERIOD, limit=10).rows]
    assert value[2][3:] == (3, 1, Decimal("30.00"), 1, Decimal("50.00"))  # Ana


def _grow(program: Any, extra: int) -> None:
    for n in range(extra):
        ambassador = enroll(program, f"more{n}@example.com")
        Click.objects.create(program=program, ambassador=ambassador, created_at=at(3, 3))
        signup_record(program=program, email=f"friend{n}@example.org", referral_code=ambassador.code, actor=SYSTEM)


def test_the_page_model_costs_the_same_queries_with_more_ambassadors_and_signups(
    shop, django_assert_num_queries, time_machine
):
    program = shop["program"]
    # the period's rolled-up days, signups per day (roll-ups and source rows in one UNION), milestones, every
    # per-ambassador figure (with clicks, sales and cohorts) in one
    with django_assert_num_queries(4):
        program_analytics(program, PERIOD)
    time_machine.move_to(at(3, 3), tick=False)
    _grow(program, 8)
    with django_assert_num_queries(4):
        program_analytics(program, PERIOD)


# --- The page and its CSV --------------------------------------------------------------------------------

QUERY = {"start": "2026-02-01", "end": "2026-03-31"}


@pytest.fixture
def marketer_client(client):
    client.force_login(staff_user("marketer", group="marketing"))
    return client


def _csv(response: Any) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_page_shows_each_table_with_the_hand_computed_numbers(shop, marketer_client):
    response = marketer_client.get(reverse("staff-analytics", kwargs={"slug": "jam-club"}), QUERY)

    assert response.status_code == 200
    page = response.content.decode()
    assert '<script id="analytics-data" type="application/json">' in page
    result = response.context["result"]
    assert result.funnel.clicks == 19 and result.pareto.top_share == Decimal("37.5")
    assert "The top 20 % (1 of 5 active ambassadors) brought 37.5 % of the qualified referred signups." in page
    assert "6 ambassadors in all." in page and "1 influencer." in page and "3 ambassadors who convert." in page
    for table in ("funnel", "milestones", "daily", "weekly", "pareto", "cohorts", "value", "reach"):
        assert f'id="table-{table}"' in page
    assert response.context["charts"]["funnel"][1] == {"step": "signups", "count": 11, "rate": Decimal("57.9")}


def test_presets_and_the_default_period_end_today(marketer_client, time_machine):
    time_machine.move_to(at(3, 31, 23), tick=False)
    ProgramFactory(slug="jam-club")
    url = reverse("staff-analytics", kwargs={"slug": "jam-club"})

    assert marketer_client.get(url).context["result"].period == Period(date(2026, 1, 1), date(2026, 3, 31))
    assert marketer_client.get(url, {"days": "7"}).context["result"].period == Period(
        date(2026, 3, 25), date(2026, 3, 31)
    )
    assert marketer_client.get(url, {"days": "8"}).context["result"].period.days == 90  # not a preset: the default


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "2026-03-01", "end": "2026-02-01"}, "end"),
        ({"start": "2020-01-01", "end": "2026-01-01"}, "end"),
        ({"start": "not a date", "end": "2026-01-01"}, "start"),
        ({"start": "2026-01-01"}, "end"),
    ],
)
def test_a_bad_period_is_a_form_error_not_a_crash(marketer_client, query, field):
    ProgramFactory(slug="jam-club")

    response = marketer_client.get(reverse("staff-analytics", kwargs={"slug": "jam-club"}), query)

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert "result" not in response.context
    assert 'class="error-summary"' in response.content.decode()


def test_the_value_csv_streams_every_ambassador_in_rank_order(shop, marketer_client):
    url = reverse("staff-analytics-csv", kwargs={"slug": "jam-club", "table": "value"})

    response = marketer_client.get(url, QUERY)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="jam-club-value-2026-02-01-2026-03-31.csv"' in response["Content-Disposition"]
    rows = _csv(response)
    assert rows[0][:4] == ["code", "display_name", "email", "qualified_recruits"]
    assert [r[1:] for r in rows[1:]] == [
        ["Bob", "bob@example.com", "1", "1", "100.00", "0", "0.00"],
        ["Eve", "eve@example.com", "1", "1", "40.00", "0", "0.00"],
        ["Ana", "ana@example.com", "3", "1", "30.00", "1", "50.00"],
        ["Cleo", "cleo@example.com", "2", "1", "25.00", "0", "0.00"],
        ["Fay", "fay@example.com", "2", "0", "0.00", "0", "0.00"],
        ["Dan", "dan@example.com", "0", "0", "0.00", "0", "0.00"],
    ]


def test_the_reach_csv_has_rates_and_labels(shop, marketer_client):
    url = reverse("staff-analytics-csv", kwargs={"slug": "jam-club", "table": "reach"})

    rows = _csv(marketer_client.get(url, QUERY))

    assert rows[0] == ["code", "display_name", "clicks", "qualified", "rate_percent", "label"]
    assert [r[1:] for r in rows[1:]] == [
        ["Bob", "12", "1", "8.3", "influencer"],
        ["Ana", "4", "3", "75.0", "ambassador"],
        ["Cleo", "2", "2", "100.0", "ambassador"],
        ["Eve", "1", "1", "100.0", ""],
        ["Fay", "0", "2", "", "ambassador"],
        ["Dan", "0", "0", "", ""],
    ]


@pytest.mark.parametrize(
    ("table", "header", "some_rows"),
    [
        ("funnel", ["step", "count", "rate_percent"],
         [["clicks", "19", ""], ["signups", "11", "57.9"], ["qualified", "9", "81.8"], ["converted", "3", "33.3"]]),
        ("daily", ["day", "signups", "qualified", "milestones"],
         [["2026-03-04", "1", "1", "Ladder #1: 19.00"], ["2026-03-09", "2", "2", ""]]),
        ("weekly", ["week_monday", "iso_year", "iso_week", "referred_qualified", "walk_ins_qualified",
                    "referred_share_percent"],
         [["2026-01-26", "2026", "5", "0", "0", ""], ["2026-03-09", "2026", "11", "1", "1", "50.0"]]),
        ("cohorts", ["cohort_month", "ambassadors_joined", "qualified_referred", "k"],
         [["2026-02-01", "2", "4", "2.00"], ["2026-03-01", "3", "4", "1.33"]]),
    ],
)  # fmt: skip
def test_each_small_table_exports_as_csv(shop, marketer_client, table, header, some_rows):
    url = reverse("staff-analytics-csv", kwargs={"slug": "jam-club", "table": table})

    rows = _csv(marketer_client.get(url, QUERY))

    assert rows[0] == header
    for row in some_rows:
        assert row in rows[1:]


def test_an_unknown_table_is_404_and_a_bad_period_400(shop, marketer_client):
    unknown = reverse("staff-analytics-csv", kwargs={"slug": "jam-club", "table": "secrets"})
    funnel_url = reverse("staff-analytics-csv", kwargs={"slug": "jam-club", "table": "funnel"})

    assert marketer_client.get(unknown, QUERY).status_code == 404
    assert marketer_client.get(funnel_url, {"start": "2026-03-01", "end": "2026-01-01"}).status_code == 400
    assert reverse("staff-analytics-csv", kwargs={"slug": "jam-club"}) == funnel_url


@pytest.mark.parametrize(
    ("who", "expected"),
    [("anonymous", 302), ("ambassador", 403), ("marketing", 200), ("auditors", 200), ("superuser", 200)],
)
def test_who_reads_the_analytics(client, who, expected):
    program = ProgramFactory(slug="jam-club")
    if who == "ambassador":
        client.force_login(enroll(program, "ana@example.com").user)
    elif who == "superuser":
        client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    elif who != "anonymous":
        client.force_login(staff_user(who, group=who))
    page = client.get(reverse("staff-analytics", kwargs={"slug": "jam-club"}))
    export = client.get(reverse("staff-analytics-csv", kwargs={"slug": "jam-club", "table": "value"}))

    assert (page.status_code, export.status_code) == (expected, expected)
    if expected == 302:
        assert page["Location"].startswith(reverse("account_login"))
    assert client.get(reverse("staff-analytics", kwargs={"slug": "nope"})).status_code == 404


def test_the_page_costs_the_same_queries_with_more_ambassadors_and_signups(
    shop, marketer_client, django_assert_num_queries, time_machine
):
    url = reverse("staff-analytics", kwargs={"slug": "jam-club"})
    marketer_client.get(url, QUERY)  # warm the caches

    # session, user, groups (the policy), the program, then the 3 of program_analytics
    with django_assert_num_queries(PAGE_QUERIES):
        assert marketer_client.get(url, QUERY).status_code == 200
    time_machine.move_to(at(3, 3), tick=False)
    _grow(shop["program"], 8)
    with django_assert_num_queries(PAGE_QUERIES):
        assert marketer_client.get(url, QUERY).status_code == 200
