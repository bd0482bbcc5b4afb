"""Tools for concurrency tests on PostgreSQL: run code in threads (one connection each), pause a thread
around a chosen SQL statement, and wait until a backend really waits for a row lock.

Pauses are keyed on the SQL a service sends, not on its Python structure, so that the same test drives
the code before and after a fix that reorders its locks.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

from django.db import connection

from tests.rewards.conftest import wait_until


@contextlib.contextmanager
def around_statement(
    pattern: str, *, before: Callable[[], Any] | None = None, after: Callable[[], Any] | None = None
) -> Iterator[None]:
    """In this thread's connection, call `before()` / `after()` around the first statement matching `pattern`."""
    fired = False

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal fired
        hit = not fired and re.search(pattern, sql) is not None
        if hit:
            fired = True
            if before is not None:
                before()
        result = execute(sql, params, many, context)
        if hit and after is not None:
            after()
        return result

    with connection.execute_wrapper(wrapper):
        yield
    assert fired, f"no statement matched {pattern!r}"


def backend_pid() -> int:
    """This thread's PostgreSQL backend (its connection opened if need be)."""
    connection.ensure_connection()
    return connection.connection.info.backend_pid


def waiting_for_lock(pid: int) -> bool:
    """Is backend `pid` waiting for a lock held by another transaction? Asked on this thread's connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


def wait_blocked(pid: int, what: str) -> None:
    wait_until(lambda: waiting_for_lock(pid), timeout=15, interval=0.02, what=what)


class Threads:
    """Start functions in threads, each with its own connection; `join()` returns their results and
    re-raises nothing: errors are kept by name for the test to assert on."""

    def __init__(self) -> None:
        self.threads: dict[str, threading.Thread] = {}
        self.results: dict[str, Any] = {}
        self.errors: dict[str, BaseException] = {}
        self.pids: dict[str, int] = {}
        self._pid_known: dict[str, threading.Event] = {}

    def start(self, name: str, target: Callable[[], Any]) -> None:
        self._pid_known[name] = threading.Event()

        def run() -> None:
            try:
                self.pids[name] = backend_pid()
                self._pid_known[name].set()
                self.results[name] = target()
            except BaseException as exc:  # reported to the test through self.errors
                self.errors[name] = exc
            finally:
                self._pid_known[name].set()
                connection.close()

        thread = threading.Thread(target=run, name=name)
        self.threads[name] = thread
        thread.start()

    def pid(self, name: str) -> int:
        assert self._pid_known[name].wait(10), f"{name} never connected"
        return self.pids[name]

    def join(self, timeout: float = 60) -> None:
        for name, thread in self.threads.items():
            thread.join(timeout)
            assert not thread.is_alive(), f"{name} hung"
