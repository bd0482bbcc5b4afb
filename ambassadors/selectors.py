"""Reads about programs and ambassadors shared by pages, API and admin."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from ambassadors.models import Ambassador, Program
from core.errors import NotFound


def program_by_slug(slug: str) -> Program:
    program = Program.objects.filter(slug=slug).first()
    if program is None:
        raise NotFound("No program with this slug.")
    return program


def programs_listed() -> QuerySet[Program]:
    """Programs the public home page shows: open and paused ones."""
    return Program.objects.exclude(status=Program.Status.CLOSED).order_by("name")


def ambassadorships_of(user: Any) -> QuerySet[Ambassador]:
    return Ambassador.objects.filter(user=user, is_active=True).select_related("program", "counters")
