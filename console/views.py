"""The ambassador's pages: joining a program, the dashboard, its QR code, and the "Share it too" loop."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote, urlencode

import segno
from allauth.account.adapter import get_adapter
from allauth.account.models import EmailAddress
from django.contrib import messages
from django.contrib.auth import login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from ambassadors.accounts import account_for_login_code
from ambassadors.models import Ambassador, Program
from ambassadors.services import ambassador_enroll, ambassador_update
from console.dashboard import dashboard_sections, programs_to_join
from console.forms import ChannelLinkForm, DisplayNameForm
from console.login_links import login_link_send, login_link_user
from console.pages import refused as _refused
from core import policies
from core.actors import Actor
from core.errors import ParrainError
from referrals.services import link_create

# The session key the hosted form sets on a thank-you page: {program id: the address just subscribed}.
SUBSCRIBED_KEY = "parrain_subscribed"
# The session key the share page reads: {program id: the ambassador it enrolled}.
SHARED_KEY = "parrain_shared"

LOGIN_BACKEND = "allauth.account.auth_backends.AuthenticationBackend"


def _ambassador_get_for_user(request: HttpRequest, slug: str) -> Ambassador:
    """The signed-in person's ambassadorship in this program; anybody else's, or none, is a 404."""
    user: Any = request.user  # signed in: the caller asked may_use_dashboard first
    ambassador = (
        Ambassador.objects.filter(program__slug=slug, user=user, is_active=True).select_related("program").first()
    )
    if ambassador is None:
        raise Http404("You are not an ambassador of this program.")
    return ambassador


# --- Joining -----------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def program_join(request: HttpRequest, slug: str) -> HttpResponse:
    """GET asks to confirm, POST makes the signed-in person an ambassador (again: the same one)."""
    if refused := _refused(request, policies.may_use_dashboard(policies.Principal.from_request(request))):
        return refused
    program = get_object_or_404(Program, slug=slug)
    if program.status == Program.Status.CLOSED:
        messages.error(request, _("%(program)s is closed: it takes no new ambassadors.") % {"program": program.name})
        return HttpResponseRedirect(reverse("dashboard"))
    if request.method == "GET":
        return render(request, "console/join.html", {"program": program})
    address = EmailAddress.objects.filter(user=request.user, verified=True).order_by("-primary", "pk").first()
    if address is None:
        messages.error(request, _("Verify your e-mail address first: your rewards are sent to it."))
        return HttpResponseRedirect(reverse("account_email"))
    try:
        ambassador_enroll(program=program, email=address.email, user=request.user)
    except ParrainError as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("program-page", args=[program.slug]))
    messages.success(request, _("You are an ambassador of %(program)s: share your link!") % {"program": program.name})
    return HttpResponseRedirect(reverse("dashboard") + f"#program-{program.slug}")


# --- The dashboard -----------------------------------------------------------------------------------


def _share_links(program_name: str, link: str, share_message: str = "") -> list[tuple[str, str]]:
    """Plain share URLs (no third-party script on the page), each with the prefilled message: the program's
    own (Program.share_message), or "Join me on <program>:" in the page's language. Every part is
    percent-encoded, so a message's quotes, markup or `&` stay inside their parameter."""
    message = share_message or _("Join me on %(program)s:") % {"program": program_name}
    text = quote(message, safe="")
    with_link = quote(f"{message} {link}", safe="")
    url = quote(link, safe="")
    return [
        (_("E-mail"), "mailto:?" + urlencode({"subject": program_name, "body": f"{message} {link}"}, quote_via=quote)),
        ("WhatsApp", f"https://wa.me/?text={with_link}"),
        ("Telegram", f"https://t.me/share/url?url={url}&text={text}"),
        ("X", f"https://twitter.com/intent/tweet?text={text}&url={url}"),
        ("LinkedIn", f"https://www.linkedin.com/sharing/share-offsite/?url={url}"),
        ("Facebook", f"https://www.facebook.com/sharer/sharer.php?u={url}"),
    ]


def _qr(link: str) -> segno.QRCode:
    return segno.make(link, error="m", micro=False)


def _render_dashboard(
    request: HttpRequest, *, bound: dict[str, dict[str, Any]] | None = None, status: int = 200
) -> HttpResponse:
    bound = bound or {}
    sections = dashboard_sections(request.user)
    rows = []
    for section in sections:
        link = request.build_absolute_uri(section.link_path)
        forms = bound.get(section.slug, {})
        rows.append(
            {
                "section": section,
                "link": link,
                "links": [(line, request.build_absolute_uri(line.path)) for line in section.links],
                "share": _share_links(section.name, link, section.share_message),
                "qr": _qr(link).svg_inline(scale=4, title=_("QR code of your link"), svgclass="qr"),
                "link_form": forms.get("link") or ChannelLinkForm(auto_id=f"id_{section.slug}_%s"),
                "name_form": forms.get("name")
                or DisplayNameForm(
                    initial={"display_name": section.display_name}, auto_id=f"id_{section.slug}_name_%s"
                ),
            }
        )
    context = {"rows": rows, "to_join": [] if sections else programs_to_join(request.user)}
    return render(request, "console/dashboard.html", context, status=status)


@require_http_methods(["GET", "HEAD"])
def dashboard(request: HttpRequest) -> HttpResponse:
    if refused := _refused(request, policies.may_use_dashboard(policies.Principal.from_request(request))):
        return refused
    return _render_dashboard(request)


@require_POST
def dashboard_link_create(request: HttpRequest, slug: str) -> HttpResponse:
    if refused := _refused(request, policies.may_use_dashboard(policies.Principal.from_request(request))):
        return refused
    ambassador = _ambassador_get_for_user(request, slug)
    form = ChannelLinkForm(request.POST, auto_id=f"id_{slug}_%s")
    if form.is_valid():
        try:
            link = link_create(ambassador=ambassador, channel=form.cleaned_data["channel"])
        except ParrainError as exc:
            form.add_error("channel" if exc.field == "channel" else None, exc.message)
        else:
            messages.success(request, _("Your link %(code)s is ready.") % {"code": link.code})
            return HttpResponseRedirect(reverse("dashboard") + f"#program-{slug}")
    return _render_dashboard(request, bound={slug: {"link": form}})


@require_POST
def dashboard_display_name(request: HttpRequest, slug: str) -> HttpResponse:
    if refused := _refused(request, policies.may_use_dashboard(policies.Principal.from_request(request))):
        return refused
    ambassador = _ambassador_get_for_user(request, slug)
    form = DisplayNameForm(request.POST, auto_id=f"id_{slug}_name_%s")
    if form.is_valid():
        try:
            ambassador_update(
                ambassador=ambassador,
                actor=Actor.for_user(request.user),
                display_name=form.cleaned_data["display_name"],
            )
        except ParrainError as exc:
            form.add_error("display_name" if exc.field == "display_name" else None, exc.message)
        else:
            messages.success(request, _("Your display name is saved."))
            return HttpResponseRedirect(reverse("dashboard") + f"#program-{slug}")
    return _render_dashboard(request, bound={slug: {"name": form}})


@require_http_methods(["GET", "HEAD"])
def dashboard_qr(request: HttpRequest, slug: str) -> HttpResponse:
    """The QR code of the ambassador's own link, as an SVG file to download."""
    if refused := _refused(request, policies.may_use_dashboard(policies.Principal.from_request(request))):
        return refused
    ambassador = _ambassador_get_for_user(request, slug)
    svg = io.BytesIO()
    # segno writes an SVG as bytes to a binary file (its hints only name text files).
    _qr(request.build_absolute_uri(f"/r/{ambassador.code}")).save(svg, kind="svg", scale=8, border=4)  # type: ignore[arg-type]
    response = HttpResponse(svg.getvalue(), content_type="image/svg+xml")
    response["Content-Disposition"] = f'attachment; filename="{slug}-{ambassador.code}-qr.svg"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_http_methods(["GET", "POST"])
def dashboard_login(request: HttpRequest, token: str) -> HttpResponse:
    """The one-time link of the "Share it too" e-mail. GET only asks to confirm: mail scanners follow
    links, and must not use it up; the POST signs in, proving the address, which claims the profile."""
    found = login_link_user(token)
    if found is None:
        return render(request, "console/login_link_invalid.html", status=400)
    if request.method == "GET":
        return render(request, "console/login_link.html")
    user, email = found
    address, _created = EmailAddress.objects.get_or_create(
        user=user, email=email, defaults={"verified": False, "primary": True}
    )
    if not address.verified:
        # allauth's own confirmation: its email_confirmed signal claims the profiles (ambassadors.accounts).
        get_adapter(request).confirm_email(request, address)
    login(request, user, backend=LOGIN_BACKEND)  # moves last_login: the link is used up
    return HttpResponseRedirect(reverse("dashboard"))


# --- "Share it too": the hosted form's thank-you page makes the friend an ambassador --------------------


@require_http_methods(["GET", "POST"])
def program_share(request: HttpRequest, slug: str) -> HttpResponse:
    """POST: enrol the address this browser has just subscribed with, and e-mail it a log-in link.

    Only that address: the hosted form put it in this session, so nobody can enrol a stranger here by
    posting an address. Whether it was an ambassador already, the answer is the same: its link.
    GET: the link of the ambassador this browser enrolled so.
    """
    program = get_object_or_404(Program, slug=slug)
    key = str(program.pk)
    if request.method == "POST":
        email = request.session.get(SUBSCRIBED_KEY, {}).get(key)
        if not email or program.status == Program.Status.CLOSED:
            return HttpResponseRedirect(reverse("program-page", args=[program.slug]))
        if key in request.session.get(SHARED_KEY, {}):
            # Pressed again: the link is there already, and the mailbox gets one e-mail, not one per press.
            return HttpResponseRedirect(reverse("program-share", args=[program.slug]))
        try:
            ambassador, _created = ambassador_enroll(program=program, email=email)
        except ParrainError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(reverse("program-page", args=[program.slug]))
        owner = account_for_login_code(ambassador.email)
        if owner is not None:
            login_link_send(request=request, user=owner, email=ambassador.email, program_name=program.name)
        request.session[SHARED_KEY] = {**request.session.get(SHARED_KEY, {}), key: ambassador.pk}
        return HttpResponseRedirect(reverse("program-share", args=[program.slug]))
    shared_id = request.session.get(SHARED_KEY, {}).get(key)
    shared = Ambassador.objects.filter(pk=shared_id, program=program, is_active=True).first() if shared_id else None
    if shared is None:
        return HttpResponseRedirect(reverse("program-page", args=[program.slug]))
    link = request.build_absolute_uri(f"/r/{shared.code}")
    return render(
        request,
        "console/share.html",
        {"program": program, "link": link, "share": _share_links(program.name, link, program.share_message)},
    )
