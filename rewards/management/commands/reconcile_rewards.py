"""`manage.py reconcile_rewards [--program SLUG]`: recount from the source rows, repair, grant what is missing."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ambassadors.models import Program
from rewards.services import reconcile


class Command(BaseCommand):
    help = "Recompute every counter from the source rows, repair drift and grant what is missing."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--program", help="Only this program's slug")

    def handle(self, *args: Any, program: str | None, **options: Any) -> None:
        target = None
        if program:
            target = Program.objects.filter(slug=program).first()
            if target is None:
                raise CommandError(f"No program with slug {program!r}.")
        started = time.monotonic()
        report = reconcile(program=target)
        elapsed = time.monotonic() - started
        parts = ", ".join(f"{k}={v}" for k, v in report.as_dict().items())
        self.stdout.write(f"reconciled in {elapsed:.2f}s: {parts}")
