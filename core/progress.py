"""Progress and clean interruption for long management commands.

A command works in batches, each committed on its own, and is idempotent: running it again does only
what is left. Wrapped in ``progress()``, it shows a bar on a terminal and one summary line in logs, and
Ctrl-C or SIGTERM (``docker stop``, a Kubernetes job's deadline) stops it after the current batch::

    with progress("approve conversions", total=len(ids), stdout=self.stdout) as bar:
        for batch in batches(ids):
            approve(batch)  # one transaction
            bar.advance(len(batch))  # stops here, cleanly, if asked to

``advance()`` is the checkpoint: once a stop was asked for, it raises ``KeyboardInterrupt`` after
counting the batch that just finished. The block then ends with a summary saying it was interrupted
and that running the command again resumes, and the process exits with status 130. A second Ctrl-C
stops at once: the batch's transaction rolls back, which leaves the data as consistent as the first.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# The shell's convention for "ended by SIGINT": a cron job or a CI step sees the run did not finish.
INTERRUPTED_EXIT_STATUS = 130


class Tracker:
    """What a command sees inside ``progress()``: ``advance(n)``, ``interrupted``, and summary details."""

    def __init__(self, label: str, total: int | None, bar: Progress | None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        # Set by SIGINT/SIGTERM: stop at the next advance(). A loop may also test it and break.
        self.stop_requested = False
        # The run ended before finishing its work; the summary says so and the exit status is 130.
        self.interrupted = False
        # Figures the command wants in its summary line ("unlocked=3"), in insertion order.
        self.details: dict[str, Any] = {}
        self._bar = bar
        self._task = bar.add_task(label, total=total) if bar is not None else None

    def set_total(self, total: int | None) -> None:
        """For a command that learns how much there is to do only once it started."""
        self.total = total
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=total)

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units done; stop here if a stop was asked for (after counting them)."""
        self.done += n
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=n)
        if self.stop_requested and not self.finished:
            raise KeyboardInterrupt

    @property
    def finished(self) -> bool:
        return self.total is not None and self.done >= self.total

    def summary(self, elapsed: float) -> str:
        count = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
        extra = ", ".join(f"{key}={value}" for key, value in self.details.items())
        line = f"{self.label}: {count} in {elapsed:.2f}s"
        if extra:
            line += f" ({extra})"
        if self.interrupted:
            line += "; interrupted: what is done is saved, run the command again to resume"
        return line


def _stream(stdout: Any) -> TextIO:
    # Django's OutputWrapper appends a newline to every write, which would break the bar's redraws:
    # the bar writes to the stream it wraps.
    return getattr(stdout, "_out", stdout)


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@contextmanager
def progress(label: str, total: int | None = None, stdout: Any = None) -> Iterator[Tracker]:
    """Run a long command's batches with a bar (terminal) or a summary line (logs), stopping cleanly.

    Raises ``SystemExit(130)`` after the summary when the run was interrupted.
    """
    out = stdout if stdout is not None else sys.stdout
    stream = _stream(out)
    bar: Progress | None = None
    if _is_terminal(stream):
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=stream),
        )
    tracker = Tracker(label, total, bar)
    restore = _install_stop_handlers(tracker)
    started = time.monotonic()
    try:
        if bar is not None:
            bar.start()
        try:
            yield tracker
        except KeyboardInterrupt:
            tracker.interrupted = True
        else:
            # A loop that broke out on stop_requested ended early; one that ran to its end did not.
            tracker.interrupted = tracker.stop_requested and not tracker.finished
    finally:
        if bar is not None:
            bar.stop()
        restore()
    out.write(tracker.summary(time.monotonic() - started) + "\n")
    if hasattr(out, "flush"):
        out.flush()
    if tracker.interrupted:
        raise SystemExit(INTERRUPTED_EXIT_STATUS)


def _install_stop_handlers(tracker: Tracker) -> Any:
    """SIGINT/SIGTERM ask for a stop at the next ``advance()``; a second SIGINT stops at once."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signals reach the main thread only; a KeyboardInterrupt still works
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def ask_to_stop(signum: int, frame: FrameType | None) -> None:
        if tracker.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: do not wait for the batch to finish
        tracker.stop_requested = True

    for sig in previous:
        signal.signal(sig, ask_to_stop)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
