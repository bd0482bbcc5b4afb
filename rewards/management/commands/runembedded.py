"""`manage.py runembedded [addrport]`: the development server plus the periodic work, for `make run`.

The embedded default runs Celery tasks eagerly, in the web process; this command also runs the periodic
tasks of CELERY_BEAT_SCHEDULE (hold periods, reconciliation) in a thread, at the intervals beat would
(config.embedded). Everything else is `runserver`, whose options it takes. Production runs a Celery
worker and beat instead, and never this command.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import CommandError, get_commands, load_command_class

from config.embedded import EmbeddedBeat

# The runserver in effect (whitenoise's, which leaves static files to WhiteNoise as in production),
# whichever app provides it.
Runserver = type(load_command_class(get_commands()["runserver"], "runserver"))


class Command(Runserver):  # type: ignore[misc,valid-type]
    help = "Run the development server and, in a thread, the periodic tasks of CELERY_BEAT_SCHEDULE (make run)."

    def inner_run(self, *args: Any, **options: Any) -> None:
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            # Without a worker, a task sent to the broker would never run: the embedded default is eager.
            raise CommandError("runembedded runs tasks in process: set CELERY_TASK_ALWAYS_EAGER=true")
        beat = EmbeddedBeat(settings.CELERY_BEAT_SCHEDULE)
        self.stdout.write(f"Periodic tasks in this process: {beat.describe()} (first run in a few seconds)")
        beat.start()
        try:
            super().inner_run(*args, **options)
        finally:
            beat.stop(timeout=5)
