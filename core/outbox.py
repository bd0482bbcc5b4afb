"""Events for the outside world, written in the same transaction as the change they announce."""

from __future__ import annotations

from typing import Any

from core import clock
from core.models import OutboxMessage


def outbox_write(*, event: str, program_id: int | None, payload: dict[str, Any]) -> OutboxMessage:
    return OutboxMessage.objects.create(event=event, program_id=program_id, payload=payload, created_at=clock.now())
