"""The staff console's analytics of a program over a chosen period (console.analytics), as charts each beside
its table, and every table as a streamed CSV. Staff read them (core.policies.may_read_stats): marketing,
auditors, superusers; ambassadors get 403, anonymous visitors the log-in page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any

from django import forms
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from ambassadors.models import Program
from config.db_router import reading_replica, rows_from_replica
from console import analytics
from console.analytics import Period, program_analytics
from console.exports import csv_response
from console.pages import refused
from core import clock, policies

PRESETS = (7, 30, 90)
DEFAULT_DAYS = 90
# Three years of days: the daily series stays a few hundred points wide, and the queries stay bounded.
MAX_DAYS = 3 * 366
VALUE_SHOWN = 20
REACH_SHOWN = 50


class PeriodForm(forms.Form):
    """From and to, whole UTC days, both included. Without them: `days` (a preset), else the last 90 days."""

    start = forms.DateField(label=gettext_lazy("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=gettext_lazy("To"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if end < start:
                self.add_error("end", _("The end comes before the start."))
            elif (end - start).days + 1 > MAX_DAYS:
                self.add_error("end", _("A period is at most %(days)s days long.") % {"days": MAX_DAYS})
        return cleaned

    @property
    def period(self) -> Period:
        return Period(first=self.cleaned_data["start"], last=self.cleaned_data["end"])


def period_form(query: QueryDict, *, today: date) -> PeriodForm:
    """The form bound to the query, or to a preset (`?days=7`) or the default period when it gives no dates."""
    if "start" in query or "end" in query:
        return PeriodForm(query)
    asked = query.get("days", "")
    days = int(asked) if asked in {str(d) for d in PRESETS} else DEFAULT_DAYS
    preset = Period.last_days(days, today=today)
    return PeriodForm({"start": preset.first.isoformat(), "end": preset.last.isoformat()})


def _program_for(request: HttpRequest, slug: str) -> Program | HttpResponse:
    program = Program.objects.filter(slug=slug).first()
    if program is None:
        raise Http404("No program with this slug.")
    if answer := refused(request, policies.may_read_stats(policies.Principal.from_request(request), program)):
        return answer
    return program


def _json_ready(result: analytics.ProgramAnalytics) -> dict[str, Any]:
    """What the charts draw (json_script keeps Decimals as strings; the script reads them as numbers)."""
    step_names = {
        "clicks": _("Clicks (bots excluded)"),
        "signups": _("Referred signups"),
        "qualified": _("Qualified"),
        "converted": _("Converted"),
    }
    return {
        "labels": {
            "steps": step_names,
            "count": _("Count"),
            "signups": _("Signups"),
            "qualified": _("Qualified"),
            "milestone": _("Price ladder step"),
            "referred": _("Referred"),
            "walk_ins": _("Walk-ins"),
            "share": _("Share of qualified referred signups (%)"),
            "ambassadors_pct": _("Top ambassadors (%)"),
            "equality": _("Everyone alike"),
            "k": _("K"),
            "clicks": _("Clicks"),
            "influencer": _("Influencer"),
            "ambassador": _("Ambassador who converts"),
            "unlabelled": _("Unlabelled"),
        },
        "funnel": [{"step": s.step, "count": s.count, "rate": s.rate} for s in result.funnel.steps],
        "daily": [{"day": p.day, "signups": p.signups, "qualified": p.qualified} for p in result.daily.days],
        "milestones": [
            {"day": m.day, "occurrence": m.occurrence, "count_at": m.count_at, "price_after": m.price_after}
            for m in result.daily.milestones
        ],
        "weekly": [{"week": w.week, "referred": w.referred, "walk_ins": w.walk_ins} for w in result.weekly],
        "pareto": [{"percentile": p.percentile, "share": p.share} for p in result.pareto.curve],
        "cohorts": [{"month": c.month, "joined": c.joined, "k": c.k} for c in result.cohorts],
        "reach": [
            {
                "code": r.code,
                "name": r.display_name or r.code,
                "clicks": r.clicks,
                "qualified": r.qualified,
                "label": r.label,
            }  # fmt: skip
            for r in result.reach.rows
        ],
    }


@require_http_methods(["GET", "HEAD"])
def staff_analytics(request: HttpRequest, slug: str) -> HttpResponse:
    program = _program_for(request, slug)
    if isinstance(program, HttpResponse):
        return program
    today = clock.now().date()
    form = period_form(request.GET, today=today)
    context: dict[str, Any] = {
        "program": program,
        "form": form,
        "presets": PRESETS,
        "console_section": "programs",
        "tab": "analytics",
        "value_shown": VALUE_SHOWN,
        "reach_shown": REACH_SHOWN,
    }
    if not form.is_valid():
        # 200 with the errors, as any invalid form here: the period is asked again, nothing else shown.
        return render(request, "staff/analytics.html", context)
    # The figures come from the read replica when there is one (config.db_router); the permission check
    # above read the primary.
    with reading_replica():
        result = program_analytics(program, form.period, value_limit=VALUE_SHOWN, reach_limit=REACH_SHOWN)
    context |= {
        "result": result,
        "charts": _json_ready(result),
        "query": f"start={form.period.first.isoformat()}&end={form.period.last.isoformat()}",
    }
    return render(request, "staff/analytics.html", context)


# --- CSV ---------------------------------------------------------------------------------------------

Rows = Iterable[Sequence[Any]]


def _funnel_csv(program: Program, period: Period) -> tuple[list[str], Rows]:
    result = analytics.funnel(program, period)
    return ["step", "count", "rate_percent"], ([s.step, s.count, s.rate] for s in result.steps)


def _daily_csv(program: Program, period: Period) -> tuple[list[str], Rows]:
    result = analytics.daily_subscribers(program, period)
    milestones: dict[date, list[str]] = {}
    for m in result.milestones:
        milestones.setdefault(m.day, []).append(f"{m.tier} #{m.occurrence}: {m.price_after}")
    return (
        ["day", "signups", "qualified", "milestones"],
        ([p.day, p.signups, p.qualified, "; ".join(milestones.get(p.day, []))] for p in result.days),
    )


def _weekly_csv(program: Program, period: Period) -> tuple[list[str], Rows]:
    return (
        ["week_monday", "iso_year", "iso_week", "referred_qualified", "walk_ins_qualified", "referred_share_percent"],
        ([w.week, w.iso_year, w.iso_week, w.referred, w.walk_ins, w.referred_share] for w in
         analytics.weekly_sources(program, period)),
    )  # fmt: skip


def _cohorts_csv(program: Program, period: Period) -> tuple[list[str], Rows]:
    return (
        ["cohort_month", "ambassadors_joined", "qualified_referred", "k"],
        ([c.month, c.joined, c.qualified, c.k] for c in analytics.cohorts(program, period)),
    )


def _value_csv(program: Program, period: Period) -> tuple[list[str], Rows]:
    # Every ambassador, streamed from a server-side cursor.
    return list(analytics.VALUE_CSV_HEADER), analytics.value_stream(program, period)


def _reach_csv(program: Program, period: Period) -> tuple[list[str], Rows]:
    return list(analytics.REACH_CSV_HEADER), analytics.reach_stream(program, period)


CSV_TABLES: dict[str, Callable[[Program, Period], tuple[list[str], Rows]]] = {
    "funnel": _funnel_csv,
    "daily": _daily_csv,
    "weekly": _weekly_csv,
    "cohorts": _cohorts_csv,
    "value": _value_csv,
    "reach": _reach_csv,
}


@require_http_methods(["GET", "HEAD"])
def staff_analytics_csv(request: HttpRequest, slug: str, table: str) -> HttpResponseBase:
    """One table of the page as CSV, for the same period (`start`, `end`, or `days`)."""
    program = _program_for(request, slug)
    if isinstance(program, HttpResponse):
        return program
    if table not in CSV_TABLES:
        raise Http404("No such table.")
    form = period_form(request.GET, today=clock.now().date())
    if not form.is_valid():
        problems = "; ".join(f"{field}: {' '.join(str(e) for e in errors)}" for field, errors in form.errors.items())
        return HttpResponseBadRequest(problems, content_type="text/plain; charset=utf-8")
    period = form.period
    # On the replica when there is one: the table's queries, and the rows streamed after the view returns.
    with reading_replica():
        header, rows = CSV_TABLES[table](program, period)
    rows = rows_from_replica(rows)
    return csv_response(f"{program.slug}-{table}-{period.first}-{period.last}.csv", header, rows)


urlpatterns = [
    path("staff/p/<slug:slug>/analytics/", staff_analytics, name="staff-analytics"),
    # The funnel's CSV first, under the same name: reversing the name with the slug alone gives it (the
    # permission table builds its URLs from a slug); any other table is named by `table`.
    path(
        "staff/p/<slug:slug>/analytics/funnel.csv", staff_analytics_csv, {"table": "funnel"}, name="staff-analytics-csv"
    ),  # fmt: skip
    path("staff/p/<slug:slug>/analytics/<str:table>.csv", staff_analytics_csv, name="staff-analytics-csv"),
]
