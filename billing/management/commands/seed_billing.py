"""Demo billing data: plans, and for the demo firms a billing profile, an active subscription and a
few invoices (older ones paid, the latest open). Idempotent: a firm that has invoices is left as is."""

from __future__ import annotations

from datetime import UTC, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.models import BillingProfile, Invoice, InvoiceStatus, Plan, Subscription, SubscriptionStatus
from billing.proration import add_months
from billing.services import invoice_mark_paid, invoice_run, plans_seed
from tenants.models import Tenant, TenantStatus
from tenants.services import tenant_set_status

DEMO = {
    # slug: (plan code, tax rate, legal name)
    "acme": ("pro", Decimal("0.20"), "Acme Wealth Partners LLP"),
    "globex": ("starter", Decimal("0"), "Globex Family Office SA"),
}
MONTHS_OF_HISTORY = 3


class Command(BaseCommand):
    help = "Seed demo billing data (plans, profiles, subscriptions, paid and open invoices). Idempotent."

    def handle(self, *args, **options):
        plans_seed()
        now = timezone.now()
        this_month = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        anchor = add_months(this_month, -MONTHS_OF_HISTORY)
        with schema_context(settings.PUBLIC_SCHEMA_NAME):
            for slug, (plan_code, tax_rate, legal_name) in DEMO.items():
                tenant = Tenant.objects.filter(slug=slug).first()
                sub = Subscription.objects.filter(tenant=tenant).select_related("plan").first() if tenant else None
                if sub is None or Invoice.objects.filter(subscription=sub).exists():
                    continue
                BillingProfile.objects.update_or_create(
                    tenant=tenant,
                    defaults={
                        "legal_name": legal_name,
                        "billing_email": f"billing@{slug}.example",
                        "address": "1 Demo Street\nSpringfield",
                        "tax_rate": tax_rate,
                    },
                )
                sub.plan = Plan.objects.get(code=plan_code)
                sub.status, sub.interval, sub.trial_ends_at = SubscriptionStatus.ACTIVE, "month", None
                sub.billing_anchor, sub.current_period_start = anchor, anchor
                sub.current_period_end = add_months(anchor, 1)
                sub.save()
                if tenant.status == TenantStatus.TRIALING:
                    tenant_set_status(tenant=tenant, status=TenantStatus.ACTIVE, actor="seed_billing", reason="demo")
                # Invoice each month as it would have happened, paying all but the latest.
                for k in range(MONTHS_OF_HISTORY + 1):
                    invoice_run(now=min(add_months(anchor, k), now), subscription_ids=[sub.pk])
                latest = Invoice.objects.filter(subscription=sub).order_by("-period_start").first()
                for invoice in Invoice.objects.filter(subscription=sub, status=InvoiceStatus.OPEN).exclude(
                    pk=latest.pk
                ):
                    invoice_mark_paid(invoice=invoice, actor="seed_billing", now=invoice.due_at)
                # The open one is not yet due, so dunning leaves the demo firms alone.
                Invoice.objects.filter(pk=latest.pk, due_at__lt=now).update(
                    due_at=now + timedelta(days=settings.CODEX_INVOICE_DUE_DAYS)
                )
                if options["verbosity"]:
                    self.stdout.write(
                        f"billing demo data for {slug}: {Invoice.objects.filter(subscription=sub).count()} invoices"
                    )
