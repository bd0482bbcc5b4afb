"""`manage.py export_person <email> [--reason ...] [--output FILE]`: everything held about a person, as JSON.

Prints to standard output unless --output names a file. The export is audited (who, which ids, why),
never its content.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from core.actors import Actor
from core.errors import ParrainError
from rewards.services import person_export, person_find


class Command(BaseCommand):
    help = "Export everything Parrain holds about the person with this e-mail address, as JSON."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("email")
        parser.add_argument("--reason", default="", help="The request this answers (kept in the audit trail)")
        parser.add_argument("--output", help="Write the JSON to this file instead of standard output")

    def handle(self, *args: Any, email: str, reason: str, output: str | None, **options: Any) -> None:
        try:
            person = person_find(email=email)
            data = person_export(person=person, actor=Actor.system("manage.py export_person"), reason=reason)
        except ParrainError as exc:
            raise CommandError(exc.message) from exc
        text = json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
        if output:
            Path(output).write_text(text + "\n", encoding="utf-8")
            self.stderr.write(f"Written to {output}.")
        else:
            self.stdout.write(text)
