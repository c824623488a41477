"""Writes of the outbox: ``event_emit`` (domain services call it) and the relay to subscribers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context, schema_exists

from codex.db import current_schema

from .catalogue import event_type
from .models import OutboxEvent

logger = logging.getLogger(__name__)

Subscriber = Callable[[OutboxEvent], None]
_subscribers: list[Subscriber] = []


def subscribe(handler: Subscriber) -> None:
    """Register ``handler(event)``; called by the relay once per event, in the firm's schema.

    A handler must be idempotent (the relay may run twice for one event after a crash)."""
    if handler not in _subscribers:
        _subscribers.append(handler)


def event_emit(*, type: str, data: dict, resource: str = "", tenant=None) -> OutboxEvent | None:
    """Record a business event in the current transaction; it is relayed after the commit.

    ``type`` must be in the catalogue (``UnknownEventType`` otherwise). In a firm's schema the
    event is the firm's; a service running in the public schema (billing) passes the firm as
    ``tenant`` and the row is written in that firm's schema, still inside the caller's transaction.
    Nothing is relayed if the transaction rolls back. Returns None, writing nothing, for a firm
    row that has no schema (billing rows of a firm that was never provisioned)."""
    event_type(type)
    schema = tenant.schema_name if tenant is not None else current_schema()
    if schema == settings.PUBLIC_SCHEMA_NAME:
        raise ValueError("event_emit needs a firm: call it in a firm's schema or pass tenant=")
    if tenant is not None and schema != current_schema() and not schema_exists(schema):
        logger.info("event %s not recorded: firm schema %s does not exist", type, schema)
        return None
    with schema_context(schema):
        event = OutboxEvent.objects.create(type=type, data=data, resource=resource)
    # Robust: if the broker is away the event waits in the outbox; the sweep relays it (decision 0933).
    transaction.on_commit(lambda: _enqueue_relay(schema, event.pk), robust=True)
    return event


def _enqueue_relay(schema: str, event_id: int) -> None:
    from .tasks import outbox_relay

    with schema_context(schema):
        outbox_relay.delay(event_id)


def outbox_relay_event(*, event_id: int) -> bool:
    """Hand one event to every subscriber, once; returns False if it was already relayed.

    Runs in the firm's schema. The row is locked while the subscribers run, so two relays of
    one event (a redelivered task and the sweep) never both hand it out."""
    with transaction.atomic():
        event = OutboxEvent.objects.select_for_update(skip_locked=True).filter(pk=event_id, relayed_at=None).first()
        if event is None:
            return False
        for handler in _subscribers:
            handler(event)
        event.relayed_at = timezone.now()
        event.save(update_fields=["relayed_at"])
    return True


def outbox_relay_pending(*, older_than: timedelta = timedelta(seconds=60), limit: int = 1000) -> int:
    """Relay events whose relay task was lost (worker killed, broker down). Returns how many."""
    cutoff = timezone.now() - older_than
    ids = list(
        OutboxEvent.objects.filter(relayed_at=None, created_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(1 for pk in ids if outbox_relay_event(event_id=pk))


def outbox_purge(*, older_than: timedelta) -> int:
    """Delete relayed events older than ``older_than`` (their deliveries go with them)."""
    cutoff = timezone.now() - older_than
    deleted, _ = OutboxEvent.objects.filter(relayed_at__isnull=False, created_at__lt=cutoff).delete()
    return deleted
