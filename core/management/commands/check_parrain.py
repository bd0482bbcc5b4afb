"""`manage.py check_parrain`: the state an operator should look at, and a non-zero exit when something is wrong.

It checks what /health/ reports (config/health.py), but strictly: the database, the broker (unless tasks run
eagerly), a beat that stopped ticking, a queue growing past HEALTH_QUEUE_MAX, drift the last
reconciliation had to repair, and a PostgreSQL that answers commits before they reach its disk. For cron, a
container health check or a monitoring agent.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config import health


class Command(BaseCommand):
    help = (
        "Check the database, the broker, beat, the queues, reconciliation drift and the database's durability; "
        "exit 1 on any problem."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        problems: dict[str, str] = {}
        skipped: dict[str, str] = {}
        db_ok, db_state = health.database_ok()
        if not db_ok:
            problems["database"] = f"does not answer ({db_state})"
        if settings.CELERY_TASK_ALWAYS_EAGER:
            skipped.update(dict.fromkeys(("broker", "beat", "queue"), "tasks run eagerly"))
        elif (broker := health.broker_state()) != "ok":
            problems["broker"] = broker
        if db_ok:
            problems.update(health.operational_warnings())
        else:
            skipped.update(dict.fromkeys(("beat", "queue", "drift", "durability"), "the database does not answer"))
        for name in ("database", "broker", "beat", "queue", "drift", "durability"):
            if name in problems:
                self.stdout.write(f"PROBLEM {name}: {problems[name]}")
            elif name in skipped:
                self.stdout.write(f"skipped {name}: {skipped[name]}")
            else:
                self.stdout.write(f"ok {name}")
        if problems:
            raise CommandError(f"{len(problems)} problem(s): {', '.join(problems)}")
