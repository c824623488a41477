from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError

from codex.celery import app

from . import services


@app.task(name="codex.outbox.relay", acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=8)
def outbox_relay(event_id: int) -> bool:
    return services.outbox_relay_event(event_id=event_id)


@app.task(name="codex.outbox.sweep", acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def outbox_sweep() -> int:
    """Per firm (beat fans it out): relay what a lost task left behind, purge old events."""
    relayed = services.outbox_relay_pending()
    services.outbox_purge(older_than=timedelta(days=settings.OUTBOX_RETENTION_DAYS))
    return relayed
