"""Dunning: reminders, past due and suspension of firms with overdue invoices (rules in billing.dunning)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django_tenants.utils import schema_context

# Module import (not names): tenants.services imports this module for provisioning, so the names
# are looked up at call time, when both modules are fully loaded.
from tenants import services as tenant_services
from tenants.accounts.models import Role, User
from tenants.models import Tenant, TenantStatus

from ..dunning import DunningPolicy, DunningStatus, dunning_decide
from ..models import (
    BillingProfile,
    DunningNotice,
    Invoice,
    InvoiceStatus,
    Subscription,
    SubscriptionStatus,
)
from ..money import quantize_money
from .common import BillingStateError, _fmt, _now, logger


# --- Dunning -----------------------------------------------------------------------------------------
def dunning_policy() -> DunningPolicy:
    return DunningPolicy(
        reminder_offsets_days=tuple(settings.CODEX_DUNNING_REMINDER_DAYS),
        grace_period_days=settings.CODEX_DUNNING_GRACE_DAYS,
    )


@dataclass
class DunningRunResult:
    reminders: int = 0
    past_due: int = 0
    suspended: int = 0


def _billing_recipients(tenant: Tenant) -> list[str]:
    profile = BillingProfile.objects.filter(tenant_id=tenant.pk).first()
    if profile and profile.billing_email:
        return [profile.billing_email]

    with schema_context(tenant.schema_name):
        return list(User.objects.filter(role=Role.OWNER, is_active=True).values_list("email", flat=True))


def _send_dunning_email(tenant: Tenant, invoice: Invoice, due_at: datetime, offset: int) -> None:
    recipients = _billing_recipients(tenant)
    if not recipients:
        logger.warning("no billing recipient for %s", tenant.slug)
        return
    due = quantize_money(invoice.amount_due, invoice.currency)
    if offset == DunningNotice.SUSPENSION:
        subject = f"Your Codex account is suspended: invoice {invoice.number} is unpaid"
        body = (
            f"Invoice {invoice.number} ({due} {invoice.currency}) was due on {_fmt(due_at)}. "
            "Your firm's account is suspended; its data is kept. Paying the invoice reactivates it at once."
        )
    else:
        subject = f"Reminder: invoice {invoice.number} is overdue"
        body = (
            f"Invoice {invoice.number} ({due} {invoice.currency}) was due on {_fmt(due_at)}, "
            f"{offset} day(s) ago. Please pay it to keep your account active."
        )
    send_mail(subject, body, None, recipients)


def dunning_run(*, now: datetime | None = None) -> DunningRunResult:
    """Remind, mark past due and suspend firms with overdue open invoices (the oldest drives).

    One transaction per firm with its oldest overdue invoice locked; each reminder is a
    DunningNotice row (unique per invoice and offset) written before the e-mail is queued on commit,
    so concurrent or repeated runs never send one twice.
    """
    now = _now(now)
    policy = dunning_policy()
    result = DunningRunResult()
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        tenant_ids = list(
            Invoice.objects.filter(status=InvoiceStatus.OPEN, due_at__lte=now)
            .values_list("tenant_id", flat=True)
            .distinct()
            .order_by("tenant_id")
        )
        for tenant_id in tenant_ids:
            with transaction.atomic():
                invoice = (
                    Invoice.objects.select_for_update(of=("self",))
                    .select_related("tenant", "subscription")
                    .filter(tenant_id=tenant_id, status=InvoiceStatus.OPEN, due_at__lte=now)
                    .order_by("due_at", "pk")
                    .first()
                )
                if invoice is None:
                    continue
                _dunning_step(invoice, now, policy, result)
    return result


def _dunning_step(invoice: Invoice, now: datetime, policy: DunningPolicy, result: DunningRunResult) -> None:
    tenant = invoice.tenant
    sent = set(DunningNotice.objects.filter(invoice=invoice).values_list("offset_days", flat=True))
    due_at = invoice.due_at
    if due_at is None:  # only finalized invoices are dunned, and finalizing sets the due date
        raise BillingStateError({"due_at": f"Invoice {invoice} has no due date."})
    decision = dunning_decide(due_at=due_at, now=now, sent=sent, policy=policy)
    for offset in decision.reminders_superseded:
        DunningNotice.objects.get_or_create(invoice=invoice, offset_days=offset, defaults={"sent": False})
    for offset in decision.reminders_to_send:
        _, created = DunningNotice.objects.get_or_create(invoice=invoice, offset_days=offset)
        if created:
            result.reminders += 1
            transaction.on_commit(partial(_send_dunning_email, tenant, invoice, due_at, offset))
    sub = invoice.subscription
    if decision.status in (DunningStatus.PAST_DUE, DunningStatus.SUSPENDED):
        if sub.status == SubscriptionStatus.ACTIVE:
            Subscription.objects.filter(pk=sub.pk).update(status=SubscriptionStatus.PAST_DUE)
        if tenant.status in (TenantStatus.ACTIVE, TenantStatus.TRIALING):
            tenant = tenant_services.tenant_set_status(
                tenant=tenant, status=TenantStatus.PAST_DUE, reason=f"invoice {invoice.number} overdue"
            )
            result.past_due += 1
    if decision.status is DunningStatus.SUSPENDED and tenant.status != TenantStatus.SUSPENDED:
        if tenant.status == TenantStatus.PAST_DUE:
            tenant_services.tenant_set_status(
                tenant=tenant,
                status=TenantStatus.SUSPENDED,
                reason=f"invoice {invoice.number} unpaid {policy.grace_period_days} days after its due date",
            )
            result.suspended += 1
        _, created = DunningNotice.objects.get_or_create(invoice=invoice, offset_days=DunningNotice.SUSPENSION)
        if created:
            transaction.on_commit(partial(_send_dunning_email, tenant, invoice, due_at, DunningNotice.SUSPENSION))
