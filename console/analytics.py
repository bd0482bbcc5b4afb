"""The staff console's analytics of one program over a chosen period: typed read models computed by the
database (aggregates, window functions, UTC date truncation), never by looping over signups in Python.

What "in the period" means, for every figure (the period runs from `first` 00:00 UTC to the end of
`last`, 24:00 UTC):
- clicks: human clicks made in the period (bots and flood clicks past the per-IP rate excluded);
- signups, qualified, walk-ins, the daily and weekly series, the 80/20 question and reach: signups created
  in the period; "qualified" is the status qualified (held for review and rejected ones excluded);
- conversions: approved purchases that occurred in the period; pending and refunded (reversed) ones are
  excluded. In the funnel, only purchases of the period's qualified referred signups count (the funnel
  follows one cohort); in the value table, purchases of recruits who signed up at any time count;
- cohorts: ambassadors who joined in the period (active or not today), grouped by UTC month, with the
  qualified signups of the period they referred (a signup is credited to an ambassador who exists, so
  these are all their qualified referrals from joining to the period's end, but for an older signup an
  admin reassigned to them).
Rates are percents, Decimal rounded to one place (None where the denominator is zero). Money is Decimal.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import (
    Count,
    DecimalField,
    Q,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncDate

from ambassadors.models import Ambassador, Program
from referrals.models import (
    Click,
    Conversion,
    DailyClicks,
    DailySignups,
    RollupDay,
    RollupWeek,
    Signup,
    WeeklyClicks,
    WeeklySignups,
)
from referrals.services.rollups import SIGNUP_TOTALS
from rewards.models import Milestone

QUALIFIED = Signup.Status.QUALIFIED
APPROVED = Conversion.Status.APPROVED
# The top share of ambassadors the 80/20 question is about, in percent.
TOP_PERCENT = 20
MONEY: DecimalField[Any, Any] = DecimalField(max_digits=16, decimal_places=2)
ZERO = Decimal("0.00")


@contextmanager
def _reading() -> Iterator[None]:
    """Where the analytics' queries run. On PostgreSQL: in a transaction (joined if one is open) with JIT
    compilation off. Their plans cost more than `jit_above_cost` because they count hundreds of thousands of
    index entries, yet each runs once: compiling its expressions cost ~150 ms of a 1 s page on the bench
    (bench/consoles.py), for nothing back. SET LOCAL ends with the transaction; nothing else changes. It is
    sent on the driver's connection: a setting of the session, not a query on data, it leaves the query counts
    the tests pin alone."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(savepoint=False):
        connection.ensure_connection()
        connection.connection.execute("SET LOCAL jit = off")
        yield


def percent(part: int | Decimal, whole: int | Decimal) -> Decimal | None:
    """part / whole as a percent rounded to one place, or None when whole is zero (nothing to divide by)."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Period:
    """Whole UTC days, `first` to `last` included."""

    first: date
    last: date

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time.min, tzinfo=UTC)

    @property
    def until(self) -> datetime:
        """The end, excluded: midnight after `last`."""
        return datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=UTC)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @classmethod
    def last_days(cls, days: int, *, today: date) -> Period:
        return cls(first=today - timedelta(days=days - 1), last=today)

    def q(self, field: str) -> Q:
        return Q(**{f"{field}__gte": self.since, f"{field}__lt": self.until})


# --- Where each day of the period is read from ---------------------------------------------------------


@dataclass(frozen=True)
class Sources:
    """Where each day of a period is read from (referrals/services/rollups.py): its whole ISO weeks summed
    and sealed, from the weekly roll-ups; its other sealed days (over, rolled up, not reopened since), from
    the daily roll-ups; the spans left (today, days not rolled up yet, days a change reopened), from the
    source rows. For clicks and for signups apart, these cover the period once. The totals of each day
    sealed for signups (whatever its week) come along: the series read them."""

    click_weeks: tuple[date, ...]  # Mondays
    signup_weeks: tuple[date, ...]
    click_days: tuple[date, ...]
    signup_days: tuple[date, ...]
    raw_clicks: tuple[tuple[datetime, datetime], ...]  # [start, end) spans of whole UTC days
    raw_signups: tuple[tuple[datetime, datetime], ...]
    human_clicks: int = 0  # the days sealed for clicks, all together
    signup_totals: tuple[SignupDay, ...] = ()  # every day sealed for signups, in order


def _spans(period: Period, sealed: set[date]) -> tuple[tuple[datetime, datetime], ...]:
    """The period's days not in `sealed`, as [start, end) spans of consecutive days."""
    spans: list[tuple[datetime, datetime]] = []
    for n in range(period.days):
        day = period.first + timedelta(days=n)
        if day in sealed:
            continue
        start = datetime.combine(day, time.min, tzinfo=UTC)
        if spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], start + timedelta(days=1))
        else:
            spans.append((start, start + timedelta(days=1)))
    return tuple(spans)


def _whole_weeks(period: Period, sealed_weeks: set[date]) -> tuple[date, ...]:
    """The sealed weeks whose seven days are all inside the period."""
    return tuple(sorted(w for w in sealed_weeks if w >= period.first and w + timedelta(days=6) <= period.last))


def _covered(weeks: Sequence[date]) -> set[date]:
    return {week + timedelta(days=n) for week in weeks for n in range(7)}


def sources(program: Program, period: Period) -> Sources:
    """1 query: the period's rolled-up days (with their totals) and weeks, in one UNION."""
    zero = Value(0)
    days = (
        RollupDay.objects.filter(program=program, day__gte=period.first, day__lte=period.last)
        .annotate(is_week=Value(False))
        .values_list("day", "clicks_sealed", "signups_sealed", "human_clicks", *SIGNUP_TOTALS, "is_week")
    )
    # The weeks that start in the period and end in it; a marker column tells a week's row from a day's.
    weeks = (
        RollupWeek.objects.filter(program=program, week__gte=period.first, week__lte=period.last - timedelta(days=6))
        .annotate(z1=zero, z2=zero, z3=zero, z4=zero, z5=zero, is_week=Value(True))
        .values_list("week", "clicks_sealed", "signups_sealed", "z1", "z2", "z3", "z4", "z5", "is_week")
    )
    rows = list(days.union(weeks, all=True))
    day_rows = [(_day(r[0]), *r[1:8]) for r in rows if not r[8]]
    week_rows = [(_day(r[0]), bool(r[1]), bool(r[2])) for r in rows if r[8]]
    click_weeks = _whole_weeks(period, {w for w, clicks, _ in week_rows if clicks})
    signup_weeks = _whole_weeks(period, {w for w, _, signups in week_rows if signups})
    clicks = {r[0] for r in day_rows if r[1]}
    signups = {r[0] for r in day_rows if r[2]}
    in_click_weeks, in_signup_weeks = _covered(click_weeks), _covered(signup_weeks)
    return Sources(
        click_weeks=click_weeks,
        signup_weeks=signup_weeks,
        click_days=tuple(sorted(clicks - in_click_weeks)),
        signup_days=tuple(sorted(signups - in_signup_weeks)),
        # A day of a sealed week is sealed (a reopened day reopens its week): the weeks' days are in the sets.
        raw_clicks=_spans(period, clicks | in_click_weeks),
        raw_signups=_spans(period, signups | in_signup_weeks),
        human_clicks=sum(int(r[3]) for r in day_rows if r[1]),
        signup_totals=tuple(
            SignupDay(day, n, q, ref, ref_q, n - ref, q - ref_q)
            for day, _, sealed, _, n, q, ref, ref_q in sorted(day_rows)
            if sealed
        ),
    )


def _spans_q(field: str, spans: Sequence[tuple[datetime, datetime]], period: Period) -> Q:
    """The spans as a condition on `field`; when there is none, a condition nothing meets (an empty range),
    still sent to the database so that the number of queries does not depend on what is rolled up."""
    if not spans:
        return Q(**{f"{field}__gte": period.until, f"{field}__lt": period.since})
    q = Q()
    for start, end in spans:
        q |= Q(**{f"{field}__gte": start, f"{field}__lt": end})
    return q


# --- Signups per day: one pass over the period's signups serves the funnel, the days and the weeks --------


@dataclass(frozen=True)
class SignupDay:
    day: date
    signups: int  # every signup created that day
    qualified: int
    referred: int  # with an ambassador, whatever their status
    referred_qualified: int
    walk_ins: int  # without an ambassador, whatever their status
    walk_ins_qualified: int


def signup_days(program: Program, period: Period, *, read: Sources | None = None) -> tuple[SignupDay, ...]:
    """The days of the period that had signups, counted by the database (UTC days): 2 queries (1 given the
    period's `sources`): the sealed days' totals come with the `sources`, the others are counted from the
    signups."""
    read = sources(program, period) if read is None else read
    walk_in = Q(ambassador__isnull=True)
    qualified = Q(status=QUALIFIED)
    raw = (
        # An empty range when every day is rolled up: the query (and the page's query count) stays the same.
        Signup.objects.filter(_spans_q("created_at", read.raw_signups, period), program=program)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day")
        .annotate(
            # Rows counted by created_at (never null): the covering index signup_analytics holds it, not the
            # id, so the database counts off the index alone.
            n_signups=Count("created_at"),
            n_qualified=Count("created_at", filter=qualified),
            n_referred=Count("created_at", filter=~walk_in),
            n_referred_qualified=Count("created_at", filter=~walk_in & qualified),
            n_walk_ins=Count("created_at", filter=walk_in),
            n_walk_ins_qualified=Count("created_at", filter=walk_in & qualified),
        )
        # No ORDER BY: grouping by hashing beats sorting 750,000 rows; the few hundred days are sorted here.
        .order_by()
        .values_list(
            "day",
            "n_signups",
            "n_qualified",
            "n_referred",
            "n_referred_qualified",
            "n_walk_ins",
            "n_walk_ins_qualified",
        )  # fmt: skip
    )
    with _reading():
        counted = [SignupDay(_day(day), *(int(n or 0) for n in counts)) for day, *counts in raw]
    rolled = [d for d in read.signup_totals if d.signups]
    return tuple(sorted(rolled + counted, key=lambda d: d.day))


def _day(value: Any) -> date:
    # A UNION's dates come back as dates on PostgreSQL, as text on SQLite.
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


# --- The funnel --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelStep:
    step: str  # clicks, signups, qualified, converted
    count: int
    rate: Decimal | None  # percent of the step before; None for the first step or a zero before it


@dataclass(frozen=True)
class Funnel:
    """Referred signups followed from the click to the purchase. Walk-ins (no ambassador) are outside the
    funnel and counted apart. Signups can outnumber clicks: a code typed at signup needs no click."""

    clicks: int
    signups: int  # referred signups created in the period, whatever their status
    qualified: int
    converted: int  # of those qualified, how many made an approved purchase in the period
    walk_ins: int  # signups of the period without an ambassador
    approved_conversions: int  # the approved purchases of the converted signups in the period
    revenue: Decimal
    currency: str
    steps: tuple[FunnelStep, ...]


@dataclass(frozen=True)
class FunnelSales:
    """The approved purchases made in the period by the period's qualified referred signups."""

    converted: int  # how many of those signups bought
    approved_conversions: int
    revenue: Decimal


def funnel_sales(program: Program, period: Period) -> FunnelSales:
    """1 query (`ambassadors_overview` computes the same in its pass over the period's sales)."""
    sales = Conversion.objects.filter(  # the signup's credit as the purchase carries it: no join
        period.q("occurred_at"),
        period.q("signup_created_at"),
        program=program,
        status=APPROVED,
        signup_ambassador__isnull=False,
        signup_status=QUALIFIED,
    ).aggregate(
        converted=Count("signup", distinct=True),
        n=Count("pk"),
        revenue=Coalesce(Sum("amount"), Value(ZERO), output_field=MONEY),
    )
    return FunnelSales(converted=sales["converted"], approved_conversions=sales["n"], revenue=sales["revenue"])


def human_clicks(program: Program, period: Period, *, read: Sources | None = None) -> int:
    """The period's human clicks (bots and flood left out): the sealed days' totals (they come with the
    `sources`) and the source rows of the other days: 2 queries (1 given the `sources`)."""
    read = sources(program, period) if read is None else read
    raw = Click.objects.filter(
        _spans_q("created_at", read.raw_clicks, period), program=program, is_bot=False, flood=False
    )
    return read.human_clicks + raw.count()


def funnel(
    program: Program,
    period: Period,
    *,
    days: Sequence[SignupDay] | None = None,
    clicks: int | None = None,
    sales: FunnelSales | None = None,
) -> Funnel:
    """A few queries; none when given the period's `signup_days`, human clicks and sales (program_analytics
    has them)."""
    with _reading():
        if clicks is None:
            clicks = human_clicks(program, period)
        if days is None:
            days = signup_days(program, period)
        if sales is None:
            sales = funnel_sales(program, period)
    signups = sum(d.referred for d in days)
    qualified = sum(d.referred_qualified for d in days)
    sequence = [("clicks", clicks), ("signups", signups), ("qualified", qualified), ("converted", sales.converted)]
    steps = tuple(
        FunnelStep(step=name, count=count, rate=None if i == 0 else percent(count, sequence[i - 1][1]))
        for i, (name, count) in enumerate(sequence)
    )
    return Funnel(
        clicks=clicks,
        signups=signups,
        qualified=qualified,
        converted=sales.converted,
        walk_ins=sum(d.walk_ins for d in days),
        approved_conversions=sales.approved_conversions,
        revenue=sales.revenue,
        currency=program.currency,
        steps=steps,
    )


# --- New subscribers per day, with the collective ladder's milestones ---------------------------------


@dataclass(frozen=True)
class DayPoint:
    day: date
    signups: int  # every signup of the program created that day (walk-ins, held and rejected included)
    qualified: int


@dataclass(frozen=True)
class MilestonePoint:
    day: date
    reached_at: datetime
    tier: str
    occurrence: int
    count_at: int
    price_after: Decimal | None


@dataclass(frozen=True)
class DailySubscribers:
    days: tuple[DayPoint, ...]  # every day of the period, zero where nobody signed up
    milestones: tuple[MilestonePoint, ...]  # reached in the period, in order


# A ladder has a step per few subscribers; more milestones than this in one period would not be readable.
MILESTONES_SHOWN = 500


def daily_subscribers(program: Program, period: Period, *, days: Sequence[SignupDay] | None = None) -> DailySubscribers:
    """2 queries (1 given the period's `signup_days`). Days are UTC days."""
    by_day = {d.day: d for d in (signup_days(program, period) if days is None else days)}
    points = tuple(
        DayPoint(day=day, signups=by_day[day].signups, qualified=by_day[day].qualified)
        if day in by_day
        else DayPoint(day=day, signups=0, qualified=0)
        for day in (period.first + timedelta(days=n) for n in range(period.days))
    )
    milestones = tuple(
        MilestonePoint(
            day=reached_at.astimezone(UTC).date(),
            reached_at=reached_at,
            tier=tier,
            occurrence=occurrence,
            count_at=count_at,
            price_after=price_after,
        )
        for reached_at, tier, occurrence, count_at, price_after in Milestone.objects.filter(
            period.q("reached_at"), program=program
        )
        .order_by("reached_at", "pk")
        .values_list("reached_at", "tier__name", "occurrence", "count_at", "price_after")[:MILESTONES_SHOWN]
    )
    return DailySubscribers(days=points, milestones=milestones)


# --- Where subscribers come from, per ISO week --------------------------------------------------------


@dataclass(frozen=True)
class WeekPoint:
    week: date  # its Monday
    iso_year: int
    iso_week: int
    referred: int  # qualified signups brought by an ambassador
    walk_ins: int  # qualified signups without an ambassador
    referred_share: Decimal | None  # percent of the week's qualified signups


def weekly_sources(
    program: Program, period: Period, *, days: Sequence[SignupDay] | None = None
) -> tuple[WeekPoint, ...]:
    """Qualified signups of the period per ISO week (Monday to Sunday, UTC), referred vs walk-ins: the days
    counted by the database (`signup_days`, 1 query unless given) added up per week. The first and last
    weeks hold only their days inside the period."""
    by_week: dict[date, tuple[int, int]] = {}
    for d in signup_days(program, period) if days is None else days:
        monday = d.day - timedelta(days=d.day.weekday())
        referred, walk_ins = by_week.get(monday, (0, 0))
        by_week[monday] = (referred + d.referred_qualified, walk_ins + d.walk_ins_qualified)
    monday = period.first - timedelta(days=period.first.weekday())
    points = []
    while monday <= period.last:
        referred, walk_ins = by_week.get(monday, (0, 0))
        iso = monday.isocalendar()
        points.append(
            WeekPoint(
                week=monday,
                iso_year=iso.year,
                iso_week=iso.week,
                referred=referred,
                walk_ins=walk_ins,
                referred_share=percent(referred, referred + walk_ins),
            )
        )
        monday += timedelta(days=7)
    return tuple(points)


# --- The 80/20 question -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParetoPoint:
    percentile: Decimal  # the top this percent of ambassadors...
    share: Decimal  # ...brought this percent of the qualified referred signups


@dataclass(frozen=True)
class Pareto:
    """Who brings the qualified referred signups of the period.

    The ambassadors counted are all the program's active ambassadors (is_active), including those who brought
    nobody; they are ranked by the qualified signups of the period they referred. The top 20% are the first
    ceil(0.2 × that number) of them (at least one when there is anyone). `top_share` is their part of the
    qualified signups the active ambassadors referred. The curve gives, for each whole percentile p of
    ambassadors (the first ceil(p × n / 100) of them), the share they brought, from (0, 0) to (100, 100).
    """

    ambassadors: int
    top_count: int
    referred_qualified: int
    top_qualified: int
    top_share: Decimal | None  # None when nobody was referred
    curve: tuple[ParetoPoint, ...]

    @property
    def deciles(self) -> tuple[ParetoPoint, ...]:
        """The curve at 10 %, 20 %... 100 % (what a table beside the chart can show)."""
        return tuple(point for point in self.curve if point.percentile and point.percentile % 10 == 0)


# --- The viral coefficient per monthly cohort ---------------------------------------------------------


@dataclass(frozen=True)
class CohortPoint:
    month: date  # the first of the month
    joined: int  # ambassadors who joined that month (inside the period), active or not today
    qualified: int  # qualified signups of the period they referred (all came after they joined)
    k: Decimal | None  # qualified ÷ joined, two places; None when nobody joined


def cohorts(program: Program, period: Period) -> tuple[CohortPoint, ...]:
    """K per month of joining, for every month the period touches (its first and last months partly): 1 query
    (see `ambassadors_overview`)."""
    return ambassadors_overview(program, period, value_limit=0, reach_limit=0).cohorts


def _month_start(value: Any) -> date:
    # PostgreSQL gives the truncated moment as a datetime, SQLite as text.
    return value.date() if isinstance(value, datetime) else date.fromisoformat(str(value)[:10])


def _cohort_points(period: Period, by_month: dict[date, tuple[int, int]]) -> tuple[CohortPoint, ...]:
    points = []
    month = period.first.replace(day=1)
    while month <= period.last:
        joined, qualified = by_month.get(month, (0, 0))
        k = (Decimal(qualified) / joined).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) if joined else None
        points.append(CohortPoint(month=month, joined=joined, qualified=qualified, k=k))
        month = (month + timedelta(days=32)).replace(day=1)
    return tuple(points)


# --- Per ambassador: value brought vs own spend, reach vs conversion, and the 80/20 ranking -------------


@dataclass(frozen=True)
class ValueRow:
    ambassador_id: int
    code: str
    display_name: str
    email: str
    qualified_recruits: int  # qualified signups they referred, created in the period
    recruit_conversions: int  # approved purchases in the period of their qualified recruits (of any date)
    recruit_revenue: Decimal
    own_conversions: int  # approved purchases in the period of their own signup (their own e-mail)
    own_spend: Decimal


@dataclass(frozen=True)
class ReachRow:
    ambassador_id: int
    code: str
    display_name: str
    clicks: int  # human clicks in the period
    qualified: int  # qualified signups they referred, created in the period
    rate: Decimal | None  # qualified ÷ clicks, percent; None without clicks
    label: str  # "influencer", "ambassador" or ""


@dataclass(frozen=True)
class Reach:
    rows: tuple[ReachRow, ...]  # the most clicked first, at most the limit asked
    ambassadors: int  # every ambassador of the program
    influencers: int
    converters: int  # labelled "ambassador"


@dataclass(frozen=True)
class AmbassadorsOverview:
    value: tuple[ValueRow, ...]
    reach: Reach
    pareto: Pareto
    cohorts: tuple[CohortPoint, ...]
    clicks: int  # the period's human clicks, all ambassadors of the program together
    funnel_sales: FunnelSales


INFLUENCER = "influencer"
AMBASSADOR = "ambassador"
VALUE_ORDER = "recruit_revenue DESC, qualified DESC, recruit_conversions DESC, id"
REACH_ORDER = "clicks DESC, qualified DESC, id"
PARETO_ORDER = "qualified DESC, id"


def _spans_sql(column: str, spans: Sequence[tuple[datetime, datetime]], prefix: str) -> tuple[str, dict[str, Any]]:
    """`(column >= %(p0s)s AND column < %(p0e)s) OR ...` over the spans; a false condition without any."""
    moment = connection.ops.adapt_datetimefield_value
    if not spans:
        return "1 = 0", {}
    terms, params = [], {}
    for i, (start, end) in enumerate(spans):
        terms.append(f"({column} >= %({prefix}{i}s)s AND {column} < %({prefix}{i}e)s)")
        params[f"{prefix}{i}s"], params[f"{prefix}{i}e"] = moment(start), moment(end)
    return "(" + " OR ".join(terms) + ")", params


def _own_sales_sql(t: dict[str, str]) -> str:
    """Each ambassador's own signup (one per mailbox and program: a unique index finds it), then its purchases
    of the period. On PostgreSQL, LATERAL with its aggregate is looked up ambassador by ambassador, where a join
    would read every signup of the program to match a few thousand mailboxes; SQLite has no LATERAL."""
    purchases = "c.status = %(approved)s AND c.occurred_at >= %(since)s AND c.occurred_at < %(until)s"
    if connection.vendor == "postgresql":
        return f"""
            SELECT a.id AS ambassador_id, own.n, own.amount
            FROM {t["ambassador"]} a CROSS JOIN LATERAL (
                SELECT COUNT(*) AS n, SUM(c.amount) AS amount
                FROM {t["signup"]} s JOIN {t["conversion"]} c ON c.signup_id = s.id
                WHERE s.program_id = a.program_id AND s.email_canonical = a.email_canonical AND {purchases}
            ) own
            WHERE a.program_id = %(program)s AND own.n > 0"""  # noqa: S608 (table names from the models)
    return f"""
            SELECT a.id AS ambassador_id, COUNT(*) AS n, SUM(c.amount) AS amount
            FROM {t["ambassador"]} a
            JOIN {t["signup"]} s ON s.program_id = a.program_id AND s.email_canonical = a.email_canonical
            JOIN {t["conversion"]} c ON c.signup_id = s.id
            WHERE a.program_id = %(program)s AND {purchases}
            GROUP BY a.id"""  # noqa: S608


def _ambassador_stats(program: Program, period: Period, read: Sources | None = None) -> tuple[str, dict[str, Any]]:
    """(SQL, params) of `WITH ... labelled AS (...)`: every ambassador of the program with what the period
    brought, each source read once and grouped by the database (then hash-joined to the ambassadors):

    - clicks: human clicks in the period; qualified: qualified signups they referred, created in the period
      (both from the daily roll-ups for the rolled-up days, from the source rows for the others: `sources`);
    - recruit_conversions, recruit_revenue: approved purchases in the period of their qualified recruits;
    - own_conversions, own_spend: approved purchases in the period of the program's signup whose canonical
      mailbox is the ambassador's, whatever that signup's status (a purchase refused as self-referral is still
      money spent);
    - label, with the program's thresholds, rates compared exactly (qualified × 100 against rate × clicks:
      no rounding, no division by zero):
      influencer: clicks >= influencer_min_clicks, at least one click, and qualified/clicks < influencer_max_rate %;
      ambassador: qualified >= ambassador_min_qualified and qualified/clicks >= ambassador_min_rate %; with no
      click at all the qualified signups came through typed codes: the rate is undefined and counts as met;
      otherwise "". The influencer rule is checked first.
    """
    # The month of joining in UTC, as the database spells it; its positional parameters named like the others.
    month_sql, month_values = cast(
        tuple[str, tuple[Any, ...]], connection.ops.datetime_trunc_sql("month", "a.created_at", (), "UTC")
    )
    month_params = {f"month_{i}": value for i, value in enumerate(month_values)}
    month = month_sql % tuple(f"%({name})s" for name in month_params)
    t = {
        "ambassador": Ambassador._meta.db_table,
        "click": Click._meta.db_table,
        "signup": Signup._meta.db_table,
        "conversion": Conversion._meta.db_table,
        "daily_clicks": DailyClicks._meta.db_table,
        "daily_signups": DailySignups._meta.db_table,
        "weekly_clicks": WeeklyClicks._meta.db_table,
        "weekly_signups": WeeklySignups._meta.db_table,
    }
    read = sources(program, period) if read is None else read
    raw_clicks, raw_clicks_params = _spans_sql("created_at", read.raw_clicks, "rc")
    raw_signups, raw_signups_params = _spans_sql("created_at", read.raw_signups, "rs")
    day = connection.ops.adapt_datefield_value
    click_days = {f"cd{i}": day(d) for i, d in enumerate(read.click_days)}
    signup_days = {f"sd{i}": day(d) for i, d in enumerate(read.signup_days)}
    click_weeks = {f"cw{i}": day(d) for i, d in enumerate(read.click_weeks)}
    signup_weeks = {f"sw{i}": day(d) for i, d in enumerate(read.signup_weeks)}
    in_click_days = ", ".join(f"%({name})s" for name in click_days) or "NULL"
    in_signup_days = ", ".join(f"%({name})s" for name in signup_days) or "NULL"
    in_click_weeks = ", ".join(f"%({name})s" for name in click_weeks) or "NULL"
    in_signup_weeks = ", ".join(f"%({name})s" for name in signup_weeks) or "NULL"
    # The roll-up rows (whole weeks, other sealed days) and the source rows' counts per ambassador, added up in
    # one grouping: the roll-up rows go straight to it, where summing each table first grouped them twice. The
    # source counts as integers like the roll-ups' columns (no conversion of every roll-up row to the union's
    # bigint), the sums as bigints (a sum of sums would be a numeric): the rankings sort and add them up faster.
    sql = f"""
        WITH clicks AS (
            SELECT ambassador_id, CAST(SUM(n) AS BIGINT) AS n FROM (
                SELECT ambassador_id, human AS n FROM {t["weekly_clicks"]}
                WHERE program_id = %(program)s AND week IN ({in_click_weeks})
                UNION ALL
                SELECT ambassador_id, human AS n FROM {t["daily_clicks"]}
                WHERE program_id = %(program)s AND day IN ({in_click_days})
                UNION ALL
                SELECT ambassador_id, CAST(COUNT(*) AS INTEGER) AS n FROM {t["click"]}
                WHERE program_id = %(program)s AND NOT is_bot AND NOT flood AND {raw_clicks}
                GROUP BY ambassador_id
            ) both_sources GROUP BY ambassador_id
        ), recruits AS (
            SELECT ambassador_id, CAST(SUM(n) AS BIGINT) AS n FROM (
                SELECT ambassador_id, qualified AS n FROM {t["weekly_signups"]}
                WHERE program_id = %(program)s AND week IN ({in_signup_weeks})
                UNION ALL
                SELECT ambassador_id, qualified AS n FROM {t["daily_signups"]}
                WHERE program_id = %(program)s AND ambassador_id IS NOT NULL AND day IN ({in_signup_days})
                UNION ALL
                SELECT ambassador_id, CAST(COUNT(*) AS INTEGER) AS n FROM {t["signup"]}
                WHERE program_id = %(program)s AND status = %(qualified)s AND ambassador_id IS NOT NULL
                  AND {raw_signups}
                GROUP BY ambassador_id
            ) both_sources GROUP BY ambassador_id
        ), sales AS (
            -- The purchases carry their signup's credit (referrals.services keep the copy in step): no join
            -- to the signups, read off the covering index conversion_analytics.
            -- Only those of qualified recruits (the only ones counted here), in narrow rows.
            SELECT c.signup_id, c.amount, c.signup_ambassador_id AS ambassador_id,
                   (c.signup_created_at >= %(since)s AND c.signup_created_at < %(until)s) AS recruited_in_period
            FROM {t["conversion"]} c
            WHERE c.program_id = %(program)s AND c.status = %(approved)s
              AND c.occurred_at >= %(since)s AND c.occurred_at < %(until)s
              AND c.signup_status = %(qualified)s AND c.signup_ambassador_id IS NOT NULL
        ), recruit_sales AS (
            SELECT ambassador_id, COUNT(*) AS n, SUM(amount) AS amount FROM sales
            GROUP BY ambassador_id
        ), own_sales AS ({_own_sales_sql(t)}
        ), stats AS (
            -- Narrow rows (ids and numbers) through the rankings' sorts; the display columns are joined to
            -- the few rows returned (ambassadors_overview) or streamed (value_stream, reach_stream).
            SELECT a.id, a.is_active, {month} AS month,
                   (a.created_at >= %(since)s AND a.created_at < %(until)s) AS cohort,
                   COALESCE(k.n, 0) AS clicks, COALESCE(r.n, 0) AS qualified,
                   COALESCE(rs.n, 0) AS recruit_conversions, COALESCE(rs.amount, 0) AS recruit_revenue,
                   COALESCE(o.n, 0) AS own_conversions, COALESCE(o.amount, 0) AS own_spend
            FROM {t["ambassador"]} a
            LEFT JOIN clicks k ON k.ambassador_id = a.id
            LEFT JOIN recruits r ON r.ambassador_id = a.id
            LEFT JOIN recruit_sales rs ON rs.ambassador_id = a.id
            LEFT JOIN own_sales o ON o.ambassador_id = a.id
            WHERE a.program_id = %(program)s
        ), labelled AS (
            SELECT stats.*, CASE
                WHEN clicks >= %(influencer_min_clicks)s AND clicks > 0
                     AND qualified * 100 < %(influencer_max_rate)s * clicks THEN %(influencer)s
                WHEN qualified >= %(ambassador_min_qualified)s
                     AND (clicks = 0 OR qualified * 100 >= %(ambassador_min_rate)s * clicks) THEN %(ambassador)s
                ELSE '' END AS label
            FROM stats
        )
    """  # noqa: S608 (table names from the models; every value is a parameter)
    moment = connection.ops.adapt_datetimefield_value  # as the ORM would pass it (naive UTC text on SQLite)
    params = {
        "program": program.pk,
        "since": moment(period.since),
        "until": moment(period.until),
        "qualified": QUALIFIED,
        "approved": APPROVED,
        "influencer_min_clicks": program.influencer_min_clicks,
        "influencer_max_rate": program.influencer_max_rate,
        "ambassador_min_qualified": program.ambassador_min_qualified,
        "ambassador_min_rate": program.ambassador_min_rate,
        "influencer": INFLUENCER,
        "ambassador": AMBASSADOR,
        **month_params,
        **raw_clicks_params,
        **raw_signups_params,
        **click_days,
        **signup_days,
        **click_weeks,
        **signup_weeks,
    }
    return sql, params


def _money(value: Any) -> Decimal:
    # PostgreSQL gives Decimal; SQLite may give an int or a float for a sum: back to cents, never float.
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def ambassadors_overview(
    program: Program, period: Period, *, value_limit: int, reach_limit: int, read: Sources | None = None
) -> AmbassadorsOverview:
    """The value ranking's first `value_limit`, reach's `reach_limit` most clicked, the label counts, and the
    80/20 figures: 1 query. The database computes every ambassador's figures in narrow rows (ids and numbers),
    takes the first of each ranking by a top-N sort, ranks the active ambassadors for the 80/20 curve, and
    returns only the rows asked for and those the curve needs (at most about 100), with their display
    columns, however many ambassadors there are.

    80/20: the ambassadors counted are all the program's active ambassadors (is_active), those who brought
    nobody included, ranked by the qualified signups of the period they referred (ties by id). The top 20 %
    are the first ceil(0.2 × their number); the curve gives, for each whole percentile p, the share of those
    signups brought by the first ceil(p × number / 100).
    """
    stats, params = _ambassador_stats(program, period, read)
    # The funnel's purchases: those of the period's qualified referred signups.
    funnel_sales = "recruited_in_period"  # the sales are those of qualified referred signups already
    # No ranking sorts every ambassador but the 80/20 one: the first of the value and reach rankings are
    # taken by top-N sorts, the totals and the cohorts by plain aggregates; the rows shown (and those the
    # curve needs) get their display columns at the end.
    sql = f"""{stats}, pareto AS (
            SELECT id, ROW_NUMBER() OVER w AS pareto_rank,
                   SUM(qualified) OVER (w ROWS UNBOUNDED PRECEDING) AS pareto_cumulative
            FROM labelled WHERE is_active
            WINDOW w AS (ORDER BY {PARETO_ORDER})
        ), totals AS (
            SELECT COUNT(*) AS ambassadors,
                   SUM(CASE WHEN label = %(influencer)s THEN 1 ELSE 0 END) AS influencers,
                   SUM(CASE WHEN label = %(ambassador)s THEN 1 ELSE 0 END) AS converters,
                   SUM(clicks) AS clicks_total,
                   SUM(CASE WHEN is_active THEN qualified ELSE 0 END) AS pareto_total,
                   SUM(CASE WHEN is_active THEN 1 ELSE 0 END) AS pareto_n
            FROM labelled
        ), cohorts AS (  -- each month's figures ride on the row of its first ambassador
            SELECT month, MIN(id) AS id, COUNT(*) AS cohort_joined, SUM(qualified) AS cohort_qualified
            FROM labelled WHERE cohort GROUP BY month
        ), value_top AS (
            SELECT id, ROW_NUMBER() OVER (ORDER BY {VALUE_ORDER}) AS value_rank
            FROM (SELECT * FROM labelled ORDER BY {VALUE_ORDER} LIMIT %(value_limit)s) top
        ), reach_top AS (
            SELECT id, ROW_NUMBER() OVER (ORDER BY {REACH_ORDER}) AS reach_rank
            FROM (SELECT * FROM labelled ORDER BY {REACH_ORDER} LIMIT %(reach_limit)s) top
        ), shown AS (
            SELECT id FROM value_top
            UNION SELECT id FROM reach_top
            UNION SELECT id FROM cohorts
            -- the ranks ceil(p × n / 100) for p = 1..100: those where the integer percentile moves on
            UNION SELECT id FROM pareto CROSS JOIN totals
                  WHERE pareto_rank * 100 / pareto_n > (pareto_rank - 1) * 100 / pareto_n
            -- one row at least whenever there is an ambassador: the totals ride on every row
            UNION SELECT id FROM (SELECT id FROM labelled ORDER BY id LIMIT 1) first_one
        )
        SELECT l.id, a.code, a.display_name, a.email, l.clicks, l.qualified, l.recruit_conversions,
               l.recruit_revenue, l.own_conversions, l.own_spend, l.label, v.value_rank, rt.reach_rank, l.is_active,
               p.pareto_rank, p.pareto_cumulative, c.month, c.cohort_joined, c.cohort_qualified,
               totals.pareto_total, totals.pareto_n, totals.ambassadors, totals.influencers, totals.converters,
               totals.clicks_total, f.converted, f.n, f.revenue
        FROM shown JOIN labelled l ON l.id = shown.id
        JOIN {Ambassador._meta.db_table} a ON a.id = l.id
        LEFT JOIN value_top v ON v.id = l.id
        LEFT JOIN reach_top rt ON rt.id = l.id
        LEFT JOIN pareto p ON p.id = l.id
        LEFT JOIN cohorts c ON c.id = l.id
        CROSS JOIN totals
        CROSS JOIN (  -- one pass over the sales for the three
            SELECT COUNT(DISTINCT signup_id) AS converted, COUNT(*) AS n, SUM(amount) AS revenue FROM sales
            WHERE {funnel_sales}
        ) f
    """  # noqa: S608
    with _reading(), connection.cursor() as cursor:
        cursor.execute(sql, {**params, "value_limit": value_limit, "reach_limit": reach_limit})
        rows = cursor.fetchall()
    value: list[tuple[int, ValueRow]] = []
    reach_rows: list[tuple[int, ReachRow]] = []
    cumulative_at: dict[int, int] = {}
    by_month: dict[date, tuple[int, int]] = {}
    active = brought = 0
    totals: tuple[Any, ...] = (0, 0, 0, 0)
    sales = FunnelSales(converted=0, approved_conversions=0, revenue=ZERO)
    # At most value_limit + reach_limit + about 100 (the curve) + the cohorts' months: a loop over the
    # figures the database computed, never over signups.
    for row in rows:
        (pk, code, name, email, clicks, qualified, r_conv, r_rev, o_conv, o_spend, label, value_rank, reach_rank,
         is_active, pareto_rank, cumulative, month, cohort_joined, cohort_qualified) = row[:19]  # fmt: skip
        (pareto_total, pareto_n), totals, funnel = row[19:21], row[21:25], row[25:]
        active, brought = int(pareto_n or 0), int(pareto_total or 0)
        sales = FunnelSales(converted=funnel[0], approved_conversions=funnel[1], revenue=_money(funnel[2]))
        if value_rank is not None:
            value.append(
                (value_rank, ValueRow(pk, code, name, email, qualified, r_conv, _money(r_rev), o_conv, _money(o_spend)))
            )
        if reach_rank is not None:
            reach_rows.append(
                (reach_rank, ReachRow(pk, code, name, clicks, qualified, percent(qualified, clicks), label))
            )
        if pareto_rank is not None:
            cumulative_at[int(pareto_rank)] = int(cumulative)
        if month is not None:
            by_month[_month_start(month)] = (int(cohort_joined), int(cohort_qualified))
    ambassadors, influencers, converters, clicks_total = (int(n or 0) for n in totals)
    return AmbassadorsOverview(
        value=tuple(row for _, row in sorted(value, key=lambda pair: pair[0])),
        reach=Reach(
            rows=tuple(row for _, row in sorted(reach_rows, key=lambda pair: pair[0])),
            ambassadors=int(ambassadors),
            influencers=int(influencers),
            converters=int(converters),
        ),
        pareto=_pareto(active, brought, cumulative_at),
        cohorts=_cohort_points(period, by_month),
        clicks=int(clicks_total),
        funnel_sales=sales,
    )


def _ceil_div(numerator: int, denominator: int) -> int:
    """ceil(numerator / denominator) in integers, as the SQL ranks it (no float)."""
    return -(-numerator // denominator)


def _pareto(active: int, brought: int, cumulative_at: dict[int, int]) -> Pareto:
    if active == 0:
        return Pareto(0, 0, 0, 0, None, ())
    top_count = _ceil_div(TOP_PERCENT * active, 100)
    top_brought = cumulative_at[top_count]
    curve: tuple[ParetoPoint, ...] = ()
    if brought:
        curve = (ParetoPoint(Decimal("0.0"), Decimal("0.0")),) + tuple(
            ParetoPoint(
                percentile=Decimal(p).quantize(Decimal("0.1")),
                share=percent(cumulative_at[_ceil_div(p * active, 100)], brought) or Decimal("0.0"),
            )
            for p in range(1, 101)
        )
    return Pareto(
        ambassadors=active,
        top_count=top_count,
        referred_qualified=brought,
        top_qualified=top_brought,
        top_share=percent(top_brought, brought),
        curve=curve,
    )


def pareto(program: Program, period: Period) -> Pareto:
    """1 query (see `ambassadors_overview`)."""
    return ambassadors_overview(program, period, value_limit=0, reach_limit=0).pareto


def value_ranking(program: Program, period: Period, *, limit: int) -> tuple[ValueRow, ...]:
    """The first `limit` ambassadors by what their recruits brought: recruits' revenue, then qualified
    recruits, then recruits' purchases (ties by id). 1 query."""
    return ambassadors_overview(program, period, value_limit=limit, reach_limit=0).value


def reach(program: Program, period: Period, *, limit: int) -> Reach:
    """The `limit` most clicked ambassadors (then by qualified, ties by id) and the counts of each label over
    all of them: 1 query."""
    return ambassadors_overview(program, period, value_limit=0, reach_limit=limit).reach


def _stream(sql: str, params: dict[str, Any], *, chunk: int = 2000) -> Iterator[tuple[Any, ...]]:
    """The rows of `sql` as the database sends them: a server-side cursor on PostgreSQL, read `chunk` rows at
    a time, so a CSV of every ambassador never sits in memory."""
    server_side = not connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
    with _reading(), connection.chunked_cursor() if server_side else connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk):
            yield from rows


VALUE_CSV_HEADER = ("code", "display_name", "email", "qualified_recruits", "recruit_conversions", "recruit_revenue",
                    "own_conversions", "own_spend")  # fmt: skip
REACH_CSV_HEADER = ("code", "display_name", "clicks", "qualified", "rate_percent", "label")


# Every ambassador's figures (the CTE `labelled`) with their display columns, for the streams.
_WITH_NAMES = f"""(
    SELECT labelled.*, named.code, named.display_name, named.email
    FROM labelled JOIN {Ambassador._meta.db_table} named ON named.id = labelled.id
) with_names"""  # noqa: S608 (a table name from the model)


def value_stream(program: Program, period: Period) -> Iterator[tuple[Any, ...]]:
    """Every ambassador in the order of `value_ranking`, as VALUE_CSV_HEADER says, streamed."""
    stats, params = _ambassador_stats(program, period)
    columns = "code, display_name, email, qualified, recruit_conversions, recruit_revenue, own_conversions, own_spend"
    sql = f"{stats} SELECT {columns} FROM {_WITH_NAMES} ORDER BY {VALUE_ORDER}"  # noqa: S608
    for code, name, email, qualified, r_conv, r_rev, o_conv, o_spend in _stream(sql, params):
        yield code, name, email, qualified, r_conv, _money(r_rev), o_conv, _money(o_spend)


def reach_stream(program: Program, period: Period) -> Iterator[tuple[Any, ...]]:
    """Every ambassador in the order of `reach`, as REACH_CSV_HEADER says, streamed."""
    stats, params = _ambassador_stats(program, period)
    sql = f"{stats} SELECT code, display_name, clicks, qualified, label FROM {_WITH_NAMES} ORDER BY {REACH_ORDER}"  # noqa: S608
    for code, name, clicks, qualified, label in _stream(sql, params):
        yield code, name, clicks, qualified, percent(qualified, clicks), label


# --- The whole page -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgramAnalytics:
    program_slug: str
    currency: str
    period: Period
    funnel: Funnel
    daily: DailySubscribers
    weekly: tuple[WeekPoint, ...]
    pareto: Pareto
    cohorts: tuple[CohortPoint, ...]
    value: tuple[ValueRow, ...]
    reach: Reach


def program_analytics(
    program: Program, period: Period, *, value_limit: int = 20, reach_limit: int = 50
) -> ProgramAnalytics:
    """Everything the analytics page shows: 4 queries, whatever the numbers of signups and ambassadors: which
    days and weeks are rolled up (with the sealed days' totals), the signups per day of the other days from
    the source rows (for the funnel, the days and the weeks), the milestones, and every figure read per
    ambassador (clicks, the funnel's purchases, value, reach, the 80/20 curve, the cohorts) in one."""
    with _reading():  # one transaction for the page's queries
        read = sources(program, period)
        days = signup_days(program, period, read=read)
        ambassadors = ambassadors_overview(program, period, value_limit=value_limit, reach_limit=reach_limit, read=read)
        return ProgramAnalytics(
            program_slug=program.slug,
            currency=program.currency,
            period=period,
            funnel=funnel(program, period, days=days, clicks=ambassadors.clicks, sales=ambassadors.funnel_sales),
            daily=daily_subscribers(program, period, days=days),
            weekly=weekly_sources(program, period, days=days),
            pareto=ambassadors.pareto,
            cohorts=ambassadors.cohorts,
            value=ambassadors.value,
            reach=ambassadors.reach,
        )
