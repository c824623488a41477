"""What the billing services share: their errors, the clock check, row locks and settling a firm.

Invoicing and payments both lock an invoice and, once nothing is overdue, set the firm active
again; both live here so neither module imports the other.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone

# Module import (not names): tenants.services imports this module for provisioning, so the names
# are looked up at call time, when both modules are fully loaded.
from tenants import services as tenant_services
from tenants.models import Tenant, TenantStatus

from ..models import (
    Invoice,
    InvoiceStatus,
    Subscription,
    SubscriptionStatus,
)

# One logger for the package, named as before the split: log configuration and searches keep working.
logger = logging.getLogger("billing.services")

ZERO = Decimal("0")
BILLABLE_STATUSES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)


class UnknownPlan(ValueError):
    pass


class BillingStateError(ValidationError):
    """A transition the object's state does not allow (void a paid invoice, pay a draft...)."""


class DowngradeRefused(ValidationError):
    """The firm's current usage does not fit in the plan it asked for; ``messages`` say why."""


def _now(now: datetime | None) -> datetime:
    value = now or timezone.now()
    if timezone.is_naive(value):
        raise ValueError("now must be timezone-aware")
    return value


def _fmt(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%d %b %Y %H:%M} UTC"


def _locked_invoice(invoice: Invoice) -> Invoice:
    return Invoice.objects.select_for_update().select_related("tenant", "subscription").get(pk=invoice.pk)


def _settle_if_clear(tenant: Tenant, now: datetime, *, actor: str, reason: str) -> None:
    """After a payment (or write-off): no overdue open invoice left -> subscription and firm active."""
    overdue = Invoice.objects.filter(tenant_id=tenant.pk, status=InvoiceStatus.OPEN, due_at__lte=now).exists()
    if overdue:
        return
    Subscription.objects.filter(tenant_id=tenant.pk, status=SubscriptionStatus.PAST_DUE).update(
        status=SubscriptionStatus.ACTIVE
    )
    tenant = Tenant.objects.get(pk=tenant.pk)
    if tenant.status in (TenantStatus.PAST_DUE, TenantStatus.SUSPENDED):
        tenant_services.tenant_set_status(tenant=tenant, status=TenantStatus.ACTIVE, actor=actor, reason=reason)
