"""Writes of platform status: record one round of checks; purge old history."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_tenants.utils import schema_context

from . import checks
from .models import ServiceCheck


def status_record(*, results: list[checks.Result] | None = None) -> list[ServiceCheck]:
    """Run every check (unless given) and store one row per service; drop rows past retention."""
    results = results if results is not None else checks.run_all()
    now = timezone.now()
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        rows = ServiceCheck.objects.bulk_create(
            [
                ServiceCheck(checked_at=now, service=r.service, state=r.state, latency_ms=r.latency_ms, detail=r.detail)
                for r in results
            ]
        )
        ServiceCheck.objects.filter(checked_at__lt=now - timedelta(days=settings.STATUS_HISTORY_DAYS)).delete()
    return rows
