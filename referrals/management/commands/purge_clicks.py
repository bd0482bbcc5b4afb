"""`manage.py purge_clicks`: roll up and delete the clicks older than each program's retention (beat does it
daily). Counts and analytics keep them (referrals/services/retention.py).

One day at a time, each rolled up and marked before its clicks are deleted in batches: stopped with Ctrl-C,
it finishes the day it is in; run again, it goes on where it stopped. `--dry-run` only says what is due.
"""

from typing import Any

from django.core.management.base import BaseCommand

from core import clock
from core.actors import Actor
from core.progress import progress
from referrals.management.commands._programs import programs_to_run
from referrals.services.retention import clicks_purge, days_to_purge, retention_cutoff


class Command(BaseCommand):
    help = "Roll up and delete clicks older than each program's retention (counts and analytics keep them)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--program", help="Only this program (its slug)")
        parser.add_argument("--dry-run", action="store_true", help="Say which days are due, change nothing")

    def handle(self, *args: Any, program: str | None, dry_run: bool, **options: Any) -> None:
        programs = programs_to_run(program)
        now = clock.now()
        due = {p.slug: days_to_purge(p, now=now) for p in programs}
        if dry_run:
            for p in programs:
                days = due[p.slug]
                span = f"{days[0]} to {days[-1]}" if days else "nothing"
                self.stdout.write(
                    f"{p.slug}: keeps {p.click_retention_months} months (from {retention_cutoff(p, now=now)}); "
                    f"due: {len(days)} days ({span})"
                )
            return
        with progress("purge clicks past retention", total=sum(map(len, due.values())), stdout=self.stdout) as bar:

            def step() -> bool:
                bar.advance(1)
                return True

            run = clicks_purge(programs=programs, now=now, actor=Actor.system("manage.py purge_clicks"), on_day=step)
            bar.details.update(deleted=run.deleted, kept_as_attribution=run.kept)
