"""Throwaway firms without a schema (public rows only) for invoicing and concurrency tests."""

from __future__ import annotations

import itertools
from datetime import timedelta

from billing.models import Metric, Subscription, SubscriptionStatus, UsageDaily
from tenants.models import Tenant, TenantStatus

_seq = itertools.count(1)


def bare_tenant(*, prefix="t", status=TenantStatus.ACTIVE) -> Tenant:
    """A Tenant row with no schema (auto_create_schema is False): enough for public billing rows."""
    n = next(_seq)
    slug = f"{prefix}{n}-{id(object()) % 100000}"
    return Tenant.objects.create(
        name=f"Bare {slug}", slug=slug, schema_name=f"bare_{slug.replace('-', '_')}", status=status
    )


def bare_subscription(*, plan, tenant=None, interval="month", start, status=SubscriptionStatus.ACTIVE, seats=1):
    tenant = tenant or bare_tenant()
    from billing.proration import period_bounds

    _, end = period_bounds(start, interval, start)
    sub = Subscription.objects.create(
        tenant=tenant,
        plan=plan,
        status=status,
        interval=interval,
        billing_anchor=start,
        current_period_start=start,
        current_period_end=end,
        trial_ends_at=end if status == SubscriptionStatus.TRIALING else None,
    )
    UsageDaily.objects.create(tenant=tenant, day=(start - timedelta(days=1)).date(), metric=Metric.SEATS, count=seats)
    return sub
