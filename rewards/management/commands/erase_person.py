"""`manage.py erase_person <email> --reason ...`: erase (pseudonymise) a person, as the audit console does.

One transaction: interrupted, it leaves the person as they were; run again, it finishes, and once done a
second run changes nothing (idempotent).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core.actors import Actor
from core.errors import ParrainError
from core.progress import progress
from rewards.services import person_erase, person_find


class Command(BaseCommand):
    help = "Erase the person with this e-mail address: pseudonyms replace what identifies them; counts stay."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("email")
        parser.add_argument("--reason", required=True, help="The request this answers (kept in the audit trail)")

    def handle(self, *args: Any, email: str, reason: str, **options: Any) -> None:
        if not reason.strip():
            raise CommandError("--reason must say which request this answers.")
        try:
            person = person_find(email=email)
            if not person.found:
                self.stdout.write("Nothing is held under this address: nothing to erase.")
                return
            with progress("erase person", total=1, stdout=self.stdout) as bar:
                result = person_erase(person=person, actor=Actor.system("manage.py erase_person"), reason=reason)
                bar.details.update(result.counts)
                bar.advance()
        except ParrainError as exc:
            raise CommandError(exc.message) from exc
        if result.already_erased:
            self.stdout.write(f"Erased already: {result.pseudonym}.")
        else:
            self.stdout.write(f"Erased: the person is now {result.pseudonym}.")
