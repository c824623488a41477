"""Alert jobs. Each runs in the schema of the firm it was queued for (tenant-schemas-celery)."""

from __future__ import annotations

from django.conf import settings
from django.db import DatabaseError
from django_tenants.utils import schema_context

from billing.entitlements import PlanLimitExceeded, check_feature
from codex.celery import app
from codex.db import current_schema
from tenants.models import Tenant

from . import services


def _current_firm() -> Tenant:
    schema = current_schema()
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        return Tenant.objects.get(schema_name=schema)


@app.task(bind=True, acks_late=True, autoretry_for=(OSError, DatabaseError), retry_backoff=True, max_retries=5)
def alerts_evaluate_firm(self) -> dict:
    """Evaluate the firm's active rules against the latest prices (idempotent)."""
    tenant = _current_firm()
    try:
        check_feature(tenant=tenant, feature="alerts")
    except PlanLimitExceeded:
        return {"schema": current_schema(), "skipped": "alerts not in plan", "fired": 0}
    events = services.alerts_evaluate()
    return {"schema": current_schema(), "fired": len(events)}


@app.task(bind=True, acks_late=True, autoretry_for=(OSError, DatabaseError), retry_backoff=True, max_retries=5)
def alert_event_deliver(self, event_id: int) -> dict:
    """E-mail the event's recipients (each once) and open the advisors' CRM tasks."""
    return services.alert_event_deliver(event_id=event_id, tenant=_current_firm())
