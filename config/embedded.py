"""The embedded default's periodic work: what Celery beat does in production, done by a thread.

`make run` serves Parrain from one process, with SQLite and no Redis: Celery tasks run eagerly, in the
process that sends them. Nothing there would run the periodic tasks of `CELERY_BEAT_SCHEDULE` (approving
conversions whose hold period has passed, reconciling reward counters), so a conversion would stay
pending forever. `EmbeddedBeat` runs those same tasks at the same intervals, eagerly, in the web process.

Production never uses it: there a Celery worker runs the tasks and `celery -A config beat` schedules them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)

# Seconds from start to the first run: the server answers first, then a backlog left while it was
# stopped (conversions that came due, a reconciliation missed) is worked off.
FIRST_RUN_DELAY = 5.0


@dataclass
class PeriodicTask:
    name: str
    task: Any  # a registered Celery task
    interval: float  # seconds
    next_run: float
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def _interval(name: str, schedule: Any) -> float:
    """Seconds between runs of a beat entry; only fixed intervals, which is all Parrain's schedule uses."""
    if isinstance(schedule, int | float) and not isinstance(schedule, bool):
        seconds = float(schedule)
    elif isinstance(schedule, timedelta):
        seconds = schedule.total_seconds()
    elif isinstance(getattr(schedule, "run_every", None), timedelta):  # celery.schedules.schedule
        seconds = schedule.run_every.total_seconds()
    else:
        raise ImproperlyConfigured(
            f"CELERY_BEAT_SCHEDULE[{name!r}]: the embedded scheduler runs fixed intervals (seconds, a timedelta "
            f"or celery.schedules.schedule), not {schedule!r}"
        )
    if seconds <= 0:
        raise ImproperlyConfigured(f"CELERY_BEAT_SCHEDULE[{name!r}]: the interval must be positive")
    return seconds


class EmbeddedBeat:
    """Runs the entries of a beat schedule at their intervals, each task eagerly and guarded.

    `run_due()` does one round and can be called directly (tests do, with their own clock); `start()`
    runs rounds in a daemon thread until `stop()`. A task that raises is logged and runs again at its
    next time: one failing task never stops the others or the loop.
    """

    def __init__(
        self,
        schedule: Mapping[str, Mapping[str, Any]],
        *,
        first_run_delay: float = FIRST_RUN_DELAY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from config.celery import app

        # As a worker does at start, import every installed app's tasks module so each task is known by name
        # (without the worker's Django set-up again, which would reconfigure logging in a live process).
        app.autodiscover_tasks(force=True)
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        first = clock() + first_run_delay
        self.tasks: list[PeriodicTask] = []
        for name, entry in schedule.items():
            task_name = entry["task"]
            if task_name not in app.tasks:
                raise ImproperlyConfigured(f"CELERY_BEAT_SCHEDULE[{name!r}] names {task_name!r}, which no app defines")
            self.tasks.append(
                PeriodicTask(
                    name=name,
                    task=app.tasks[task_name],
                    interval=_interval(name, entry["schedule"]),
                    next_run=first,
                    args=tuple(entry.get("args", ())),
                    kwargs=dict(entry.get("kwargs", {})),
                )
            )

    def describe(self) -> str:
        return ", ".join(f"{p.name} every {p.interval:g} s" for p in self.tasks) or "none"

    def run_due(self) -> list[str]:
        """Run each task whose time has come, once; returns their names. Never raises."""
        ran = []
        for periodic in self.tasks:
            now = self._clock()
            if periodic.next_run > now:
                continue
            # As beat does, the next run counts from this one's start; runs missed meanwhile are not
            # made up one by one (each run works off everything that is due).
            periodic.next_run = now + periodic.interval
            ran.append(periodic.name)
            self._run(periodic)
        return ran

    def _run(self, periodic: PeriodicTask) -> None:
        try:
            result = periodic.task.apply(args=periodic.args, kwargs=periodic.kwargs)
            if result.failed():  # apply() returns the failure instead of raising when eager errors don't propagate
                logger.error("embedded beat: %s failed:\n%s", periodic.name, result.traceback)
            else:
                logger.info("embedded beat: %s done: %r", periodic.name, result.result)
        except Exception:
            logger.exception("embedded beat: %s failed; it runs again in %g s", periodic.name, periodic.interval)

    def seconds_to_next(self) -> float:
        if not self.tasks:
            return 3600.0
        return max(0.0, min(p.next_run for p in self.tasks) - self._clock())

    def run_forever(self) -> None:
        try:
            while not self._stop.is_set():
                self.run_due()
                # This thread serves no request, so nothing else closes its connection between rounds
                # (as after a request: closed when broken or past CONN_MAX_AGE, always on SQLite).
                close_old_connections()
                self._stop.wait(self.seconds_to_next())
        finally:
            connections.close_all()  # this thread's own connections

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.run_forever, name="embedded-beat", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
