"""/audit/: the admins' search over signups and conversions (paged, exportable as CSV), one signup's page
explaining its attribution, and the overrides and review decisions taken from that page.

Reading is for admins (`may_read_audit`, then `may_read_attributions` on a signup's program); writing
asks `may_override` or `may_review` and goes through referrals.services, which audit and recount.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from console.audit import queries
from console.audit.explain import signup_audit, signup_for_audit
from console.audit.forms import (
    ConversionSearchForm,
    ReassignForm,
    ReviewForm,
    SignupSearchForm,
    UnassignForm,
)
from console.exports import csv_response
from console.pages import refused as _refused
from core import policies
from core.actors import Actor
from core.errors import ParrainError
from referrals.models import Signup
from referrals.selectors import ambassador_for_code
from referrals.services import signup_override, signup_review

PAGER_PARAMS = ("after", "before")


def _principal(request: HttpRequest) -> policies.Principal:
    return policies.Principal.from_request(request)


def _query(params: QueryDict, **extra: str) -> str:
    """The search's query string without its position, plus `extra`."""
    kept = params.copy()
    for name in PAGER_PARAMS:
        kept.pop(name, None)
    for name, value in extra.items():
        kept[name] = value
    encoded = kept.urlencode()
    return f"?{encoded}" if encoded else ""


def _pager(request: HttpRequest, page: queries.Page[Any]) -> dict[str, str | None]:
    base = request.path
    return {
        "next_url": base + _query(request.GET, after=page.next) if page.next else None,
        "previous_url": base + _query(request.GET, before=page.previous) if page.previous else None,
        "first_url": None if page.is_first else base + _query(request.GET),
    }


# --- Searches ------------------------------------------------------------------------------------------


def _search(
    request: HttpRequest,
    *,
    form_class: Any,
    page_of: Callable[..., Any],
    section: str,
    csv_name: str,
    template: str,
) -> HttpResponse:
    """A search page: the form, and when it is valid one page of what it finds, newest first."""
    if refused := _refused(request, policies.may_read_audit(_principal(request))):
        return refused
    form = form_class(request.GET)
    page = None
    if form.is_valid():
        page = page_of(
            form.filters(),
            after=queries.Cursor.decode(request.GET.get("after")),
            before=queries.Cursor.decode(request.GET.get("before")),
        )
    context = {
        "console_section": section,
        "form": form,
        "page": page,
        "pager": _pager(request, page) if page else {},
        "csv_url": reverse(csv_name) + _query(request.GET),
    }
    return render(request, template, context, status=200 if page else 400)


@require_http_methods(["GET", "HEAD"])
def signups(request: HttpRequest) -> HttpResponse:
    """Search signups across programs: newest first, a page at a time."""
    return _search(
        request,
        form_class=SignupSearchForm,
        page_of=queries.signups_page,
        section="signups",
        csv_name="audit-signups-csv",
        template="audit/signups.html",
    )


@require_http_methods(["GET", "HEAD"])
def conversions(request: HttpRequest) -> HttpResponse:
    """Search conversions across programs: latest purchase first, a page at a time."""
    return _search(
        request,
        form_class=ConversionSearchForm,
        page_of=queries.conversions_page,
        section="conversions",
        csv_name="audit-conversions-csv",
        template="audit/conversions.html",
    )


@require_http_methods(["GET", "HEAD"])
def signups_csv(request: HttpRequest) -> HttpResponseBase:
    """Every signup the search finds, streamed as CSV."""
    if refused := _refused(request, policies.may_read_audit(_principal(request))):
        return refused
    form = SignupSearchForm(request.GET)
    if not form.is_valid():
        return signups(request)
    return csv_response("signups.csv", queries.SIGNUP_CSV_HEADER, queries.signups_csv_rows(form.filters()))


@require_http_methods(["GET", "HEAD"])
def conversions_csv(request: HttpRequest) -> HttpResponseBase:
    """Every conversion the search finds, streamed as CSV."""
    if refused := _refused(request, policies.may_read_audit(_principal(request))):
        return refused
    form = ConversionSearchForm(request.GET)
    if not form.is_valid():
        return conversions(request)
    return csv_response("conversions.csv", queries.CONVERSION_CSV_HEADER, queries.conversions_csv_rows(form.filters()))


# --- One signup ----------------------------------------------------------------------------------------


def _signup_get_for_admin(request: HttpRequest, signup_id: int) -> Signup:
    """The signup, for whoever may read its program's attributions (the caller asked may_read_audit)."""
    signup = signup_for_audit(signup_id)
    if signup is None:
        raise Http404("No signup with this id.")
    decision = policies.may_read_attributions(_principal(request), signup.program)
    if not decision:
        _refused(request, decision)  # raises: a signed-in admin without the right
    return signup


def _render_signup(
    request: HttpRequest, signup: Signup, bound: dict[str, Any] | None = None, status: int = 200
) -> HttpResponse:
    bound = bound or {}
    principal = _principal(request)
    audit = signup_audit(signup)
    may_override = bool(policies.may_override(principal, signup.program))
    may_review = audit.pending_review and bool(policies.may_review(principal, signup.program))
    context = {
        "console_section": "signups",
        "audit": audit,
        "x": audit.explanation,
        "may_override": may_override,
        "may_review": may_review,
        "reassign_form": bound.get("reassign") or ReassignForm(auto_id="id_reassign_%s"),
        "unassign_form": bound.get("unassign") or UnassignForm(auto_id="id_unassign_%s"),
        "review_form": bound.get("review") or ReviewForm(auto_id="id_review_%s"),
        "bound_form": next(iter(bound.values()), None),
    }
    return render(request, "audit/signup.html", context, status=status)


@require_http_methods(["GET", "HEAD"])
def signup_page(request: HttpRequest, signup_id: int) -> HttpResponse:
    """Why this signup is credited as it is, and every decision taken on it."""
    if refused := _refused(request, policies.may_read_audit(_principal(request))):
        return refused
    return _render_signup(request, _signup_get_for_admin(request, signup_id))


def _service_error(form: Any, exc: ParrainError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


@require_POST
def signup_override_view(request: HttpRequest, signup_id: int) -> HttpResponse:
    """Reassign the signup to another ambassador of its program, or to nobody, with a reason."""
    if refused := _refused(request, policies.may_read_audit(_principal(request))):
        return refused
    signup = _signup_get_for_admin(request, signup_id)
    if refused := _refused(request, policies.may_override(_principal(request), signup.program)):
        return refused
    action = request.POST.get("action")
    form: ReassignForm | UnassignForm
    if action == "reassign":
        form = ReassignForm(request.POST, auto_id="id_reassign_%s")
    else:
        form = UnassignForm(request.POST, auto_id="id_unassign_%s")
        if action != "unassign":
            form.add_error(None, _("Choose to reassign or to unassign."))
    if form.is_valid():
        ambassador = None
        if isinstance(form, ReassignForm):
            code = form.cleaned_data["ambassador_code"]
            ambassador = ambassador_for_code(signup.program, code)
            if ambassador is None:
                form.add_error("ambassador_code", _("No ambassador has this code in this program."))
            elif ambassador.pk == signup.ambassador_id:
                form.add_error(
                    "ambassador_code", _("This signup is already credited to %(code)s.") % {"code": ambassador.code}
                )
        elif signup.ambassador_id is None:
            form.add_error(None, _("Nobody is credited with this signup already."))
        if not form.errors:
            try:
                signup_override(
                    signup=signup,
                    ambassador=ambassador,
                    reason=form.cleaned_data["reason"],
                    actor=Actor.for_request(request),
                )
            except ParrainError as exc:
                _service_error(form, exc)
            else:
                if ambassador is not None:
                    messages.success(request, _("The signup is now credited to %(code)s.") % {"code": ambassador.code})
                else:
                    messages.success(request, _("The signup is now credited to nobody."))
                return HttpResponseRedirect(reverse("audit-signup", args=[signup.pk]))
    return _render_signup(
        request, signup, bound={str(action if action == "reassign" else "unassign"): form}, status=400
    )


REVIEW_DECISIONS = {"approve": Signup.Status.QUALIFIED, "reject": Signup.Status.REJECTED}


@require_POST
def signup_review_view(request: HttpRequest, signup_id: int) -> HttpResponse:
    """Approve or reject a signup held for review, with a reason."""
    if refused := _refused(request, policies.may_read_audit(_principal(request))):
        return refused
    signup = _signup_get_for_admin(request, signup_id)
    if refused := _refused(request, policies.may_review(_principal(request), signup.program)):
        return refused
    form = ReviewForm(request.POST, auto_id="id_review_%s")
    if form.is_valid():
        try:
            signup_review(
                signup=signup,
                status=REVIEW_DECISIONS[form.cleaned_data["decision"]],
                reason=form.cleaned_data["reason"],
                actor=Actor.for_request(request),
            )
        except ParrainError as exc:
            _service_error(form, exc)
        else:
            if form.cleaned_data["decision"] == "approve":
                messages.success(request, _("Approved: the signup counts now."))
            else:
                messages.success(request, _("Rejected: the signup will not count."))
            return HttpResponseRedirect(reverse("audit-signup", args=[signup.pk]))
    return _render_signup(request, signup, bound={"review": form}, status=400)


urlpatterns = [
    path("audit/", signups, name="audit-home"),
    path("audit/conversions/", conversions, name="audit-conversions"),
    path("audit/signups.csv", signups_csv, name="audit-signups-csv"),
    path("audit/conversions.csv", conversions_csv, name="audit-conversions-csv"),
    path("audit/signups/<int:signup_id>/", signup_page, name="audit-signup"),
    path("audit/signups/<int:signup_id>/override", signup_override_view, name="audit-signup-override"),
    path("audit/signups/<int:signup_id>/review", signup_review_view, name="audit-signup-review"),
]
