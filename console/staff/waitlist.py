"""The staff console's waitlist of a program: its settings, the line with every subscriber's place (paged),
the same line as a streamed CSV, and admitting the first N.

Every view asks core.policies.may_manage_waitlist; the rules (positions, admissions) are commerce.waitlist's.
The page and the CSV read the same query, so the file says what the page says.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST

from ambassadors.models import Program
from commerce.waitlist import (
    ADMIT_MAX,
    waitlist_admit,
    waitlist_configure,
    waitlist_lines,
    waitlist_settings_of,
    waitlist_stream,
)
from console.exports import csv_response
from console.pages import staff_program
from core import policies
from core.actors import Actor
from core.errors import ParrainError

PAGE_SIZE = 50
CSV_HEADER = ("position", "ahead", "email", "subscribed_at", "qualified_referrals", "signup_order", "score")


class WaitlistSettingsForm(forms.Form):
    enabled = forms.BooleanField(label=gettext_lazy("Run this program as a waitlist"), required=False)
    places_per_referral = forms.IntegerField(
        label=gettext_lazy("Places gained per qualified referral"),
        min_value=0,
        max_value=1_000_000,
        help_text=gettext_lazy("A friend held for review or rejected moves nobody."),
    )


class AdmitForm(forms.Form):
    count = forms.IntegerField(label=gettext_lazy("How many, from the top"), min_value=1, max_value=ADMIT_MAX)
    # The signup first in line when the page was shown: a form posted twice admits nobody twice.
    expected_first = forms.IntegerField(widget=forms.HiddenInput, required=False)


def _program_for(request: HttpRequest, slug: str) -> Program | HttpResponse:
    return staff_program(request, slug, policies.may_manage_waitlist)


def _page_number(request: HttpRequest) -> int:
    try:
        return max(1, min(int(request.GET.get("page", "1")), 1_000_000))
    except ValueError:
        return 1


def _waitlist_url(program: Program) -> str:
    return reverse("staff-waitlist", kwargs={"slug": program.slug})


@require_http_methods(["GET", "HEAD", "POST"])
def staff_waitlist(request: HttpRequest, slug: str) -> HttpResponse:
    """The line, PAGE_SIZE places a page; a POST saves the settings."""
    program = _program_for(request, slug)
    if isinstance(program, HttpResponse):
        return program
    config = waitlist_settings_of(program)
    status = 200
    if request.method == "POST":
        settings_form = WaitlistSettingsForm(request.POST)
        if settings_form.is_valid():
            try:
                waitlist_configure(program=program, actor=Actor.for_request(request), **settings_form.cleaned_data)
            except ParrainError as exc:
                settings_form.add_error(exc.field if exc.field in settings_form.fields else None, exc.message)
            else:
                messages.success(request, _("The waitlist settings are saved."))
                return HttpResponseRedirect(_waitlist_url(program))
        status = 400
    else:
        settings_form = WaitlistSettingsForm(
            initial={"enabled": config.enabled, "places_per_referral": config.places_per_referral}
        )
    page = _page_number(request)
    lines = waitlist_lines(program, places=config.places_per_referral, after=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    total = lines[0].total if lines else 0
    context: dict[str, Any] = {
        "program": program,
        "config": config,
        "lines": lines,
        "total": total,
        "page": page,
        "previous_url": f"{_waitlist_url(program)}?page={page - 1}" if page > 1 else None,
        "next_url": f"{_waitlist_url(program)}?page={page + 1}" if page * PAGE_SIZE < total else None,
        "settings_form": settings_form,
        "admit_form": AdmitForm(
            initial={"count": 10, "expected_first": lines[0].signup_id if lines and page == 1 else None},
            auto_id="id_admit_%s",
        ),
        "console_section": "programs",
        "tab": "waitlist",
    }
    return render(request, "staff/waitlist.html", context, status=status)


@require_POST
def staff_waitlist_admit(request: HttpRequest, slug: str) -> HttpResponse:
    program = _program_for(request, slug)
    if isinstance(program, HttpResponse):
        return program
    form = AdmitForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say how many to admit: a whole number from 1 to %(max)s.") % {"max": ADMIT_MAX})
        return HttpResponseRedirect(_waitlist_url(program))
    try:
        admitted = waitlist_admit(
            program=program,
            count=form.cleaned_data["count"],
            expected_first=form.cleaned_data["expected_first"],
            actor=Actor.for_request(request),
        )
    except ParrainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            ngettext("%(count)s subscriber admitted.", "%(count)s subscribers admitted.", len(admitted))
            % {"count": len(admitted)},
        )
    return HttpResponseRedirect(_waitlist_url(program))


@require_http_methods(["GET", "HEAD"])
def staff_waitlist_csv(request: HttpRequest, slug: str) -> HttpResponse | StreamingHttpResponse:
    """The whole line as CSV, streamed from one query: the rows the pages show, in their order."""
    program = _program_for(request, slug)
    if isinstance(program, HttpResponse):
        return program
    rows = (
        (
            line.position,
            line.ahead,
            line.email,
            line.created_at,
            line.referrals,
            line.signup_order,
            line.score,
        )
        for line in waitlist_stream(program)
    )
    return csv_response(f"{program.slug}-waitlist.csv", CSV_HEADER, rows)


urlpatterns = [
    path("staff/p/<slug:slug>/waitlist/", staff_waitlist, name="staff-waitlist"),
    path("staff/p/<slug:slug>/waitlist/admit", staff_waitlist_admit, name="staff-waitlist-admit"),
    path("staff/p/<slug:slug>/waitlist.csv", staff_waitlist_csv, name="staff-waitlist-csv"),
]
