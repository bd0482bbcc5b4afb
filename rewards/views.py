"""Public pages: the programs, and each program's page with its live price and progress."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

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
            "ref": request.GET.get("ref", "")[:64],
            "click_id": request.GET.get("click_id", "")[:64],
        },
    )
