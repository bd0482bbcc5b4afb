"""Staff pages for paying cash rewards: payout runs per program and period, each with its lines, totals per
currency, CSV and SEPA downloads and the one "Mark paid" step; the program's payout settings; and the
ambassador's own bank details page (console.payout_details), wired here.

Every view asks core.policies.may_manage_payouts (marketing staff); the rules (what is owed,
exactly-once payment, the files) are that module's.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Sum
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST

from ambassadors.models import Ambassador, Program
from console import payout_details
from console.exports import csv_response
from console.pages import staff_program
from core.actors import Actor
from core.errors import ParrainError
from core.policies import may_manage_payouts
from rewards.models import PayoutLine, PayoutRun
from rewards.services.payouts import (
    CSV_HEADER,
    HOLD_DAYS_MAX,
    balances_owed,
    draft_runs_overlapping,
    major_units,
    payout_configure,
    payout_run_create,
    payout_run_mark_paid,
    payout_settings_of,
    run_ambassadors,
    run_csv_rows,
    run_lines,
    run_sepa_xml,
    run_totals,
)

RUNS_SHOWN = 50
DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class RunForm(forms.Form):
    period_start = forms.DateField(label=gettext_lazy("From"), widget=DATE_INPUT)
    period_end = forms.DateField(
        label=gettext_lazy("To (included)"),
        widget=DATE_INPUT,
        help_text=gettext_lazy("Cash rewards unlocked up to this day and past their hold, not paid yet."),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("period_start"), cleaned.get("period_end")
        if start and end and end < start:
            self.add_error("period_end", _("The period ends before it starts."))
        return cleaned


class PayoutSettingsForm(forms.Form):
    hold_days = forms.IntegerField(
        label=gettext_lazy("Hold (days)"),
        min_value=0,
        max_value=HOLD_DAYS_MAX,
        help_text=gettext_lazy("A cash reward is payable once it is this old: time for refunds to revoke it."),
    )
    debtor_name = forms.CharField(label=gettext_lazy("Account holder of the business"), max_length=70, required=False)
    debtor_iban = forms.CharField(
        label=gettext_lazy("IBAN of the business"),
        max_length=42,
        required=False,
        help_text=gettext_lazy("The account the SEPA transfers are paid from."),
    )
    debtor_bic = forms.CharField(label=gettext_lazy("BIC of the business (optional)"), max_length=11, required=False)


class MarkPaidForm(forms.Form):
    confirm = forms.BooleanField(
        label=gettext_lazy("I have checked the lines: mark them paid"),
        help_text=gettext_lazy("This cannot be undone. Lines another payout paid meanwhile are skipped."),
    )
    reason = forms.CharField(label=gettext_lazy("Note for the audit trail (optional)"), max_length=500, required=False)


def _program_for(request: HttpRequest, slug: str) -> Program | HttpResponse:
    return staff_program(request, slug, may_manage_payouts)


def _payouts_url(program: Program) -> str:
    return reverse("staff-payouts", kwargs={"slug": program.slug})


def _run_url(run: PayoutRun) -> str:
    return reverse("staff-payout-run", kwargs={"slug": run.program.slug, "run_id": run.pk})


def _run_for(program: Program, run_id: int) -> PayoutRun:
    run = PayoutRun.objects.filter(program=program, pk=run_id).select_related("program").first()
    if run is None:
        raise Http404("No payout with this id in this program.")
    return run


def _service_error(form: forms.Form, exc: ParrainError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


@require_http_methods(["GET", "HEAD", "POST"])
def staff_payouts(request: HttpRequest, slug: str) -> HttpResponse:
    """The program's runs, the balances owed now, a form to create a run (POST) and the settings."""
    program = _program_for(request, slug)
    if isinstance(program, HttpResponse):
        return program
    status = 200
    run_form = RunForm(auto_id="id_run_%s")
    if request.method == "POST":
        run_form = RunForm(request.POST, auto_id="id_run_%s")
        if run_form.is_valid():
            try:
                run = payout_run_create(program=program, actor=Actor.for_request(request), **run_form.cleaned_data)
            except ParrainError as exc:
                _service_error(run_form, exc)
            else:
                messages.success(
                    request, _("The payout #%(id)s is drafted: check it, then mark it paid.") % {"id": run.pk}
                )
                return HttpResponseRedirect(_run_url(run))
        status = 400
    return _payouts_page(request, program, run_form=run_form, status=status)


def _payouts_page(
    request: HttpRequest,
    program: Program,
    *,
    run_form: RunForm | None = None,
    settings_form: PayoutSettingsForm | None = None,
    status: int = 200,
) -> HttpResponse:
    config = payout_settings_of(program)
    runs = list(PayoutRun.objects.filter(program=program).order_by("-created_at", "-id")[:RUNS_SHOWN])
    totals: dict[int, dict[str, Any]] = defaultdict(dict)
    counted = (
        PayoutLine.objects.filter(
            run__in=[run.pk for run in runs], status__in=[PayoutLine.Status.PENDING, PayoutLine.Status.PAID]
        )
        .values("run_id", "currency")
        .annotate(total=Sum("amount_minor"))
        .order_by("run_id", "currency")
    )
    for row in counted:
        totals[row["run_id"]][row["currency"]] = major_units(row["total"], row["currency"])
    balances = balances_owed(program)
    ambassadors = Ambassador.objects.select_related("payout_details").in_bulk([b.ambassador_id for b in balances])
    context: dict[str, Any] = {
        "program": program,
        "config": config,
        "runs": [{"run": run, "totals": sorted(totals[run.pk].items())} for run in runs],
        "balances": [
            {
                "ambassador": ambassadors[b.ambassador_id],
                "currency": b.currency,
                "amount": major_units(b.amount_minor, b.currency),
                "lines": b.lines,
                "has_details": hasattr(ambassadors[b.ambassador_id], "payout_details"),
            }
            for b in balances
        ],
        "run_form": run_form or RunForm(auto_id="id_run_%s"),
        "settings_form": settings_form
        or PayoutSettingsForm(
            initial={
                "hold_days": config.hold_days,
                "debtor_name": config.debtor_name,
                "debtor_iban": config.debtor_iban,
                "debtor_bic": config.debtor_bic,
            },
            auto_id="id_settings_%s",
        ),
        "console_section": "programs",
        "tab": "payouts",
    }
    return render(request, "staff/payouts.html", context, status=status)


@require_POST
def staff_payout_settings(request: HttpRequest, slug: str) -> HttpResponse:
    program = _program_for(request, slug)
    if isinstance(program, HttpResponse):
        return program
    form = PayoutSettingsForm(request.POST, auto_id="id_settings_%s")
    if form.is_valid():
        try:
            payout_configure(program=program, actor=Actor.for_request(request), **form.cleaned_data)
        except ParrainError as exc:
            _service_error(form, exc)
        else:
            messages.success(request, _("The payout settings are saved."))
            return HttpResponseRedirect(_payouts_url(program))
    return _payouts_page(request, program, settings_form=form, status=400)


@require_http_methods(["GET", "HEAD", "POST"])
def staff_payout_run(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    """One run: its lines per ambassador and currency, totals, files, and the "Mark paid" form (POST)."""
    program = _program_for(request, slug)
    if isinstance(program, HttpResponse):
        return program
    run = _run_for(program, run_id)
    form = MarkPaidForm(auto_id="id_pay_%s")
    status = 200
    if request.method == "POST":
        form = MarkPaidForm(request.POST, auto_id="id_pay_%s")
        if form.is_valid():
            try:
                outcome = payout_run_mark_paid(
                    run=run, actor=Actor.for_request(request), reason=form.cleaned_data["reason"]
                )
            except ParrainError as exc:
                _service_error(form, exc)
            else:
                messages.success(
                    request,
                    ngettext("%(count)s line is marked paid.", "%(count)s lines are marked paid.", len(outcome.paid))
                    % {"count": len(outcome.paid)},
                )
                if outcome.skipped:
                    messages.warning(
                        request,
                        ngettext(
                            "%(count)s line was skipped: see why below.",
                            "%(count)s lines were skipped: see why below.",
                            len(outcome.skipped),
                        )
                        % {"count": len(outcome.skipped)},
                    )
                return HttpResponseRedirect(_run_url(run))
        status = 400
    lines = run_lines(run)
    context: dict[str, Any] = {
        "program": program,
        "run": run,
        "groups": run_ambassadors(run, lines),
        "skipped": [line for line in lines if line.status == PayoutLine.Status.SKIPPED],
        "totals": sorted(run_totals(run, lines).items()),
        "overlapping": draft_runs_overlapping(run) if run.state == PayoutRun.State.DRAFT else [],
        "config": payout_settings_of(program),
        "form": form,
        "console_section": "programs",
        "tab": "payouts",
    }
    return render(request, "staff/payouts_run.html", context, status=status)


@require_http_methods(["GET", "HEAD"])
def staff_payout_run_csv(request: HttpRequest, slug: str, run_id: int) -> HttpResponse | StreamingHttpResponse:
    program = _program_for(request, slug)
    if isinstance(program, HttpResponse):
        return program
    run = _run_for(program, run_id)
    return csv_response(f"{program.slug}-payout-{run.pk}.csv", CSV_HEADER, run_csv_rows(run))


@require_http_methods(["GET", "HEAD"])
def staff_payout_run_sepa(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    program = _program_for(request, slug)
    if isinstance(program, HttpResponse):
        return program
    run = _run_for(program, run_id)
    try:
        xml = run_sepa_xml(run)
    except ParrainError as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(_run_url(run))
    response = HttpResponse(xml, content_type="application/xml")
    response["Content-Disposition"] = f'attachment; filename="{program.slug}-payout-{run.pk}-sepa.xml"'
    response["Cache-Control"] = "private, no-store"
    return response


urlpatterns = [
    path("staff/p/<slug:slug>/payouts/", staff_payouts, name="staff-payouts"),
    path("staff/p/<slug:slug>/payouts/settings", staff_payout_settings, name="staff-payout-settings"),
    path("staff/p/<slug:slug>/payouts/<int:run_id>/", staff_payout_run, name="staff-payout-run"),
    path("staff/p/<slug:slug>/payouts/<int:run_id>.csv", staff_payout_run_csv, name="staff-payout-run-csv"),
    path("staff/p/<slug:slug>/payouts/<int:run_id>-sepa.xml", staff_payout_run_sepa, name="staff-payout-run-sepa"),
    *payout_details.urlpatterns,
]
