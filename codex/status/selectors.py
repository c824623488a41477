"""Reads of platform status for the operators' page and the public /status/."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce

from django.conf import settings
from django.db.models import Count, Max, Q
from django.utils import timezone
from django_tenants.utils import schema_context

from .checks import CHECKS
from .models import ServiceCheck, State


@dataclass(frozen=True)
class ServiceHistory:
    service: str
    label: str
    last_failure_at: datetime | None
    last_failure_detail: str
    uptime: dict[str, float | None]  # "d1", "d7", "d90" -> percent of checks that were ok


WINDOWS = {"d1": timedelta(hours=24), "d7": timedelta(days=7), "d90": timedelta(days=90)}


def status_history(*, now: datetime | None = None) -> list[ServiceHistory]:
    """Per service: uptime over 24 h, 7 d and 90 d (share of minute checks that were ok) and the
    last failure. One aggregate query per window plus one for the last failures."""
    now = now or timezone.now()
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        uptime: dict[str, dict[str, float | None]] = {service: {} for service, _l, _c in CHECKS}
        for name, span in WINDOWS.items():
            rows = (
                ServiceCheck.objects.filter(checked_at__gte=now - span)
                .values("service")
                .annotate(total=Count("pk"), ok=Count("pk", filter=Q(state=State.OK)))
            )
            counts = {r["service"]: r for r in rows}
            for service in uptime:
                r = counts.get(service)
                uptime[service][name] = round(100 * r["ok"] / r["total"], 3) if r and r["total"] else None
        last = dict(
            ServiceCheck.objects.exclude(state=State.OK)
            .values("service")
            .annotate(at=Max("checked_at"))
            .values_list("service", "at")
        )
        details = (
            {
                c.service: c.detail
                for c in ServiceCheck.objects.filter(
                    reduce(operator.or_, (Q(service=s, checked_at=at) for s, at in last.items()))
                )
            }
            if last
            else {}
        )
    return [
        ServiceHistory(service, label, last.get(service), details.get(service, ""), uptime[service])
        for service, label, _check in CHECKS
    ]


def status_latest() -> dict[str, ServiceCheck]:
    """The latest recorded check of each service (rows newer than the staleness limit only)."""
    since = timezone.now() - timedelta(seconds=settings.STATUS_STALE_SECONDS)
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        rows = ServiceCheck.objects.filter(checked_at__gte=since).order_by("service", "-checked_at").distinct("service")
        return {row.service: row for row in rows}


def status_public(*, live: dict[str, str]) -> list[tuple[str, str]]:
    """(label, state) per service for the public page: ``live`` results of /ready for the database
    and the schema, the latest recorded check for the others ("unknown" when none is recent)."""
    latest = status_latest()
    rows = [("Web application", "ok")]
    for service, label, _check in CHECKS:
        if service in live:
            state = live[service] if live[service] in ("ok", "unreachable", "unknown") else "down"
        else:
            row = latest.get(service)
            state = row.state if row is not None else "unknown"
        rows.append((label, state))
    return rows
