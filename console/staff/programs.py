"""The staff console's programs: the list, a program's settings and status, its reward tiers (with the preview
of a tier before it is saved) and its contests (created, changed and followed here).

Every view asks its core.policies decision first; every write is a service's (program_create/update,
tier_create/update, contest_create/update), which audits it; a service's refusal becomes a form error.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from ambassadors.models import Program
from ambassadors.services import program_create, program_update
from console.contests import contest_standing
from console.pages import refused as _refused
from console.staff.forms import ContestForm, ProgramForm, ProgramStatusForm, TierForm
from console.staff.preview import LadderPreview, UnlockPreview, tier_preview
from core import clock, policies
from core.actors import Actor
from core.errors import ParrainError
from rewards.models import Contest, RewardTier
from rewards.services import contest_create, contest_update, tier_create, tier_update

PAGE_SIZE = 50
# Contests listed on a program's page, the latest first (a monthly prize makes twelve a year).
CONTESTS_SHOWN = 24
# Lines of a contest's live ranking shown to staff (at least its number of winners).
RANKING_SHOWN = 20

ALLOWED_STATUS_CHANGES = {
    Program.Status.OPEN: (Program.Status.PAUSED, Program.Status.CLOSED),
    Program.Status.PAUSED: (Program.Status.OPEN, Program.Status.CLOSED),
    Program.Status.CLOSED: (Program.Status.OPEN,),
}


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _program_for(request: HttpRequest, slug: str, *, contests: bool = False) -> Program | HttpResponse:
    """The program to manage, or the answer to who may not: login, 403 (the console or the program), 404."""
    principal = policies.Principal.from_request(request)
    if refused := _refused(request, policies.may_use_staff_console(principal)):
        return refused
    program = Program.objects.filter(slug=slug).select_related("counters").first()
    if program is None:
        raise Http404("No program with this slug.")
    decision = (policies.may_manage_contests if contests else policies.may_manage_program)(principal, program)
    if refused := _refused(request, decision):
        return refused
    return program


# --- The list ----------------------------------------------------------------------------------------


def programs_for_console() -> QuerySet[Program]:
    """Every program, with its subscribers and its active ambassadors counted: 1 query per page."""
    return (
        Program.objects.select_related("counters")
        .annotate(ambassadors_count=Count("ambassadors", filter=Q(ambassadors__is_active=True)))
        .order_by("name", "pk")
    )


@require_http_methods(["GET", "HEAD"])
def staff_home(request: HttpRequest) -> HttpResponse:
    principal = policies.Principal.from_request(request)
    if refused := _refused(request, policies.may_use_staff_console(principal)):
        return refused
    page = Paginator(programs_for_console(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "staff/programs.html",
        {
            "page": page,
            "may_create": bool(policies.may_create_program(principal)),
            "console_section": "programs",
        },
    )


# --- A program ---------------------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
def staff_program_create(request: HttpRequest) -> HttpResponse:
    principal = policies.Principal.from_request(request)
    if refused := _refused(request, policies.may_use_staff_console(principal)):
        return refused
    if refused := _refused(request, policies.may_create_program(principal)):
        return refused
    if request.method != "POST":
        form = ProgramForm()
        return render(request, "staff/program_form.html", {"form": form, "console_section": "programs"})
    form = ProgramForm(request.POST)
    if form.is_valid():
        try:
            program = program_create(actor=Actor.for_request(request), **form.program_fields())
        except ParrainError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, _("The program %(name)s is created.") % {"name": program.name})
            return HttpResponseRedirect(reverse("staff-program", kwargs={"slug": program.slug}))
    return render(request, "staff/program_form.html", {"form": form, "console_section": "programs"}, status=400)


def _program_page(
    request: HttpRequest,
    program: Program,
    *,
    form: ProgramForm | None = None,
    status: int = 200,
    confirm_close: bool = False,
) -> HttpResponse:
    """The program's page: its settings, status, tiers and contests. 3 queries, whatever their numbers."""
    now = clock.now()
    tiers = list(RewardTier.objects.filter(program=program).order_by("kind", "-is_active", "threshold", "id"))
    contests = list(Contest.objects.filter(program=program).order_by("-starts_at", "-id")[:CONTESTS_SHOWN])
    return render(
        request,
        "staff/program.html",
        {
            "program": program,
            "form": form or ProgramForm(program=program),
            "subscribers": getattr(getattr(program, "counters", None), "qualified", 0),
            "status_changes": ALLOWED_STATUS_CHANGES[Program.Status(program.status)],
            "tiers": tiers,
            "contests": [(contest, contest.status_at(now)) for contest in contests],
            "confirm_close": confirm_close,
            "console_section": "programs",
            "tab": "settings",
        },
        status=status,
    )


@require_http_methods(["GET", "HEAD", "POST"])
def staff_program(request: HttpRequest, slug: str) -> HttpResponse:
    """GET shows the program; POST saves its settings, or (with `status`) pauses, closes or reopens it."""
    program = _program_for(request, slug)
    if isinstance(program, HttpResponse):
        return program
    if request.method != "POST":
        return _program_page(request, program)
    if "status" in request.POST:
        return _program_status(request, program)
    form = ProgramForm(request.POST, program=program)
    if form.is_valid():
        try:
            program = program_update(program=program, actor=Actor.for_request(request), **form.program_fields())
        except ParrainError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, _("The settings of %(name)s are saved.") % {"name": program.name})
            return HttpResponseRedirect(reverse("staff-program", kwargs={"slug": program.slug}))
    return _program_page(request, program, form=form, status=400)


def _program_status(request: HttpRequest, program: Program) -> HttpResponse:
    form = ProgramStatusForm(request.POST)
    current = Program.Status(program.status)
    if not form.is_valid() or form.cleaned_data["status"] not in ALLOWED_STATUS_CHANGES[current]:
        messages.error(request, _("This program cannot change to that status."))
        return HttpResponseRedirect(reverse("staff-program", kwargs={"slug": program.slug}))
    wanted = form.cleaned_data["status"]
    if wanted == Program.Status.CLOSED and not form.cleaned_data["confirm"]:
        # Closing stops new ambassadors and subscribers: ask once more, on a page that needs no script.
        return _program_page(request, program, confirm_close=True)
    try:
        program = program_update(program=program, actor=Actor.for_request(request), status=wanted)
    except ParrainError as exc:
        messages.error(request, exc.message)
    else:
        done = {
            Program.Status.OPEN: _("%(name)s is open."),
            Program.Status.PAUSED: _("%(name)s is paused."),
            Program.Status.CLOSED: _("%(name)s is closed."),
        }[Program.Status(wanted)]
        messages.success(request, done % {"name": program.name})
    return HttpResponseRedirect(reverse("staff-program", kwargs={"slug": program.slug}))


# --- Reward tiers ------------------------------------------------------------------------------------


def _tier_for(program: Program, tier_id: int | str) -> RewardTier:
    tier = RewardTier.objects.filter(program=program, pk=tier_id).first() if str(tier_id).isdigit() else None
    if tier is None:
        raise Http404("No tier with this id in this program.")
    return tier


def _tier_page(
    request: HttpRequest,
    program: Program,
    form: TierForm,
    *,
    tier: RewardTier | None = None,
    preview: LadderPreview | UnlockPreview | None = None,
    previewed: bool = False,
    status: int = 200,
) -> HttpResponse:
    """The tier form; `previewed` when it was submitted for a preview (a saved tier shows its own without)."""
    return render(
        request,
        "staff/tier_form.html",
        {
            "program": program,
            "tier": tier,
            "form": form,
            "preview": preview,
            "previewed": previewed,
            "console_section": "programs",
            "tab": "tiers",
        },
        status=status,
    )


def _tier_submit(request: HttpRequest, program: Program, tier: RewardTier | None) -> HttpResponse:
    """POST of the tier form: `preview` shows what the tier would do (saving nothing); otherwise it saves."""
    form = TierForm(request.POST, program=program, tier=tier)
    previewing = "preview" in request.POST
    if not form.is_valid():
        return _tier_page(request, program, form, tier=tier, previewed=previewing, status=400)
    if previewing:
        preview = tier_preview(program, form.tier_fields())
        return _tier_page(request, program, form, tier=tier, preview=preview, previewed=True)
    actor = Actor.for_request(request)
    try:
        if tier is None:
            saved = tier_create(program=program, actor=actor, **form.tier_fields())
        else:
            saved = tier_update(tier=tier, actor=actor, **form.tier_fields())
    except ParrainError as exc:
        form.add_service_error(exc)
        return _tier_page(request, program, form, tier=tier, status=400)
    messages.success(request, _("The tier %(name)s is saved.") % {"name": saved.name})
    return HttpResponseRedirect(reverse("staff-program", kwargs={"slug": program.slug}) + "#tiers")


@require_http_methods(["GET", "HEAD", "POST"])
def staff_tier_create(request: HttpRequest, slug: str) -> HttpResponse:
    program = _program_for(request, slug)
    if isinstance(program, HttpResponse):
        return program
    if request.method == "POST":
        return _tier_submit(request, program, None)
    kind = request.GET.get("kind")
    form = TierForm(program=program, initial={"kind": kind} if kind in RewardTier.Kind.values else None)
    return _tier_page(request, program, form)


@require_http_methods(["GET", "HEAD", "POST"])
def staff_tier(request: HttpRequest, slug: str, tier_id: int) -> HttpResponse:
    """A tier: its settings, and what it does today (the same preview as before saving)."""
    program = _program_for(request, slug)
    if isinstance(program, HttpResponse):
        return program
    tier = _tier_for(program, tier_id)
    if request.method == "POST":
        return _tier_submit(request, program, tier)
    saved = {name: getattr(tier, name) for name in ("kind", "metric", "threshold", "repeat_every", "step",
                                                     "drop_type", "drop_value")}  # fmt: skip
    preview = tier_preview(program, saved) if tier.is_active else None
    return _tier_page(request, program, TierForm(program=program, tier=tier), tier=tier, preview=preview)


@require_POST
def staff_tier_preview(request: HttpRequest, slug: str) -> HttpResponse:
    """The preview of the tier form's values, saving nothing: the preview fragment for htmx, or (without
    script) the whole form page again with the preview under it. `?tier=<id>` when editing a tier."""
    program = _program_for(request, slug)
    if isinstance(program, HttpResponse):
        return program
    tier = _tier_for(program, request.GET["tier"]) if request.GET.get("tier") else None
    form = TierForm(request.POST, program=program, tier=tier)
    preview = tier_preview(program, form.tier_fields()) if form.is_valid() else None
    if _is_htmx(request):
        # 200 with the problems listed: htmx swaps only a 2xx answer.
        response = render(
            request,
            "staff/_tier_preview.html",
            {"program": program, "form": form, "preview": preview, "previewed": True},
        )
    else:
        response = _tier_page(
            request, program, form, tier=tier, preview=preview, previewed=True, status=200 if preview else 400
        )
    response["Vary"] = "HX-Request"
    return response


# --- Contests ----------------------------------------------------------------------------------------


def _contest_for(program: Program, contest_id: int) -> Contest:
    contest = Contest.objects.filter(program=program, pk=contest_id).first()
    if contest is None:
        raise Http404("No contest with this id in this program.")
    return contest


@require_http_methods(["GET", "HEAD", "POST"])
def staff_contest_create(request: HttpRequest, slug: str) -> HttpResponse:
    program = _program_for(request, slug, contests=True)
    if isinstance(program, HttpResponse):
        return program
    form = ContestForm(request.POST) if request.method == "POST" else ContestForm()
    if request.method == "POST" and form.is_valid():
        try:
            contest = contest_create(program=program, actor=Actor.for_request(request), **form.contest_fields())
        except ParrainError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, _("The contest %(name)s is created.") % {"name": contest.name})
            return HttpResponseRedirect(
                reverse("staff-contest", kwargs={"slug": program.slug, "contest_id": contest.pk})
            )
    return render(
        request,
        "staff/contest_form.html",
        {"program": program, "form": form, "console_section": "programs", "tab": "contests"},
        status=400 if request.method == "POST" else 200,
    )


@require_http_methods(["GET", "HEAD", "POST"])
def staff_contest(request: HttpRequest, slug: str, contest_id: int) -> HttpResponse:
    """A contest: its standing (the live ranking and the time left, or the winners once frozen), and its
    settings while it has not ended."""
    program = _program_for(request, slug, contests=True)
    if isinstance(program, HttpResponse):
        return program
    contest = _contest_for(program, contest_id)
    status = 200
    if request.method == "POST":
        form = ContestForm(request.POST, contest=contest)
        if form.is_valid():
            try:
                contest = contest_update(contest=contest, actor=Actor.for_request(request), **form.contest_fields())
            except ParrainError as exc:
                form.add_service_error(exc)
            else:
                messages.success(request, _("The contest %(name)s is saved.") % {"name": contest.name})
                return HttpResponseRedirect(
                    reverse("staff-contest", kwargs={"slug": program.slug, "contest_id": contest.pk})
                )
        status = 400
    else:
        form = ContestForm(contest=contest)
    standing = contest_standing(contest, limit=max(RANKING_SHOWN, contest.winners_count))
    return render(
        request,
        "staff/contest.html",
        {
            "program": program,
            "contest": contest,
            "standing": standing,
            "editable": contest.frozen_at is None and contest.ends_at > standing.as_of,
            "form": form,
            "console_section": "programs",
            "tab": "contests",
        },
        status=status,
    )


urlpatterns = [
    path("staff/", staff_home, name="staff-home"),
    path("staff/programs/new", staff_program_create, name="staff-program-create"),
    path("staff/p/<slug:slug>/", staff_program, name="staff-program"),
    path("staff/p/<slug:slug>/tiers/new", staff_tier_create, name="staff-tier-create"),
    path("staff/p/<slug:slug>/tiers/preview", staff_tier_preview, name="staff-tier-preview"),
    path("staff/p/<slug:slug>/tiers/<int:tier_id>/", staff_tier, name="staff-tier"),
    path("staff/p/<slug:slug>/contests/new", staff_contest_create, name="staff-contest-create"),
    path("staff/p/<slug:slug>/contests/<int:contest_id>/", staff_contest, name="staff-contest"),
]
