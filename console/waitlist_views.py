"""`/p/<slug>/waitlist/<token>`: a subscriber's place in a program's waitlist, from the link of their
"your place in line" e-mail. The signed token is the only permission, and shows only that place."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from ambassadors.models import Ambassador, Program
from commerce.models import WaitlistAdmission
from commerce.waitlist import waitlist_position, waitlist_settings_of, waitlist_status_signup


@require_safe
@never_cache
def waitlist_status(request: HttpRequest, slug: str, waitlist_token: str) -> HttpResponse:
    program = Program.objects.filter(slug=slug).first()
    if program is None:
        raise Http404("No such program.")
    signup = waitlist_status_signup(token=waitlist_token, program=program)
    if signup is None:
        return render(request, "embed/waitlist_invalid.html", {"program": program}, status=404)
    config = waitlist_settings_of(program)
    line = waitlist_position(signup, places=config.places_per_referral) if config.enabled else None
    admission = WaitlistAdmission.objects.filter(signup=signup).first()
    ambassador = Ambassador.objects.filter(
        program=program, email_canonical=signup.email_canonical, is_active=True
    ).first()
    response = render(
        request,
        "embed/waitlist_status.html",
        {
            "program": program,
            "line": line,
            "enabled": config.enabled,
            "admission": admission,
            "places": config.places_per_referral,
            "link": request.build_absolute_uri(f"/r/{ambassador.code}") if ambassador else None,
        },
    )
    response["Referrer-Policy"] = "no-referrer"  # the URL is the subscriber's key
    return response
