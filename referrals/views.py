"""Pages of the tracking core: the /r/<code> redirect and the hosted subscription form."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from ambassadors.models import Ambassador, Program
from core.actors import Actor
from core.errors import ParrainError
from core.ratelimits import rate_limit_wait
from referrals import client
from referrals.forms import SubscribeForm
from referrals.services import (
    attribution_decide,
    click_record,
    safe_redirect_target,
    signup_record,
    with_referral_params,
)


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
    # A cookieless program sets no cookie at all, not even the visitor's: the landing URL's ref and
    # click_id are all that carries the referral.
    if not click.is_bot and target.attribution_cookie:
        if new_visitor:
            client.set_visitor_cookie(response, visitor)
        # First click wins: a browser already carrying a live referral keeps it. A flood click credits
        # nobody, so it never replaces the referral the browser may already carry.
        if not click.flood and not (
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
    if request.method == "POST":
        wait = rate_limit_wait(
            request, group="parrain.subscribe", key=_client_ip_key, rate=settings.RATE_LIMIT_SUBSCRIBE
        )
        if wait is not None:
            response = render(request, "429.html", {"program": program, "retry_after": wait}, status=429)
            response["Retry-After"] = str(wait)
            return response
    visitor, new_visitor = client.visitor_id(request)
    if not program.attribution_cookie:
        # Cookieless: no visitor cookie is set, and none the browser carries is read (nor a referral one,
        # below): the referral comes from the URL's ref and click_id, or the code typed in the form.
        visitor, new_visitor = "", False
    form = SubscribeForm(request.POST) if request.method == "POST" else None
    if form is not None and form.is_valid():
        referral_code = form.cleaned_data["referral_code"] or None
        try:
            if referral_code:
                # signup_record answers a known e-mail before it looks at the code; checking the code
                # first refuses a bad one alike for a known and a new address (no enumeration).
                attribution_decide(
                    program=program,
                    referral_code=referral_code,
                    cookie_click_id=None,
                    click_id=None,
                    now=timezone.now(),
                )
            signup_record(
                program=program,
                email=form.cleaned_data["email"],
                actor=Actor.visitor(),
                referral_code=referral_code,
                click_id=form.cleaned_data["click_id"] or None,
                cookie_click_id=_cookie_click_id(request, program),
                referee_ip=client.client_ip(request),
                visitor_id=visitor,
                referee_user=request.user if request.user.is_authenticated else None,
                wants_price_news=form.cleaned_data["wants_price_news"],
            )
        except ParrainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            # The same page whatever became of the address, new or subscribed long ago, counted or held
            # for review: anyone may post any address here, so the answer must not tell which it was.
            # Only the program goes to the template; the signup's state is for staff and the API.
            # "Share it too" on that page enrols this address, and only it: it stays in this browser's session.
            # Set alike for a new and a known address, so the answer still does not tell them apart.
            subscribed = request.session.get("parrain_subscribed", {})
            request.session["parrain_subscribed"] = {**subscribed, str(program.pk): form.cleaned_data["email"]}
            response = render(request, "referrals/subscribed.html", {"program": program})
            if new_visitor:
                client.set_visitor_cookie(response, visitor)
            return response
    referrer, code_to_prefill = _referrer(request, program)
    if form is None:
        form = SubscribeForm(
            initial={"referral_code": code_to_prefill, "click_id": request.GET.get("click_id", "")[:64]}
        )
    response = render(
        request,
        "referrals/subscribe.html",
        {"program": program, "form": form, "referrer": referrer.public_name if referrer else None},
        status=400 if request.method == "POST" else 200,
    )
    if new_visitor:
        client.set_visitor_cookie(response, visitor)
    return response


def _cookie_click_id(request: HttpRequest, program: Program) -> str | None:
    """The click the program's referral cookie holds; never one for a cookieless program (an old cookie,
    set before the program went cookieless, credits nobody)."""
    if not program.attribution_cookie:
        return None
    return client.referral_click_id(request, program.pk, program.attribution_window_days)


def _client_ip_key(group: str, request: HttpRequest) -> str:
    """Whom the form's rate limit counts: the client's IP, as the velocity rules see it."""
    return client.client_ip(request) or ""


def _referrer(request: HttpRequest, program: Program) -> tuple[Ambassador | None, str]:
    """Who invited this visitor, to name them on the form, and the referral code to prefill in it.

    A `ref` in the URL (the program page passes on the one its referral link added) naming an active
    ambassador goes into the code field as if the visitor had typed it: a code comes first in attribution
    (design 2.2), so it credits them. When the visitor's own click, from the cookie or the click_id passed
    along, names that same ambassador, the field stays empty: the click credits them just as well and
    keeps the channel link the visit came through. Both are asked of the rule the signup will apply.
    """
    now = timezone.now()
    by_click = attribution_decide(
        program=program,
        referral_code=None,
        cookie_click_id=_cookie_click_id(request, program),
        click_id=request.GET.get("click_id", "")[:64] or None,
        now=now,
    ).ambassador
    ref = request.GET.get("ref", "")[:64]
    if ref:
        try:
            by_code = attribution_decide(
                program=program, referral_code=ref, cookie_click_id=None, click_id=None, now=now
            ).ambassador
        except ParrainError:  # a stale or mistyped ref: the visitor subscribes without it
            by_code = None
        if by_code is not None and by_code != by_click:
            return by_code, by_code.code
    return by_click, ""
