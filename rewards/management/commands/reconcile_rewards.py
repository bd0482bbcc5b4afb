"""`manage.py reconcile_rewards [--program SLUG]`: recount from the source rows, repair, grant what is missing.

One program at a time, each ambassador's recalculation in its own transaction: stopped with Ctrl-C, it
finishes the ambassador it is on; run again, it finds only what is still missing.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ambassadors.models import Program
from core.progress import progress
from rewards.services import ReconcileReport, reconcile


class Command(BaseCommand):
    help = "Recompute every counter from the source rows, repair drift and grant what is missing."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--program", help="Only this program's slug")

    def handle(self, *args: Any, program: str | None, **options: Any) -> None:
        programs = Program.objects.order_by("pk")
        if program:
            programs = programs.filter(slug=program)
            if not programs.exists():
                raise CommandError(f"No program with slug {program!r}.")
        targets = list(programs)
        total = ReconcileReport()
        with progress("reconcile rewards", total=len(targets), stdout=self.stdout) as bar:
            bar.details.update(total.as_dict())
            for target in targets:
                # advance(0) after each ambassador: a stop asked for lands between two recalculations.
                report = reconcile(program=target, on_progress=lambda: bar.advance(0))
                for field in fields(ReconcileReport):
                    setattr(total, field.name, getattr(total, field.name) + getattr(report, field.name))
                bar.details.update(total.as_dict())
                bar.advance()
