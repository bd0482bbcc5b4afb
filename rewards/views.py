"""Public pages: the programs. Each program's page is console.program_views.program_page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from ambassadors.selectors import programs_listed


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "rewards/home.html", {"programs": programs_listed()})
