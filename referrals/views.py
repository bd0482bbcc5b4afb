"""Pages of the tracking core: the /r/<code> redirect and the hosted subscription form."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from ambassadors.models import Program
from config.errors import ParrainError
from referrals import client
from referrals.audit import Actor
from referrals.forms import SubscribeForm
from referrals.models import Click
from referrals.services import click_record, safe_redirect_target, signup_record, with_referral_params


@require_http_methods(["GET", "HEAD"])
def referral_redirect(request: HttpRequest, code: str) -> HttpResponse:
    """Design 2.1: record the click, 302 to the destination with ref and click_id, set the cookie."""
    response = referral_redirect_response(request, code)
    return response if response is not None else _not_found(request)


def referral_redirect_response(request: HttpRequest, code: str) -> HttpResponse | None:
    """The 302 of a live link, or None when the link does not lead anywhere (the caller shows the 404 page).

    It needs no middleware, session or user: config.wsgi calls it directly for the hot path.
    """
    visitor, new_visitor = client.visitor_id(request)
    recorded = click_record(
        code=code,
        ip=client.client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        referer=request.META.get("HTTP_REFERER", ""),
        visitor_id=visitor,
        is_head=request.method == "HEAD",
    )
    if recorded is None:
        return None
    target, click = recorded
    to = request.GET.get("to") if request.META.get("QUERY_STRING") else None
    destination = (
        safe_redirect_target(to, destination_url=target.destination_url, allowed_hosts=target.allowed_redirect_hosts)
        or target.destination_url
    )
    if not destination:
        destination = request.build_absolute_uri(reverse("program-page", args=[target.program_slug]))
    response = HttpResponseRedirect(with_referral_params(destination, code=target.code, click_id=str(click.id)))
    if not click.is_bot:
        if new_visitor:
            client.set_visitor_cookie(response, visitor)
        # First click wins: a browser already carrying a live referral keeps it.
        if not (
            target.first_click and client.referral_click_id(request, target.program_id, target.attribution_window_days)
        ):
            client.set_referral_cookie(response, target.program_id, str(click.id), target.attribution_window_days)
    response["Cache-Control"] = "no-store"
    return response


def _not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "referrals/link_not_found.html", status=404)


@require_http_methods(["GET", "POST"])
def subscribe(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_object_or_404(Program, slug=slug)
    if program.status == Program.Status.CLOSED:
        raise Http404("This program is closed.")
    visitor, new_visitor = client.visitor_id(request)
    if request.method == "POST":
        form = SubscribeForm(request.POST)
        if form.is_valid():
            try:
                signup, created = signup_record(
                    program=program,
                    email=form.cleaned_data["email"],
                    actor=Actor.visitor(),
                    referral_code=form.cleaned_data["referral_code"] or None,
                    click_id=form.cleaned_data["click_id"] or None,
                    cookie_click_id=client.referral_click_id(request, program.pk, program.attribution_window_days),
                    referee_ip=client.client_ip(request),
                    visitor_id=visitor,
                    referee_user=request.user if request.user.is_authenticated else None,
                )
            except ParrainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                response = render(
                    request,
                    "referrals/subscribed.html",
                    {"program": program, "signup": signup, "created": created},
                )
                if new_visitor:
                    client.set_visitor_cookie(response, visitor)
                return response
    else:
        form = SubscribeForm(initial={"click_id": request.GET.get("click_id", "")[:64]})
    referrer = _referrer(request, program)
    response = render(
        request,
        "referrals/subscribe.html",
        {"program": program, "form": form, "referrer": referrer},
        status=400 if request.method == "POST" else 200,
    )
    if new_visitor:
        client.set_visitor_cookie(response, visitor)
    return response


def _referrer(request: HttpRequest, program: Program) -> str | None:
    """Name of the friend who invited this visitor, to show on the form."""
    click_id = client.referral_click_id(request, program.pk, program.attribution_window_days) or request.GET.get(
        "click_id"
    )
    if not click_id:
        return None
    try:
        click = Click.objects.select_related("ambassador").filter(pk=click_id, program=program).first()
    except Exception:  # a malformed id is no referral
        return None
    return click.ambassador.public_name if click else None
