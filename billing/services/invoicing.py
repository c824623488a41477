"""Invoices: building a period's invoice, finalize / void / write off, and the invoice run."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django_tenants.utils import schema_context

# Module import (not names): tenants.services imports this module for provisioning, so the names
# are looked up at call time, when both modules are fully loaded.
from codex.outbox.services import event_emit
from tenants import services as tenant_services
from tenants.models import TenantStatus

from .. import events, metering
from ..models import (
    BillingProfile,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    Metric,
    PendingItem,
    Subscription,
    SubscriptionStatus,
    UsageDaily,
)
from ..money import LineInput, compute_invoice_totals
from ..numbering import next_gapless_number
from ..proration import Interval, period_bounds
from ..selectors import (
    api_calls_between,
    firm_resource_counts,
)
from .common import BILLABLE_STATUSES, ZERO, BillingStateError, _fmt, _locked_invoice, _now, _settle_if_clear, logger


# --- Invoice building ------------------------------------------------------------------------------
def _seats_now(sub: Subscription, now: datetime) -> int:
    """Seats from the latest daily snapshot; counted live in the firm's schema if there is none."""
    latest = (
        UsageDaily.objects.filter(tenant_id=sub.tenant_id, metric=Metric.SEATS, day__lte=now.date())
        .order_by("-day")
        .values_list("count", flat=True)
        .first()
    )
    if latest is not None:
        return latest
    return firm_resource_counts(sub.tenant)["seats"] or 0


def _interval_months(interval: str) -> int:
    return Interval(interval).months


@dataclass
class _BatchData:
    """Rows an invoice run reads for a whole batch of subscriptions in a few queries, instead of a
    few queries per subscription (round trips dominate the run's time)."""

    invoiced: set = field(default_factory=set)  # (subscription id, period_start) already invoiced
    profiles: dict = field(default_factory=dict)  # tenant id -> BillingProfile
    seats: dict = field(default_factory=dict)  # tenant id -> latest seat snapshot
    pending: dict = field(default_factory=dict)  # subscription id -> [PendingItem]

    @classmethod
    def load(cls, subs: list[Subscription], now: datetime) -> _BatchData:
        if not subs:
            return cls()
        sub_ids = [s.pk for s in subs]
        tenant_ids = [s.tenant_id for s in subs]
        earliest = min(s.current_period_start for s in subs)
        data = cls()
        data.invoiced = set(
            Invoice.objects.filter(subscription_id__in=sub_ids, period_start__gte=earliest).values_list(
                "subscription_id", "period_start"
            )
        )
        data.profiles = {p.tenant_id: p for p in BillingProfile.objects.filter(tenant_id__in=tenant_ids)}
        data.seats = dict(
            UsageDaily.objects.filter(tenant_id__in=tenant_ids, metric=Metric.SEATS, day__lte=now.date())
            .order_by("tenant_id", "-day")
            .distinct("tenant_id")
            .values_list("tenant_id", "count")
        )
        for item in PendingItem.objects.filter(subscription_id__in=sub_ids, invoice__isnull=True):
            data.pending.setdefault(item.subscription_id, []).append(item)
        return data


def _period_lines(
    sub: Subscription, start: datetime, end: datetime, now: datetime, previous_period, batch: _BatchData | None = None
) -> list[dict]:
    plan = sub.plan
    months = _interval_months(sub.interval)
    lines = [
        {
            "kind": LineKind.BASE,
            "description": f"{plan.name} plan ({sub.interval}ly), {_fmt(start)} – {_fmt(end)}",
            "quantity": Decimal("1"),
            "unit_amount": plan.price_for(sub.interval),
        }
    ]
    if plan.seat_price > 0:
        seats = batch.seats.get(sub.tenant_id) if batch is not None else None
        extra = (seats if seats is not None else _seats_now(sub, now)) - plan.included_seats
        if extra > 0:
            lines.append(
                {
                    "kind": LineKind.SEATS,
                    "description": f"Extra seats beyond the {plan.included_seats} included",
                    "quantity": Decimal(extra),
                    "unit_amount": plan.seat_price * months,
                }
            )
    if previous_period and plan.api_overage_price_per_1000 is not None and plan.max_api_calls_month is not None:
        prev_start, prev_end = previous_period
        calls = api_calls_between(
            sub.tenant_id,
            prev_start.astimezone(UTC).date(),
            (prev_end - timedelta(seconds=1)).astimezone(UTC).date(),
            include_pending=False,
        )
        allowance = plan.max_api_calls_month * months
        if calls > allowance:
            thousands = math.ceil((calls - allowance) / 1000)
            lines.append(
                {
                    "kind": LineKind.OVERAGE,
                    "description": f"API calls over the {allowance:,} included "
                    f"({calls - allowance:,} calls, per 1,000), {_fmt(prev_start)} – {_fmt(prev_end)}",
                    "quantity": Decimal(thousands),
                    "unit_amount": plan.api_overage_price_per_1000,
                }
            )
    pending = (
        batch.pending.pop(sub.pk, [])
        if batch is not None
        else PendingItem.objects.filter(subscription=sub, invoice__isnull=True)
    )
    for item in pending:
        lines.append(
            {
                "kind": item.kind,
                "description": item.description,
                "quantity": Decimal("1"),
                "unit_amount": item.amount,
                "_pending": item,
            }
        )
    return lines


def _invoice_current_period(
    sub: Subscription, now: datetime, previous_period, batch: _BatchData | None = None
) -> Invoice | None:
    """Create and finalize the invoice of ``sub``'s current period; None if it already exists.

    Caller holds the subscription lock inside a transaction (``batch`` was read under it). The
    unique constraint (subscription, period_start) is the backstop: a duplicate insert is rolled
    back to a savepoint.
    """
    start, end = sub.current_period_start, sub.current_period_end
    if batch is not None:
        if (sub.pk, start) in batch.invoiced:
            return None
        profile = batch.profiles.get(sub.tenant_id)
    else:
        if Invoice.objects.filter(subscription=sub, period_start=start).exists():
            return None
        profile = BillingProfile.objects.filter(tenant_id=sub.tenant_id).first()
    profile = profile or BillingProfile(tenant_id=sub.tenant_id)
    currency = sub.plan.currency
    lines = _period_lines(sub, start, end, now, previous_period, batch)
    pending = [line.pop("_pending") for line in lines if "_pending" in line]

    # Credit balance: applied to a positive invoice; a negative invoice adds to it instead.
    pre = compute_invoice_totals([LineInput(x["quantity"], x["unit_amount"]) for x in lines], ZERO, currency=currency)
    credit_change = ZERO
    if pre.subtotal < 0:
        lines.append(
            {
                "kind": LineKind.CREDIT,
                "description": "Credit carried to your balance",
                "quantity": Decimal("1"),
                "unit_amount": -pre.subtotal,
            }
        )
        credit_change = -pre.subtotal
    elif pre.subtotal > 0 and sub.credit_balance > 0:
        applied = min(sub.credit_balance, pre.subtotal)
        lines.append(
            {
                "kind": LineKind.CREDIT,
                "description": "Credit balance applied",
                "quantity": Decimal("1"),
                "unit_amount": -applied,
            }
        )
        credit_change = -applied

    totals = compute_invoice_totals(
        [LineInput(x["quantity"], x["unit_amount"]) for x in lines], profile.tax_rate, currency=currency
    )
    try:
        # Numbered in the same savepoint as the insert: a duplicate rolls the counter back too.
        with transaction.atomic():
            number = _next_number(now)
            invoice = Invoice.objects.create(
                number=number,
                status=InvoiceStatus.PAID if totals.total == 0 else InvoiceStatus.OPEN,
                finalized_at=now,
                due_at=now + timedelta(days=settings.CODEX_INVOICE_DUE_DAYS),
                paid_at=now if totals.total == 0 else None,
                tenant_id=sub.tenant_id,
                subscription=sub,
                plan=sub.plan,
                currency=currency,
                period_start=start,
                period_end=end,
                interval=sub.interval,
                bill_to={
                    "name": profile.legal_name or sub.tenant.name,
                    "address": profile.address,
                    "tax_id": profile.tax_id,
                    "email": profile.billing_email,
                },
                tax_rate=profile.tax_rate,
                subtotal=totals.subtotal,
                tax=totals.tax,
                total=totals.total,
            )
    except IntegrityError:
        logger.info("invoice for subscription %s period %s already exists", sub.pk, start)
        return None
    InvoiceLine.objects.bulk_create(
        InvoiceLine(invoice=invoice, position=i, amount=amount, **line)
        for i, (line, amount) in enumerate(zip(lines, totals.line_amounts, strict=True))
    )
    if batch is not None:
        batch.invoiced.add((sub.pk, start))
    if pending:
        PendingItem.objects.filter(pk__in=[p.pk for p in pending]).update(invoice=invoice)
    if credit_change:
        sub.credit_balance += credit_change
        sub.save(update_fields=["credit_balance"])
    return invoice


def _next_number(moment: datetime) -> str:
    """The next invoice number of the year: gapless (``billing.numbering``); the counter row stays
    locked until the caller's transaction ends and a rollback returns the number."""
    year = moment.astimezone(UTC).year
    number = next_gapless_number(counter=InvoiceCounter, year=year)
    prefix = getattr(settings, "CODEX_INVOICE_PREFIX", "CDX")
    return f"{prefix}-{year}-{number:06d}"


def _finalize(invoice: Invoice, now: datetime) -> None:
    invoice.number = _next_number(now)
    invoice.status = InvoiceStatus.OPEN
    invoice.finalized_at = now
    invoice.due_at = now + timedelta(days=getattr(settings, "CODEX_INVOICE_DUE_DAYS", 7))
    if invoice.total == 0:
        invoice.status, invoice.paid_at = InvoiceStatus.PAID, now
    invoice.save(update_fields=["number", "status", "finalized_at", "due_at", "paid_at"])
    event_emit(
        type="invoice.issued",
        data=events.invoice_data(invoice),
        resource=f"invoice:{invoice.pk}",
        tenant=invoice.tenant,
    )


def invoice_finalize(*, invoice: Invoice, actor: str, now: datetime | None = None) -> Invoice:
    """Draft -> open: assigns the next gapless number. Atomic, locked."""
    now = _now(now)
    with transaction.atomic(), schema_context(settings.PUBLIC_SCHEMA_NAME):
        invoice = _locked_invoice(invoice)
        if invoice.status != InvoiceStatus.DRAFT:
            raise BillingStateError({"status": f"Only a draft can be finalized; this invoice is {invoice.status}."})
        _finalize(invoice, now)
        tenant_services.audit_record(
            action="billing.invoice_finalized", actor=actor, tenant=invoice.tenant, target=invoice.number or ""
        )
        return invoice


def invoice_void(*, invoice: Invoice, actor: str, now: datetime | None = None) -> Invoice:
    """Draft or open (nothing paid) -> void. The number, if any, is kept: numbering stays gapless."""
    now = _now(now)
    with transaction.atomic(), schema_context(settings.PUBLIC_SCHEMA_NAME):
        invoice = _locked_invoice(invoice)
        if invoice.status not in (InvoiceStatus.DRAFT, InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
            raise BillingStateError({"status": f"A {invoice.status} invoice cannot be voided."})
        if invoice.amount_paid > 0:
            raise BillingStateError({"status": "Money was received on this invoice; refund it before voiding."})
        invoice.status, invoice.voided_at = InvoiceStatus.VOID, now
        invoice.save(update_fields=["status", "voided_at"])
        event_emit(
            type="invoice.voided",
            data=events.invoice_data(invoice),
            resource=f"invoice:{invoice.pk}",
            tenant=invoice.tenant,
        )
        # Pending proration items go back to the subscription for its next invoice.
        PendingItem.objects.filter(invoice=invoice).update(invoice=None)
        tenant_services.audit_record(
            action="billing.invoice_voided", actor=actor, tenant=invoice.tenant, target=str(invoice)
        )
        _settle_if_clear(invoice.tenant, now, actor=actor, reason=f"invoice {invoice} voided")
        return invoice


def invoice_mark_uncollectible(*, invoice: Invoice, actor: str, now: datetime | None = None) -> Invoice:
    now = _now(now)
    with transaction.atomic(), schema_context(settings.PUBLIC_SCHEMA_NAME):
        invoice = _locked_invoice(invoice)
        if invoice.status != InvoiceStatus.OPEN:
            raise BillingStateError(
                {"status": f"Only an open invoice can be uncollectible; this one is {invoice.status}."}
            )
        invoice.status = InvoiceStatus.UNCOLLECTIBLE
        invoice.save(update_fields=["status"])
        tenant_services.audit_record(
            action="billing.invoice_uncollectible", actor=actor, tenant=invoice.tenant, target=invoice.number or ""
        )
        _settle_if_clear(invoice.tenant, now, actor=actor, reason=f"invoice {invoice} written off")
        return invoice


# --- Invoice run -------------------------------------------------------------------------------------
@dataclass
class InvoiceRunResult:
    invoices: int = 0
    renewed: int = 0
    activated: int = 0
    canceled: int = 0
    skipped_locked: int = 0


def _catch_up(
    sub: Subscription, now: datetime, result: InvoiceRunResult | None = None, batch: _BatchData | None = None
) -> list[Invoice]:
    """Roll the (locked) subscription forward to ``now``: end trials, renew or cancel, invoice periods."""
    result = result or InvoiceRunResult()
    invoices: list[Invoice] = []
    for _ in range(1000):  # a bound, not a limit: one step per missed period
        previous = None
        if sub.current_period_end <= now and sub.status != SubscriptionStatus.CANCELED:
            if sub.cancel_at_period_end:
                sub.status, sub.canceled_at = SubscriptionStatus.CANCELED, sub.current_period_end
                sub.save(update_fields=["status", "canceled_at"])
                result.canceled += 1
                metering.refresh_api_blocks_on_commit()
                tenant_services.audit_record(
                    action="billing.subscription_ended", tenant=sub.tenant, target=sub.tenant.slug
                )
                break
            if sub.status == SubscriptionStatus.TRIALING:
                anchor = sub.current_period_end.replace(microsecond=0)
                sub.status, sub.billing_anchor = SubscriptionStatus.ACTIVE, anchor
                sub.current_period_start, sub.current_period_end = period_bounds(anchor, sub.interval, anchor)
                result.activated += 1
                if sub.tenant.status == TenantStatus.TRIALING:
                    tenant_services.tenant_set_status(
                        tenant=sub.tenant, status=TenantStatus.ACTIVE, reason="trial ended"
                    )
            else:
                previous = (sub.current_period_start, sub.current_period_end)
                sub.current_period_start, sub.current_period_end = period_bounds(
                    sub.anchor, sub.interval, sub.current_period_end
                )
                result.renewed += 1
            sub.save(update_fields=["status", "billing_anchor", "current_period_start", "current_period_end"])
        if sub.status not in BILLABLE_STATUSES:
            break
        invoice = _invoice_current_period(sub, now, previous, batch)
        if invoice is not None:
            invoices.append(invoice)
            result.invoices += 1
        if sub.current_period_end > now:
            break
    return invoices


def _due_subscription_ids(now: datetime, subscription_ids=None) -> list[int]:
    uninvoiced = ~Exists(
        Invoice.objects.filter(subscription=OuterRef("pk"), period_start=OuterRef("current_period_start"))
    )
    qs = Subscription.objects.filter(
        Q(current_period_end__lte=now, status__in=[SubscriptionStatus.TRIALING, *BILLABLE_STATUSES])
        | (Q(status__in=BILLABLE_STATUSES) & uninvoiced)
    )
    if subscription_ids is not None:
        qs = qs.filter(pk__in=subscription_ids)
    return list(qs.order_by("pk").values_list("pk", flat=True))


def invoice_run(*, now: datetime | None = None, subscription_ids=None) -> InvoiceRunResult:
    """Bill every subscription that is due: end trials, renew periods, cancel at period end, invoice.

    Subscriptions are locked with ``SKIP LOCKED`` (one being billed by a concurrent run is left to
    that run, which re-checks under the lock), in transactions of ``CODEX_INVOICE_RUN_BATCH``
    subscriptions. Sub-locks never wait, so the only lock a run waits on is the invoice counter:
    no deadlock between concurrent runs. Idempotent and
    safe to run many times at once: each (subscription, period) is invoiced exactly once, which the
    unique constraint guarantees even if the locking were bypassed.
    """
    now = _now(now)
    result = InvoiceRunResult()
    batch = max(1, getattr(settings, "CODEX_INVOICE_RUN_BATCH", 50))
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        due = _due_subscription_ids(now, subscription_ids)
        # One transaction per batch of subscriptions (one commit, not one per firm); a failure rolls
        # back its batch only, and the next run picks those subscriptions up again.
        for i in range(0, len(due), batch):
            ids = due[i : i + batch]
            with transaction.atomic():
                locked = list(
                    Subscription.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("plan", "tenant")
                    .filter(pk__in=ids)
                    .order_by("pk")
                )
                result.skipped_locked += len(ids) - len(locked)
                data = _BatchData.load(locked, now)  # read under the locks
                for sub in locked:
                    _catch_up(sub, now, result, data)
    return result
