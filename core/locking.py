"""The one lock order of every write path, and the bounded retry of a whole transaction.

Lock order
----------
A transaction that changes counts takes its row locks in this order, skipping the steps it does not
need and never going back to an earlier one:

1. the **signup** of the referee the event is about;
2. its **conversion**;
3. the **program's counters**;
4. **ambassadors' counters**, by ascending ambassador id (an override moves two: old and new);
5. **reward grants and milestones**: created, revoked, flagged, reinstated, redeemed.

Every write path, in those terms:

============================== =================================================================
signup_record                  the velocity advisory locks of its source (taken by signup_record
                               alone, ascending keys), inserts the signup and its program counter
                               delta (rows no one else sees yet), then 4, last, just before COMMIT
signup_override, signup_review 1, then 2 (its conversions' copy of its credit), then 4 for the old
                               and the new ambassador, ascending (the program's part is a delta row)
conversion_record              1 (its credit is copied onto the purchase), inserts the conversion,
                               then approves
conversion_approve             1, 2 (the conditional pending -> approved update), 4
conversion_refund              1, 2, 4
ambassador_recalculate         4 (that ambassador's row), then 5
program_recalculate            3, deletes the delta rows it folds into it, then 5
reconciliation                 4 or 3, one counters row per transaction, recounted under its lock

Step 3 is taken only by the folds and the reconciliation: signups never wait for the program's row.
grant_redeem, welcome sweep    5 only
signup_links_fill              1 only: the day's signups lacking their click's link, one UPDATE
                               (no count moves; retried whole on a deadlock)
============================== =================================================================

Two rules keep foreign keys out of the cycle:

- A row lock is ``FOR NO KEY UPDATE`` (``select_for_update(no_key=True, of=("self",))``), never
  ``FOR UPDATE``, and never over a join without ``of=``, which would lock the joined rows as well: the
  refund's join to its signup did, and took the signup without meaning to. None of these paths changes
  a key column, so their UPDATEs take ``FOR NO KEY UPDATE`` too.
- A foreign key check takes ``FOR KEY SHARE`` on the row referred to, and Django creates PostgreSQL
  foreign keys ``DEFERRABLE INITIALLY DEFERRED``, so the check runs at COMMIT: a recalculation (step 4)
  creating a referee's welcome voucher checks the signup (step 1) as it commits, a step back. ``FOR KEY
  SHARE`` conflicts with ``FOR UPDATE`` and with deletes, never with ``FOR NO KEY UPDATE``, so that late
  check never waits for a writer holding the signup, and the order holds. A path that must serialise on
  a row others refer to (a program, an ambassador, a tier) locks it ``FOR NO KEY UPDATE`` for the same
  reason, or every insert referring to it waits at its COMMIT.

What this replaced, and deadlocked under load (16 web workers, ``celery -c 4``, a double-sided tier):
a refund locked its signup ``FOR UPDATE`` over the join and waited for the ambassador's counters, held
by a recalculation that waited at COMMIT on its welcome voucher's key to that signup; an override did
the same from the signup's own lock; and signups waiting for the program's counters behind them failed
with it. ``tests/rewards/test_lock_order.py`` pins those interleavings; ``bench/stress.py`` shows them
gone under load.

Retry
-----
No order prevents every deadlock (a row another process holds outside these paths, an admin deleting
a signup) nor a serialization failure. ``transaction_retry`` runs a service's whole transaction again
when PostgreSQL aborts it for either, a bounded number of times, and then raises ``Contention``.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import DatabaseError, transaction

from core.errors import ParrainError

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# SQLSTATEs after which running the same transaction again is the remedy PostgreSQL documents.
RETRYABLE = {"40P01": "deadlock detected", "40001": "serialization failure"}


class Contention(ParrainError):
    """The database aborted the transaction every time it was tried: nothing was recorded; try again."""

    status_code = 503
    code = "contention"


def retryable_reason(exc: BaseException) -> str | None:
    """What PostgreSQL aborted the transaction for, when running it again is the remedy; else None."""
    seen: BaseException | None = exc
    while seen is not None:
        reason = RETRYABLE.get(getattr(seen, "sqlstate", None) or "")
        if reason is not None:
            return reason
        seen = seen.__cause__
    return None


def transaction_retry(
    max_attempts: int = 3, *, backoff: float = 0.05, using: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the decorated service again, whole, when its transaction is aborted by a deadlock or a
    serialization failure; after `max_attempts`, raise `Contention`.

    Put it on the service that opens the transaction (`with transaction.atomic():` inside, reads before
    it included: they are made again too). Called inside someone else's atomic block, the service runs
    once and the error goes to that caller: a part of a transaction cannot be retried, only all of it.
    An attempt's `transaction.on_commit` callbacks go with its rollback: only the attempt that commits
    sends its tasks and e-mails.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            connection = transaction.get_connection(using)
            if connection.in_atomic_block:
                return func(*args, **kwargs)
            attempt = 1
            while True:
                try:
                    return func(*args, **kwargs)
                except DatabaseError as exc:
                    reason = retryable_reason(exc)
                    if reason is None or connection.in_atomic_block:
                        raise
                    if attempt >= max_attempts:
                        logger.error("%s: %s on each of %d attempts", func.__qualname__, reason, attempt)
                        raise Contention(
                            "Other changes to the same records kept getting in the way; nothing was recorded. "
                            "Please try again."
                        ) from exc
                    logger.warning(
                        "%s: %s on attempt %d of %d, retrying the whole transaction",
                        func.__qualname__,
                        reason,
                        attempt,
                        max_attempts,
                    )
                    # Jittered, growing: two victims of one deadlock should not collide again in step.
                    time.sleep(random.uniform(0, backoff * 2 ** (attempt - 1)))
                    attempt += 1

        return wrapper

    return decorate
