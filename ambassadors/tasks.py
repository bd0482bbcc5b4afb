"""Celery tasks of outbound webhooks (ambassadors.webhooks): thin, they take ids and call the services.

Delivered at least once; each is safe to run any number of times (the services claim before they send).
"""

from __future__ import annotations

from celery import shared_task

from ambassadors import webhooks

# Retries of a delivery shorter than this are enqueued with a countdown (well under the broker's
# visibility timeout); longer ones are left to the sweep, which runs every minute.
COUNTDOWN_LIMIT = 600


@shared_task(name="ambassadors.webhooks_dispatch", acks_late=True)
def webhooks_dispatch() -> int:
    """Fan the committed outbox rows out to deliveries, and enqueue one task per delivery."""
    created = webhooks.outbox_dispatch()
    for delivery_id in created:
        webhook_deliver.delay(delivery_id)
    return len(created)


@shared_task(name="ambassadors.webhook_deliver", acks_late=True)
def webhook_deliver(delivery_id: int) -> str:
    result = webhooks.delivery_attempt(delivery_id=delivery_id)
    if result.retry_in is not None and result.retry_in.total_seconds() <= COUNTDOWN_LIMIT:
        webhook_deliver.apply_async((delivery_id,), countdown=result.retry_in.total_seconds())
    return result.status if result.sent else "skipped"


@shared_task(name="ambassadors.webhooks_sweep", acks_late=True)
def webhooks_sweep() -> int:
    """Every minute (CELERY_BEAT_SCHEDULE): dispatch what a broker outage left in the outbox, and enqueue
    every delivery that is due (retries, leases of workers that died)."""
    webhooks.outbox_dispatch()
    due = webhooks.deliveries_due()
    for delivery_id in due:
        webhook_deliver.delay(delivery_id)
    return len(due)
