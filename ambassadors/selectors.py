"""Reads about programs and ambassadors shared by pages, API and admin."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from ambassadors.models import Ambassador, Program
from ambassadors.normalise import code_key, is_well_formed_code
from config.errors import NotFound


def program_by_slug(slug: str) -> Program:
    program = Program.objects.filter(slug=slug).first()
    if program is None:
        raise NotFound("No program with this slug.")
    return program


def ambassador_by_code(program: Program, raw_code: str) -> Ambassador:
    if not is_well_formed_code(raw_code):
        raise NotFound("No ambassador with this code in this program.")
    ambassador = (
        Ambassador.objects.select_related("program", "counters")
        .filter(program=program, code_key=code_key(raw_code))
        .first()
    )
    if ambassador is None:
        raise NotFound("No ambassador with this code in this program.")
    return ambassador


def programs_listed() -> QuerySet[Program]:
    """Programs the public home page shows: open and paused ones."""
    return Program.objects.exclude(status=Program.Status.CLOSED).order_by("name")


def ambassadorships_of(user: Any) -> QuerySet[Ambassador]:
    return Ambassador.objects.filter(user=user, is_active=True).select_related("program", "counters")
