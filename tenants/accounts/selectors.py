"""Reads for people and their security records."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django_tenants.utils import schema_context

from tenants.models import AuditEvent


def audit_events_for_firm(*, tenant, action: str | None = None) -> QuerySet[AuditEvent]:
    """The firm's audit events, newest first (public schema; the queryset is evaluated lazily, and
    the public table is on every firm's search path)."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        events = AuditEvent.objects.filter(tenant=tenant)
        if action:
            events = events.filter(action__startswith=action)
        return events.order_by("-created_at", "-id")
