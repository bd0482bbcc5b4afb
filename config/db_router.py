"""Reads that may go to a read replica, and only those: the staff analytics and their CSV exports.

With DATABASE_REPLICA_URL set, the settings add a `replica` database alias and this router. Everything
runs on the primary (`default`) as before, except what runs inside `reading_replica()`: there, every
query of the thread goes to the replica, the ORM's (through `ReplicaRouter`) and the hand-written SQL
of the analytics read models alike (they use `django.db.connection`, which is the `default` alias: inside
the block that alias is the replica's connection). A write inside the block fails on the replica, which is
read-only: nothing written can be lost there.

A replica lags the primary by a little (usually well under a second with streaming replication): a
page that must show what was just written, or that decides who may do what, reads the primary. The
analytics views check permissions first, on the primary, and only then read their figures here.

Without DATABASE_REPLICA_URL there is no `replica` alias and `reading_replica()` changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"

_on_replica: ContextVar[bool] = ContextVar("parrain_reading_replica", default=False)

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def replica_configured() -> bool:
    return REPLICA in connections.settings


@contextmanager
def reading_replica() -> Iterator[None]:
    """Inside the block, this thread's queries go to the replica (when one is configured)."""
    if not replica_configured() or _on_replica.get():
        yield  # no replica, or already inside a block: nothing to switch
        return
    primary = connections[DEFAULT_DB_ALIAS]
    _on_replica.set(True)
    connections[DEFAULT_DB_ALIAS] = connections[REPLICA]
    try:
        yield
    finally:
        connections[DEFAULT_DB_ALIAS] = primary
        _on_replica.set(False)


def replica_reads(view: Callable[P, R]) -> Callable[P, R]:
    """A view (or any function) whose queries all go to the replica. For a view that checks permissions,
    prefer `reading_replica()` around its reads only, after the check."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with reading_replica():
            return view(*args, **kwargs)

    return wrapper


def rows_from_replica(rows: Iterable[T]) -> Iterator[T]:
    """`rows` iterated on the replica: for a streamed response, whose queries run after the view returned,
    while the server sends the body."""
    with reading_replica():
        yield from rows


class ReplicaRouter:
    """The ORM's reads inside `reading_replica()` to the replica; every write, and everything else, to the
    primary. Migrations run on the primary only: the replica is a copy of it, schema included."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return REPLICA if _on_replica.get() and replica_configured() else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        # Both aliases hold the same rows: an object read from the replica may point at one from the primary.
        return True

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        return False if db == REPLICA else None
