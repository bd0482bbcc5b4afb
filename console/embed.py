"""`/embed/dashboard?token=...`: one ambassador's dashboard inside the business's own product, in an iframe
on the program's declared hosts only (the widget's rule, console.program.widget_frame_ancestors).

The token (commerce.embed) is the only permission: it is spent on this one rendering, and grants nothing
else: no session, no log-in, no form; the page needs no follow-up request. An expired, reused, altered or
other program's token gets a page that says so (403 or 410), framed like the dashboard would have been.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET

from ambassadors.models import Program
from commerce.embed import EmbedRefused, Refusal, embed_token_use
from commerce.waitlist import waitlist_position_of_ambassador, waitlist_settings_of
from console.dashboard import dashboard_sections
from console.program import widget_frame_ancestors
from console.views import _share_links

# What each refusal answers: 403 for a token that never was this page's, 410 for one that was and is gone.
REFUSAL_STATUS = {
    Refusal.TAMPERED: 403,
    Refusal.OTHER_PROGRAM: 403,
    Refusal.EXPIRED: 410,
    Refusal.USED: 410,
    Refusal.GONE: 410,
}


def _framed(response: HttpResponse, program: Program | None) -> HttpResponse:
    """Framed by the program's declared hosts only (nowhere without a program); never cached or referred:
    the URL carries the token."""
    ancestors = widget_frame_ancestors(program, debug=settings.DEBUG) if program is not None else ["'none'"]
    response._csp_replace = {"frame-ancestors": ancestors}  # type: ignore[attr-defined]
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET  # not HEAD: a link checker's HEAD must not spend the token
@never_cache
@xframe_options_exempt  # the rest of the site says DENY; this page is framed, where the CSP allows it
def embed_dashboard(request: HttpRequest) -> HttpResponse:
    slug = request.GET.get("program") or None
    try:
        row = embed_token_use(token=request.GET.get("token", "")[:1000], program_slug=slug)
    except EmbedRefused as exc:
        named = Program.objects.filter(slug=slug).first() if slug else None
        response = render(
            request,
            "embed/refused.html",
            {"refusal": exc.refusal.value},
            status=REFUSAL_STATUS[exc.refusal],
        )
        return _framed(response, named)
    ambassador, program = row.ambassador, row.program
    section = next(s for s in dashboard_sections(ambassador.user) if s.slug == program.slug)
    link = request.build_absolute_uri(section.link_path)
    response = render(
        request,
        "embed/dashboard.html",
        {
            "section": section,
            "link": link,
            "share": _share_links(section.name, link, section.share_message),
            "waitlist": waitlist_position_of_ambassador(ambassador),
            "places_per_referral": waitlist_settings_of(program).places_per_referral,
        },
    )
    return _framed(response, program)
