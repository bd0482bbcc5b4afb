"""A program's public face: its page (`/p/<slug>/`), the widget a business frames on its own site, and
`parrain.js`, the script that carries a referral from the business's landing page to its signup form.

The page reads across apps (prices, tiers, leaders, the visitor's ambassadorship), so it lives in the
console, on the read models of `console.program`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import http_date
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import condition, require_safe

from ambassadors.models import Program
from console.contests import program_contests
from console.program import program_page_data, program_progress, widget_frame_ancestors
from core import policies

# The script businesses include on their own site, at a stable, unhashed URL (`/parrain.js`): read once.
PARRAIN_JS = Path(__file__).resolve().parent / "static" / "parrain" / "parrain.js"
_SCRIPT = PARRAIN_JS.read_bytes()
_SCRIPT_ETAG = f'"{hashlib.sha256(_SCRIPT).hexdigest()[:16]}"'
_SCRIPT_MTIME = PARRAIN_JS.stat().st_mtime
# An hour: a fixed script reaches the businesses' visitors within the hour, and revalidates cheaply (ETag).
SCRIPT_MAX_AGE = 3600


def _program_shown(slug: str) -> Program:
    """An open or paused program; an unknown or closed one is a 404."""
    program = Program.objects.filter(slug=slug).exclude(status=Program.Status.CLOSED).first()
    if program is None:
        raise Http404("No such program.")
    return program


@require_safe
def program_page(request: HttpRequest, slug: str) -> HttpResponse:
    """What ambassadors get, the live price (at most 5 s old), the leaderboard when public, the contests,
    and the ways to join and to subscribe."""
    program = _program_shown(slug)
    page = program_page_data(
        program,
        user=request.user,
        show_leaders=bool(policies.may_read_leaderboard(policies.Principal.from_request(request), program)),
    )
    # A visitor who landed here from a referral link (`?ref=CODE&click_id=ID`, design 2.1) carries both on
    # to the hosted form, which credits them: without this the Subscribe button would lose the referral.
    referral = {name: request.GET.get(name, "")[:64] for name in ("ref", "click_id")}
    query = urlencode({name: value for name, value in referral.items() if value})
    subscribe_url = reverse("program-subscribe", args=[program.slug]) + (f"?{query}" if query else "")
    join_url = reverse("program-join", args=[program.slug])
    return render(
        request,
        "console/program.html",
        {
            "page": page,
            # Running contests, and those just ended with their winners: read live (the time left moves).
            "contests": program_contests(program),
            "subscribe_url": subscribe_url,
            "join_url": join_url,
            # Anonymous visitors log in (or sign up) first, then land on the join confirmation.
            "login_url": f"{reverse('account_login')}?{urlencode({'next': join_url})}",
            "dashboard_url": reverse("dashboard"),
        },
    )


@require_safe
@xframe_options_exempt  # the rest of the site says DENY; this page is framed, where the CSP allows it
def program_widget(request: HttpRequest, slug: str) -> HttpResponse:
    """The live price and its progress, for an iframe on the program's declared hosts only."""
    program = _program_shown(slug)
    response = render(
        request,
        "console/widget.html",
        {"program": program, "progress": program_progress(program)},
    )
    # What `@csp_replace({"frame-ancestors": [...]})` sets, with this program's hosts: the decorator
    # takes a fixed dict, and the hosts differ per program. Only frame-ancestors changes.
    response._csp_replace = {"frame-ancestors": widget_frame_ancestors(program, debug=settings.DEBUG)}  # type: ignore[attr-defined]
    return response


@require_safe
@condition(etag_func=lambda request: _SCRIPT_ETAG)
def parrain_js(request: HttpRequest) -> HttpResponse:
    """`parrain.js`, at a URL that never changes, for a `<script src>` on the business's own pages.

    A script tag needs no CORS; `Cross-Origin-Resource-Policy: cross-origin` lets sites that require
    CORP (COEP) load it too.
    """
    response = HttpResponse(_SCRIPT, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = f"public, max-age={SCRIPT_MAX_AGE}"
    response["Last-Modified"] = http_date(_SCRIPT_MTIME)
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
