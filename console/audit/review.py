"""The fraud review queue: signups held for review, oldest first, approved or rejected one by one or in bulk.

Each checked signup is decided by its own call to referrals.services.review.signup_review (its own
transaction, its own audit event); one decided meanwhile by someone else is reported and skipped, the
others proceed. The audit trail's pages live in console/audit/trail.py and are routed here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import F, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST

from console.audit import trail
from console.audit.review_forms import ReviewDecisionForm, ReviewFilterForm, cursor_encode
from console.pages import refused as _refused
from core import policies
from core.actors import Actor
from core.errors import ParrainError
from referrals.models import Signup
from referrals.services import signup_review

PAGE_SIZE = 50

# Why a signup is held, in plain words (the rule that held it; reason_detail gives its figures).
HELD_BECAUSE: dict[str, Any] = {
    Signup.Reason.VELOCITY: gettext_lazy("Too many signups from the same address or visitor in a short time"),
    Signup.Reason.DISPOSABLE_EMAIL: gettext_lazy("A disposable (throw-away) e-mail address"),
    Signup.Reason.SELF_REFERRAL: gettext_lazy("The ambassador seems to have referred themselves"),
}
HELD_OTHERWISE = gettext_lazy("Held for review")

DECISION_STATUS = {
    ReviewDecisionForm.APPROVE: Signup.Status.QUALIFIED,
    ReviewDecisionForm.REJECT: Signup.Status.REJECTED,
}


@dataclass(frozen=True)
class HeldSignup:
    """One row of the queue."""

    id: int
    email: str
    program_name: str
    program_slug: str
    ambassador_code: str
    created_at: datetime
    why: str
    detail: str


def _held(program: Any, after: tuple[datetime, int] | None) -> QuerySet[Signup]:
    signups = Signup.objects.filter(status=Signup.Status.PENDING_REVIEW)
    if program is not None:
        signups = signups.filter(program=program)
    if after is not None:
        signups = signups.filter(TupleGreaterThan(Tuple(F("created_at"), F("id")), after))
    return signups.order_by("created_at", "id")


def review_queue(program: Any = None, after: tuple[datetime, int] | None = None) -> tuple[list[HeldSignup], str]:
    """A page of held signups, oldest first, and the cursor of the next page ("" on the last)."""
    rows = list(
        _held(program, after)
        .select_related("program", "ambassador")
        .only(
            "id", "email", "created_at", "reason", "reason_detail", "program__name", "program__slug",
            "ambassador__code",
        )[: PAGE_SIZE + 1]
    )  # fmt: skip
    following = ""
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        following = cursor_encode(rows[-1].created_at, rows[-1].pk)
    return [
        HeldSignup(
            id=signup.pk,
            email=signup.email,
            program_name=signup.program.name,
            program_slug=signup.program.slug,
            ambassador_code=signup.ambassador.code if signup.ambassador else "",
            created_at=signup.created_at,
            why=str(HELD_BECAUSE.get(signup.reason, HELD_OTHERWISE)),
            detail=signup.reason_detail,
        )
        for signup in rows
    ], following


def _may_review(request: HttpRequest) -> HttpResponse | None:
    return _refused(request, policies.may_review(policies.Principal.from_request(request)))


def _render_queue(
    request: HttpRequest, *, decision_form: ReviewDecisionForm | None = None, status: int = 200
) -> HttpResponse:
    filters = ReviewFilterForm(request.GET)
    program, after = None, None
    if filters.is_valid():
        program, after = filters.cleaned_data["program"], filters.cleaned_data["after"]
    rows, following = review_queue(program, after)
    kept = {"program": program.slug} if program is not None else {}
    context = {
        "console_section": "review",
        "filters": filters,
        "rows": rows,
        "form": decision_form or ReviewDecisionForm(),
        "checked": set(request.POST.getlist("signups")) if decision_form is not None else set(),
        "decide_query": urlencode(kept),
        "next_query": urlencode({**kept, "after": following}) if following else "",
        "first_query": urlencode(kept) if after is not None else None,
    }
    return render(request, "audit/review.html", context, status=status)


@require_http_methods(["GET", "HEAD"])
def review(request: HttpRequest) -> HttpResponse:
    if refused := _may_review(request):
        return refused
    return _render_queue(request)


def _back(request: HttpRequest) -> str:
    program = request.GET.get("program", "")
    url = reverse("audit-review")
    return f"{url}?{urlencode({'program': program})}" if program else url


@require_POST
def review_decide(request: HttpRequest) -> HttpResponse:
    """Decide each checked signup on its own (one transaction and one audit event each), then go back."""
    if refused := _may_review(request):
        return refused
    form = ReviewDecisionForm(request.POST)
    if not form.is_valid():
        return _render_queue(request, decision_form=form, status=400)
    principal, actor = policies.Principal.from_request(request), Actor.for_request(request)
    decision, reason = form.cleaned_data["decision"], form.cleaned_data["reason"]
    ids: list[int] = form.cleaned_data["signups"]
    found = Signup.objects.select_related("program").in_bulk(ids)
    decided, skipped = 0, []
    for pk in ids:
        signup = found.get(pk)
        if signup is None:
            skipped.append(_("signup %(id)s: it no longer exists.") % {"id": pk})
            continue
        if not policies.may_review(principal, signup.program):
            skipped.append(_("%(email)s: you may not review it.") % {"email": signup.email})
            continue
        try:
            signup_review(signup=signup, status=DECISION_STATUS[decision], reason=reason, actor=actor)
        except ParrainError as exc:
            # Not waiting for review any more: someone decided it meanwhile (a Conflict), or it never was.
            skipped.append(_("%(email)s: %(problem)s") % {"email": signup.email, "problem": exc.message})
        else:
            decided += 1
    if decision == ReviewDecisionForm.APPROVE:
        done = ngettext("%(count)d signup approved.", "%(count)d signups approved.", decided) % {"count": decided}
    else:
        done = ngettext("%(count)d signup rejected.", "%(count)d signups rejected.", decided) % {"count": decided}
    messages.success(request, done)
    if skipped:
        messages.warning(
            request,
            ngettext("%(count)d skipped: %(list)s", "%(count)d skipped: %(list)s", len(skipped))
            % {"count": len(skipped), "list": " ".join(skipped)},
        )
    return HttpResponseRedirect(_back(request))


urlpatterns = [
    path("audit/review/", review, name="audit-review"),
    path("audit/review/decide", review_decide, name="audit-review-decide"),
    path("audit/trail/", trail.trail, name="audit-trail"),
    path("audit/trail.csv", trail.trail_csv, name="audit-trail-csv"),
]
