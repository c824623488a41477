from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.db import connection
from django_tenants.utils import schema_context

from billing import metering
from billing.models import Plan, Subscription, SubscriptionStatus


@pytest.fixture(autouse=True)
def _fresh_metering():
    metering.reset_local_state()
    metering.set_redis_client(None)
    yield
    metering.reset_local_state()


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def plan(code: str) -> Plan:
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        return Plan.objects.get(code=code)


def activate(tenant, *, code="starter", interval="month", anchor=None, end=None) -> Subscription:
    """Put the firm's subscription on ``code``/``interval``, active, in the period containing ``anchor``."""
    from billing.proration import period_bounds

    anchor = anchor or utc(2025, 4, 1)
    start, period_end = period_bounds(anchor, interval, anchor)
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        sub = Subscription.objects.get(tenant_id=tenant.pk)
        sub.plan = plan(code)
        sub.interval = interval
        sub.status = SubscriptionStatus.ACTIVE
        sub.billing_anchor = anchor
        sub.current_period_start = start
        sub.current_period_end = end or period_end
        sub.trial_ends_at = None
        sub.save()
    return sub


@pytest.fixture
def in_public():
    previous = connection.tenant
    connection.set_schema_to_public()
    yield
    connection.set_tenant(previous)
