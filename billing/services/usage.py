"""Daily usage snapshots (API calls, seats, resources) for billing and the usage page."""

from __future__ import annotations

from datetime import UTC

from django.conf import settings
from django.utils import timezone
from django_tenants.utils import schema_context

from tenants.models import Tenant, TenantStatus

from ..models import (
    Metric,
    UsageDaily,
)
from ..selectors import (
    firm_resource_counts,
)


# --- Usage snapshots ---------------------------------------------------------------------------------
def usage_snapshot(*, day=None) -> int:
    """Record today's seats, portfolios and contacts of every live firm (one row per metric, upserted).

    Idempotent: running it again the same day overwrites the same rows with the current counts.
    """
    day = day or timezone.now().astimezone(UTC).date()
    written = 0
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        tenants = list(Tenant.objects.exclude(status=TenantStatus.CLOSED).exclude(schema_name="public"))
    for tenant in tenants:
        counts = firm_resource_counts(tenant)
        with schema_context(settings.PUBLIC_SCHEMA_NAME):
            rows = [
                UsageDaily(tenant_id=tenant.pk, day=day, metric=metric, count=count)
                for metric in (Metric.SEATS, Metric.PORTFOLIOS, Metric.CONTACTS)
                if (count := counts[metric]) is not None
            ]
            UsageDaily.objects.bulk_create(
                rows, update_conflicts=True, unique_fields=["tenant", "day", "metric"], update_fields=["count"]
            )
            written += len(rows)
    return written
