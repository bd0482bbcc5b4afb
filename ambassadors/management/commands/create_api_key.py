"""`manage.py create_api_key <program-slug> --scopes track,read,manage`: prints a new key once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ambassadors.models import Program
from ambassadors.services import api_key_create
from core import policies
from core.actors import Actor
from core.errors import ParrainError


class Command(BaseCommand):
    help = "Create an API key for a program. The key is printed once, alone on the last line; only its hash is kept."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("slug")
        parser.add_argument("--scopes", default="track", help="Comma-separated: track, read, manage")
        parser.add_argument("--name", default="")

    def handle(self, *args: Any, slug: str, scopes: str, name: str, **options: Any) -> None:
        program = Program.objects.filter(slug=slug).first()
        if program is None:
            raise CommandError(f"No program with slug {slug!r}.")
        # Whoever runs manage.py is the operator; the policy says who else may hand out keys (a superuser).
        decision = policies.may_manage_api_keys(policies.Principal.operator(), program)
        if not decision:
            raise CommandError(decision.reason)
        try:
            key, raw = api_key_create(
                program=program,
                scopes=[s.strip() for s in scopes.split(",") if s.strip()],
                name=name,
                actor=Actor.system("manage.py create_api_key"),
            )
        except ParrainError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(f"Key {key.prefix}… for {program.slug} with scopes {', '.join(key.scopes)}. Store it now:")
        self.stdout.write(raw)
