"""`manage.py rollup_analytics`: roll up the days that are over for the staff analytics (beat does it too).

One transaction per program and day (then per week, once a week's seven days are sealed): stopped with
Ctrl-C, it finishes the day it is in; run again, it rolls up only what is left. `--verify` also recounts
every sealed day from the source rows and every sealed week from its days, and repairs a day or a week that
differs (there should be none: it says how many it found).
"""

from typing import Any

from django.core.management.base import BaseCommand

from core import clock
from core.progress import progress
from referrals.management.commands._programs import programs_to_run
from referrals.services.rollups import due_days, rollup_due, rollup_verify


class Command(BaseCommand):
    help = "Roll up the clicks and signups of past days and weeks for the staff analytics; --verify recounts them."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--program", help="Only this program (its slug)")
        parser.add_argument("--verify", action="store_true", help="Recount sealed days and repair any difference")

    def handle(self, *args: Any, program: str | None, verify: bool, **options: Any) -> None:
        programs = programs_to_run(program)
        now = clock.now()
        total = sum(len(due_days(p, now=now)) for p in programs)
        with progress("roll up analytics days", total=total, stdout=self.stdout) as bar:

            def step() -> bool:
                bar.advance(1)
                return True

            run = rollup_due(programs=programs, now=now, on_day=step)
            bar.details["rolled_up"] = run.days
            bar.details["weeks"] = run.weeks
            if verify:
                repaired = [day for p in programs for day in rollup_verify(program=p, now=now)]
                bar.details["repaired"] = len(repaired)
