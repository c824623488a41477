"""The ``codex_firms{status}`` gauge, registered with the kernel's ``/metrics`` in ``TenantsConfig.ready``."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from django_tenants.utils import schema_context
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .models import Tenant, TenantStatus

logger = logging.getLogger(__name__)


class FirmsByStatusCollector(Collector):
    """``codex_firms{status}``: counted when scraped, so every process reports the same truth."""

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("codex_firms", "Firms by status.", labels=["status"])
        try:
            with schema_context(settings.PUBLIC_SCHEMA_NAME):
                counts = dict(Tenant.objects.order_by().values_list("status").annotate(n=Count("pk")))
        except DatabaseError as exc:
            logger.warning("metrics: firms by status unavailable: %s", exc)
            return
        for status in TenantStatus.values:
            gauge.add_metric([status], counts.get(status, 0))
        yield gauge


FIRMS_BY_STATUS = FirmsByStatusCollector()
