"""`manage.py fill_signup_links`: after an upgrade across migration referrals 0015, give the signups recorded
meanwhile by the previous release the channel link of the click that credited them (README "Upgrades").

One UTC day of one program at a time, each in its own statement: stopped with Ctrl-C, it finishes the day it
is in; run again, it finds the days already done with nothing left to fill.
"""

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core import clock
from core.progress import progress
from referrals.management.commands._programs import programs_to_run
from referrals.services.links import signup_links_fill
from referrals.services.rollups import utc_day


class Command(BaseCommand):
    help = "Give the signups recorded during an upgrade the channel link of their click (dashboard counts per link)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--program", help="Only this program (its slug)")
        parser.add_argument(
            "--since",
            help="The first UTC day to look at, YYYY-MM-DD (default: 7 days ago; the upgrade's day is enough)",
        )

    def handle(self, *args: Any, program: str | None, since: str | None, **options: Any) -> None:
        programs = programs_to_run(program)
        today = utc_day(clock.now())
        try:
            first = date.fromisoformat(since) if since else today - timedelta(days=7)
        except ValueError:
            raise CommandError(f"--since {since!r} is not a day written YYYY-MM-DD.") from None
        if first > today:
            raise CommandError(f"--since {first} is after today ({today}, UTC).")
        days = [first + timedelta(days=n) for n in range((today - first).days + 1)]
        filled = 0
        with progress("fill signup links", total=len(days) * len(programs), stdout=self.stdout) as bar:
            for each in programs:
                for day in days:
                    filled += signup_links_fill(program_id=each.pk, day=day, window_days=each.attribution_window_days)
                    bar.details["filled"] = filled
                    bar.advance(1)  # where a Ctrl-C stops the run, the day done
