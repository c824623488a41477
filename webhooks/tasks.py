from __future__ import annotations

from django.db import DatabaseError

from codex.celery import app

from . import services


@app.task(name="webhooks.deliver", acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def webhook_deliver(delivery_id: int) -> str:
    """One attempt of one delivery, in the firm's schema. The next attempt, if any, is queued by
    the service with its backoff as countdown; this task never retries an HTTP failure itself."""
    return services.delivery_attempt(delivery_id=delivery_id)


@app.task(
    name="webhooks.deliver_due", acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5
)
def webhooks_deliver_due() -> int:
    return services.deliveries_enqueue_due()
