"""Events for the outside world, written in the same transaction as the change they announce.

Once that transaction commits, `outbox_committed` is sent (without arguments): the webhooks dispatcher
(ambassadors.webhooks) listens and enqueues its fan-out. If the broker is down then, nothing is lost: the
row waits, undispatched, for the periodic sweep (CELERY_BEAT_SCHEDULE, "webhooks-sweep").
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.dispatch import Signal

from core import clock
from core.models import OutboxMessage

outbox_committed = Signal()


def _announce() -> None:
    outbox_committed.send(sender=OutboxMessage)


def outbox_write(*, event: str, program_id: int | None, payload: dict[str, Any]) -> OutboxMessage:
    message = OutboxMessage.objects.create(event=event, program_id=program_id, payload=payload, created_at=clock.now())
    # Once per transaction, however many events it writes (a recalculation may unlock hundreds of rewards).
    if not any(callback[1] is _announce for callback in connection.run_on_commit):
        transaction.on_commit(_announce)
    return message
