"""Public pages: the programs, and each program's page with its live price and progress."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from ambassadors.models import Program
from ambassadors.selectors import programs_listed
from rewards.selectors import leaderboard, program_price


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "rewards/home.html", {"programs": programs_listed()})


def program_page(request: HttpRequest, slug: str) -> HttpResponse:
    program = Program.objects.filter(slug=slug).exclude(status=Program.Status.CLOSED).first()
    if program is None:
        raise Http404("No such program.")
    price = program_price(program)
    remaining = None
    progress_percent = 0
    if price["next_drop_at"] is not None and price["step"]:
        remaining = price["next_drop_at"] - price["subscribers"]
        done = price["step"] - remaining
        progress_percent = max(0, min(100, round(100 * done / price["step"])))
    # A visitor who landed here from a referral link (`?ref=CODE&click_id=ID`, design 2.1) carries both on
    # to the hosted form, which credits them: without this the Subscribe button would lose the referral.
    referral = {name: request.GET.get(name, "")[:64] for name in ("ref", "click_id")}
    query = urlencode({name: value for name, value in referral.items() if value})
    subscribe_url = reverse("program-subscribe", args=[program.slug]) + (f"?{query}" if query else "")
    return render(
        request,
        "rewards/program.html",
        {
            "program": program,
            "price": price,
            "remaining": remaining,
            "progress_percent": progress_percent,
            "progress_class": f"w{progress_percent // 5 * 5}",
            "leaders": leaderboard(program, limit=10) if program.leaderboard_public else [],
            "subscribe_url": subscribe_url,
        },
    )
