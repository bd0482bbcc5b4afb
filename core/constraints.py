"""A database constraint that refuses a write becomes a 400 naming the field, never a 500.

The services validate first; this is the backstop for whatever slips through (a rule the checks forgot, a
race between two writers). The model's own Meta constraints are the one map from constraint to field:
a check constraint names the first field its condition reads, a unique constraint its last field (the
first ones scope it, such as the program).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from django.db import IntegrityError, models
from django.db.models import Q

from core.errors import InvalidInput

# SQLite says which constraint in the message; PostgreSQL in the diagnostics (psycopg's `diag`).
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (\w+)")
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: ([\w.]+)")
_POSTGRES_KEY = re.compile(r"Key \(([^)]+)\)=")


@contextlib.contextmanager
def constraint_errors_as_invalid_input(model: type[models.Model]) -> Iterator[None]:
    """Turn an IntegrityError from one of `model`'s constraints into InvalidInput naming the field.

    Wrap it around the `transaction.atomic()` block that writes, so the block is rolled back first. An
    IntegrityError this cannot place (a foreign key, another table) goes on as it is: that is a bug.
    """
    try:
        yield
    except IntegrityError as exc:
        refused = _refused_field(model, exc)
        if refused is None:
            raise
        raise InvalidInput(refused[1], field=refused[0]) from exc


def _refused_field(model: type[models.Model], exc: IntegrityError) -> tuple[str, str] | None:
    name, columns = _constraint_of(exc)
    for constraint in model._meta.constraints:
        if constraint.name != name:
            continue
        if isinstance(constraint, models.UniqueConstraint) and constraint.fields:
            return constraint.fields[-1], "This value is already taken."
        if isinstance(constraint, models.CheckConstraint):
            field = _first_field(constraint.condition)
            if field:
                return field, "This value is not allowed here."
    by_column = {f.column: f.name for f in model._meta.concrete_fields}
    for column in columns:
        if column in by_column:
            return by_column[column], "This value is already taken."
    return None


def _constraint_of(exc: IntegrityError) -> tuple[str, list[str]]:
    """(constraint name, columns of a unique key) as the database reported them."""
    diag = getattr(exc.__cause__, "diag", None)
    if diag is not None:
        found = _POSTGRES_KEY.search(diag.message_detail or "")
        columns = [c.strip() for c in found.group(1).split(",")] if found else []
        return diag.constraint_name or "", columns[-1:]
    message = str(exc)
    if found := _SQLITE_CHECK.search(message):
        return found.group(1), []
    if found := _SQLITE_UNIQUE.search(message):
        return "", [found.group(1).split(",")[-1].strip().rsplit(".", 1)[-1]]
    return "", []


def _first_field(condition: Any) -> str | None:
    children: list[Any] = condition.children if isinstance(condition, Q) else []
    for child in children:
        # A child is a nested Q, or a (lookup, value) pair such as ("step__gt", 0).
        field = _first_field(child) if isinstance(child, Q) else child[0].split("__", 1)[0]
        if field:
            return field
    return None
