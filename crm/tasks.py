"""Background jobs of the CRM. Each runs in the schema of the firm that queued it."""

from __future__ import annotations

from django.db import DatabaseError, connection

from codex.celery import app


@app.task(bind=True, acks_late=True, autoretry_for=(OSError, DatabaseError), retry_backoff=True, max_retries=5)
def campaign_deliver(self, campaign_id: int) -> dict:
    """Mail a campaign's pending deliveries; safe to retry and to run twice (each row at most once)."""
    from . import services

    return services.campaign_deliver(campaign_id=campaign_id, tenant=connection.tenant)
