"""Billing writes: subscriptions, plan changes, invoices, payments, webhooks, dunning, usage snapshots.

Every service that changes money or state locks the rows it reads (``select_for_update``) inside one
``transaction.atomic()`` block, so concurrent callers (two invoice runs, a webhook and an operator,
two dunning runs) serialise; the database constraints (one invoice per subscription and period, one
payment per provider id, one webhook row per event id, one dunning notice per offset) are the last
line of defence. Calculations come from the pure modules ``money``, ``proration`` and ``dunning``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django_tenants.utils import schema_context

# Module import (not names): tenants.services imports this module for provisioning, so the names
# are looked up at call time, when both modules are fully loaded.
from tenants import services as tenant_services
from tenants.accounts.models import Role, User
from tenants.models import Tenant, TenantStatus

from .. import metering
from ..dunning import DunningPolicy, DunningStatus, dunning_decide
from ..models import (
    BillingInterval,
    BillingProfile,
    DunningNotice,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    Metric,
    Payment,
    PaymentKind,
    PendingItem,
    Plan,
    Subscription,
    SubscriptionStatus,
    UsageDaily,
    WebhookEvent,
)
from ..money import LineInput, compute_invoice_totals, currency_exponent, quantize_money
from ..plans import DEFAULT_PLANS
from ..proration import Interval, period_bounds, prorate_plan_change
from ..selectors import (
    api_calls_between,
    downgrade_blockers,
    firm_resource_counts,
)

logger = logging.getLogger(__name__)

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


# --- Plans -------------------------------------------------------------------------------------------
def plan_get(*, code: str) -> Plan:
    try:
        return Plan.objects.get(code=code)
    except Plan.DoesNotExist as exc:
        raise UnknownPlan(f"Unknown plan {code!r}") from exc


def plan_checked(*, plan_code: str) -> dict[str, str]:
    """Provisioning check (``tenants.registry``): the field error for an unknown plan, if any."""
    try:
        plan_get(code=plan_code)
    except UnknownPlan:
        return {"plan": f"Unknown plan “{plan_code}”."}
    return {}


@transaction.atomic
def plans_seed() -> list[Plan]:
    """Create the default plans that are missing; operators' later edits are never overwritten."""

    plans = []
    for spec in DEFAULT_PLANS:
        plan, _created = Plan.objects.get_or_create(code=spec["code"], defaults=spec)
        plans.append(plan)
    return plans


# --- Subscriptions -----------------------------------------------------------------------------------
@transaction.atomic
def subscription_start_trial_for_code(*, tenant, plan_code: str) -> Subscription:
    """Provisioning step (``tenants.registry``): the new firm's trial on the plan ``plan_code``."""
    return subscription_start_trial(tenant=tenant, plan=plan_get(code=plan_code))


@transaction.atomic
def subscription_start_trial(*, tenant, plan: Plan) -> Subscription:
    """Open a trial subscription for a new firm. Atomic; one subscription per firm (OneToOne)."""
    now = timezone.now()
    trial_days = getattr(settings, "CODEX_TRIAL_DAYS", 14)
    return Subscription.objects.create(
        tenant=tenant,
        plan=plan,
        status=SubscriptionStatus.TRIALING,
        trial_ends_at=now + timedelta(days=trial_days),
        current_period_start=now,
        current_period_end=now + timedelta(days=trial_days),
    )


def _locked_subscription(tenant) -> Subscription:
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        try:
            return Subscription.objects.select_for_update().select_related("plan", "tenant").get(tenant_id=tenant.pk)
        except Subscription.DoesNotExist:
            raise ValidationError({"plan": "This firm has no subscription."}) from None


@dataclass(frozen=True)
class PlanChangePreview:
    from_plan: Plan
    to_plan: Plan
    from_interval: str
    to_interval: str
    currency: str
    credit: Decimal
    charge: Decimal
    net: Decimal
    invoiced_now: bool
    """True when the change restarts the billing period and is invoiced at once (interval switch)."""
    next_invoice_at: datetime
    new_period_start: datetime
    new_period_end: datetime
    blockers: list[str] = field(default_factory=list)
    trial: bool = False

    @property
    def allowed(self) -> bool:
        return not self.blockers


def _validate_change(sub: Subscription, plan: Plan, interval: str) -> None:
    if interval not in BillingInterval.values:
        raise ValidationError({"interval": f"Choose one of {', '.join(BillingInterval.values)}."})
    if sub.status == SubscriptionStatus.CANCELED:
        raise BillingStateError({"plan": "The subscription has ended; reactivate it first."})
    if plan.pk == sub.plan_id and interval == sub.interval:
        raise ValidationError({"plan": f"You are already on {plan.name} ({interval}ly)."})
    if not plan.is_public:
        raise ValidationError({"plan": "That plan is not available."})
    if plan.currency.upper() != sub.plan.currency.upper():
        raise ValidationError({"plan": f"{plan.name} is billed in {plan.currency}, your plan in {sub.plan.currency}."})


def _preview(sub: Subscription, plan: Plan, interval: str, now: datetime) -> PlanChangePreview:
    blockers = downgrade_blockers(sub.tenant, plan, current=sub.plan, today=now.date())
    currency = sub.plan.currency
    if sub.status == SubscriptionStatus.TRIALING:
        zero = quantize_money(ZERO, currency)
        return PlanChangePreview(
            from_plan=sub.plan,
            to_plan=plan,
            from_interval=sub.interval,
            to_interval=interval,
            currency=currency,
            credit=zero,
            charge=zero,
            net=zero,
            invoiced_now=False,
            next_invoice_at=sub.current_period_end,
            new_period_start=sub.current_period_start,
            new_period_end=sub.current_period_end,
            blockers=blockers,
            trial=True,
        )
    result = prorate_plan_change(
        old_amount=sub.price,
        old_interval=sub.interval,
        new_amount=plan.price_for(interval),
        new_interval=interval,
        anchor=sub.anchor,
        at=now,
        currency=currency,
    )
    switch = interval != sub.interval
    return PlanChangePreview(
        from_plan=sub.plan,
        to_plan=plan,
        from_interval=sub.interval,
        to_interval=interval,
        currency=currency,
        credit=result.credit,
        charge=result.charge,
        net=result.net,
        invoiced_now=switch,
        next_invoice_at=result.new_period_start if switch else sub.current_period_end,
        new_period_start=result.new_period_start,
        new_period_end=result.new_period_end,
        blockers=blockers,
    )


def subscription_change_preview(*, tenant, plan: Plan, interval: str, now: datetime | None = None) -> PlanChangePreview:
    """What changing to ``plan``/``interval`` now would credit and charge. Writes nothing.

    Raises ValidationError (field ``plan`` or ``interval``) for an impossible change; usage that
    does not fit the new plan is reported in ``preview.blockers`` (the change itself refuses it).
    """
    now = _now(now)
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        sub = Subscription.objects.select_related("plan", "tenant").get(tenant_id=tenant.pk)
        _validate_change(sub, plan, interval)
        if sub.status in BILLABLE_STATUSES and sub.current_period_end <= now:
            # The invoice run has not rolled the period over yet: preview against the next period.
            start, end = period_bounds(sub.anchor, sub.interval, now)
            sub.current_period_start, sub.current_period_end = start, end
        return _preview(sub, plan, interval, now)


@dataclass(frozen=True)
class PlanChangeResult:
    subscription: Subscription
    preview: PlanChangePreview
    invoice: Invoice | None


def subscription_change_plan(
    *, tenant, plan: Plan, interval: str, actor: str, ip: str | None = None, now: datetime | None = None
) -> PlanChangeResult:
    """Change plan (and/or interval) at once, with proration to the second.

    - Trialing: the plan changes, the trial goes on, nothing is charged.
    - Same interval: a credit for the unused part of the old plan and a charge for the rest of the
      period on the new one become pending items on the next invoice; the period is kept.
    - Interval switch: credit as above, the billing period restarts now and is invoiced at once
      (the new plan's full price, minus the credit).
    Refuses (``DowngradeRefused``) when current usage exceeds the new plan's limits. Atomic; the
    subscription row is locked; audited as ``billing.plan_changed``.
    """
    now = _now(now)
    with transaction.atomic(), schema_context(settings.PUBLIC_SCHEMA_NAME):
        sub = _locked_subscription(tenant)
        _validate_change(sub, plan, interval)
        if sub.status in BILLABLE_STATUSES and sub.current_period_end <= now:
            _catch_up(sub, now)  # the invoice run is behind: renew (or end) first
            _validate_change(sub, plan, interval)
        preview = _preview(sub, plan, interval, now)
        if preview.blockers:
            raise DowngradeRefused({"plan": preview.blockers})
        old_plan, old_interval = sub.plan, sub.interval
        invoice = None
        if not preview.trial:
            if preview.credit:
                PendingItem.objects.create(
                    subscription=sub,
                    kind=LineKind.PRORATION_CREDIT,
                    description=f"Unused time on {old_plan.name} ({old_interval}ly) after {_fmt(now)}",
                    amount=preview.credit,
                    currency=preview.currency,
                )
            if preview.charge and not preview.invoiced_now:
                PendingItem.objects.create(
                    subscription=sub,
                    kind=LineKind.PRORATION_CHARGE,
                    description=f"Remaining time on {plan.name} ({interval}ly) from {_fmt(now)} "
                    f"to {_fmt(sub.current_period_end)}",
                    amount=preview.charge,
                    currency=preview.currency,
                )
        sub.plan, sub.interval = plan, interval
        if preview.invoiced_now:
            sub.billing_anchor = preview.new_period_start
            sub.current_period_start, sub.current_period_end = preview.new_period_start, preview.new_period_end
        sub.save(update_fields=["plan", "interval", "billing_anchor", "current_period_start", "current_period_end"])
        if preview.invoiced_now:
            invoice = _invoice_current_period(sub, now, previous_period=None)
        metering.refresh_api_blocks_on_commit()
        tenant_services.audit_record(
            action="billing.plan_changed",
            actor=actor,
            tenant=tenant,
            target=tenant.slug,
            ip=ip,
            details={
                "from": f"{old_plan.code}/{old_interval}",
                "to": f"{plan.code}/{interval}",
                "credit": str(preview.credit),
                "charge": str(preview.charge),
                "net": str(preview.net),
                "invoice": invoice.number if invoice else None,
            },
        )
        return PlanChangeResult(subscription=sub, preview=preview, invoice=invoice)


def subscription_cancel(*, tenant, actor: str, ip: str | None = None, now: datetime | None = None) -> Subscription:
    """Cancel at the end of the current period (or of the trial). Idempotent; audited."""
    now = _now(now)
    with transaction.atomic(), schema_context(settings.PUBLIC_SCHEMA_NAME):
        sub = _locked_subscription(tenant)
        if sub.status == SubscriptionStatus.CANCELED:
            raise BillingStateError({"subscription": "The subscription has already ended."})
        if not sub.cancel_at_period_end:
            sub.cancel_at_period_end = True
            sub.cancel_requested_at = now
            sub.save(update_fields=["cancel_at_period_end", "cancel_requested_at"])
            tenant_services.audit_record(
                action="billing.cancel_requested",
                actor=actor,
                tenant=tenant,
                target=tenant.slug,
                ip=ip,
                details={"ends_at": sub.current_period_end.isoformat()},
            )
        return sub


def subscription_reactivate(*, tenant, actor: str, ip: str | None = None, now: datetime | None = None) -> Subscription:
    """Undo a pending cancellation, or restart an ended subscription (new period from now, invoiced)."""
    now = _now(now)
    with transaction.atomic(), schema_context(settings.PUBLIC_SCHEMA_NAME):
        sub = _locked_subscription(tenant)
        if sub.status == SubscriptionStatus.CANCELED:
            start = now.replace(microsecond=0)
            end = period_bounds(start, sub.interval, start)[1]
            sub.status = SubscriptionStatus.ACTIVE
            sub.billing_anchor, sub.current_period_start, sub.current_period_end = start, start, end
            sub.cancel_at_period_end, sub.canceled_at, sub.cancel_requested_at = False, None, None
            sub.save()
            _invoice_current_period(sub, now, previous_period=None)
        elif sub.cancel_at_period_end:
            sub.cancel_at_period_end, sub.cancel_requested_at = False, None
            sub.save(update_fields=["cancel_at_period_end", "cancel_requested_at"])
        else:
            raise BillingStateError({"subscription": "The subscription is not canceled."})
        tenant_services.audit_record(
            action="billing.reactivated", actor=actor, tenant=tenant, target=tenant.slug, ip=ip
        )
        return sub


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
    """The next invoice number of the year. The counter row stays locked until the caller's
    transaction ends (UPDATE takes the same row lock as SELECT ... FOR UPDATE, in one round trip),
    so numbers are handed out one transaction at a time and a rollback returns the number: gapless.
    """
    year = moment.astimezone(UTC).year
    table = InvoiceCounter._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_number = last_number + 1 WHERE year = %s RETURNING last_number", [year]
        )  # noqa: S608
        row = cursor.fetchone()
        if row is None:
            # First invoice of the year: create the row (a concurrent creator wins; then lock it).
            cursor.execute(f"INSERT INTO {table} (year, last_number) VALUES (%s, 0) ON CONFLICT DO NOTHING", [year])  # noqa: S608
            cursor.execute(
                f"UPDATE {table} SET last_number = last_number + 1 WHERE year = %s RETURNING last_number", [year]
            )  # noqa: S608
            row = cursor.fetchone()
    prefix = getattr(settings, "CODEX_INVOICE_PREFIX", "CDX")
    return f"{prefix}-{year}-{row[0]:06d}"


def _finalize(invoice: Invoice, now: datetime) -> None:
    invoice.number = _next_number(now)
    invoice.status = InvoiceStatus.OPEN
    invoice.finalized_at = now
    invoice.due_at = now + timedelta(days=getattr(settings, "CODEX_INVOICE_DUE_DAYS", 7))
    if invoice.total == 0:
        invoice.status, invoice.paid_at = InvoiceStatus.PAID, now
    invoice.save(update_fields=["number", "status", "finalized_at", "due_at", "paid_at"])


def _locked_invoice(invoice: Invoice) -> Invoice:
    return Invoice.objects.select_for_update().select_related("tenant", "subscription").get(pk=invoice.pk)


def invoice_finalize(*, invoice: Invoice, actor: str, now: datetime | None = None) -> Invoice:
    """Draft -> open: assigns the next gapless number. Atomic, locked."""
    now = _now(now)
    with transaction.atomic(), schema_context(settings.PUBLIC_SCHEMA_NAME):
        invoice = _locked_invoice(invoice)
        if invoice.status != InvoiceStatus.DRAFT:
            raise BillingStateError({"status": f"Only a draft can be finalized; this invoice is {invoice.status}."})
        _finalize(invoice, now)
        tenant_services.audit_record(
            action="billing.invoice_finalized", actor=actor, tenant=invoice.tenant, target=invoice.number
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
            action="billing.invoice_uncollectible", actor=actor, tenant=invoice.tenant, target=invoice.number
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


# --- Payments ----------------------------------------------------------------------------------------
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


def _money(amount, currency: str, field_name: str = "amount") -> Decimal:
    if isinstance(amount, float | bool) or not isinstance(amount, Decimal | int):
        raise ValidationError({field_name: "Enter an amount as a decimal number."})
    rounded = quantize_money(amount, currency)
    if rounded != amount:
        raise ValidationError({field_name: f"{currency} amounts have {currency_exponent(currency)} decimals at most."})
    if rounded <= 0:
        raise ValidationError({field_name: "The amount must be more than zero."})
    return rounded


def payment_record(
    *,
    invoice: Invoice,
    amount: Decimal,
    provider: str,
    kind: str = PaymentKind.PAYMENT,
    external_id: str = "",
    actor: str = "",
    note: str = "",
    now: datetime | None = None,
) -> Payment | None:
    """Record a payment or refund on an invoice; returns None if that provider id was already recorded.

    Payments may be partial; the invoice becomes paid when nothing is left due, and then the firm is
    reactivated at once if no other overdue invoice remains. Refunds never reopen an invoice (as with
    Stripe); they are recorded and reduce the money kept. Atomic; the invoice row is locked.
    Raises ValidationError (``amount``) or BillingStateError (``status``).
    """
    now = _now(now)
    with transaction.atomic(), schema_context(settings.PUBLIC_SCHEMA_NAME):
        invoice = _locked_invoice(invoice)
        amount = _money(amount, invoice.currency)
        if external_id and Payment.objects.filter(provider=provider, kind=kind, external_id=external_id).exists():
            return None
        if kind == PaymentKind.PAYMENT:
            if invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
                raise BillingStateError({"status": f"A {invoice.status} invoice cannot take a payment."})
            if amount > invoice.amount_due:
                due = quantize_money(invoice.amount_due, invoice.currency)
                raise ValidationError({"amount": f"Only {due} {invoice.currency} is due."})
            invoice.amount_paid += amount
        elif kind == PaymentKind.REFUND:
            refundable = invoice.amount_paid - invoice.amount_refunded
            if amount > refundable:
                left = quantize_money(refundable, invoice.currency)
                raise ValidationError({"amount": f"Only {left} {invoice.currency} can be refunded."})
            invoice.amount_refunded += amount
        else:
            raise ValidationError({"kind": "Unknown payment kind."})
        try:
            with transaction.atomic():
                payment = Payment.objects.create(
                    invoice=invoice,
                    tenant_id=invoice.tenant_id,
                    kind=kind,
                    provider=provider,
                    external_id=external_id,
                    amount=amount,
                    currency=invoice.currency,
                    recorded_by=actor[:254],
                    note=note[:500],
                )
        except IntegrityError:
            return None  # the same provider id recorded concurrently
        became_paid = kind == PaymentKind.PAYMENT and invoice.amount_due == 0
        if became_paid:
            invoice.status, invoice.paid_at = InvoiceStatus.PAID, now
        invoice.save(update_fields=["amount_paid", "amount_refunded", "status", "paid_at"])
        tenant_services.audit_record(
            action=f"billing.{kind}_recorded",
            actor=actor or provider,
            tenant=invoice.tenant,
            target=invoice.number or "",
            details={"amount": str(amount), "currency": invoice.currency, "provider": provider, "id": external_id},
        )
        if became_paid:
            _settle_if_clear(invoice.tenant, now, actor=actor or provider, reason=f"invoice {invoice.number} paid")
        return payment


def invoice_mark_paid(*, invoice: Invoice, actor: str, note: str = "", now: datetime | None = None) -> Payment:
    """Operator: record a manual payment of everything still due."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        fresh = Invoice.objects.get(pk=invoice.pk)
    if fresh.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE) or fresh.amount_due <= 0:
        raise BillingStateError({"status": f"Nothing is due on this {fresh.status} invoice."})
    payment = payment_record(
        invoice=fresh,
        amount=quantize_money(fresh.amount_due, fresh.currency),
        provider="manual",
        actor=actor,
        note=note or "Marked paid by an operator",
        now=now,
    )
    if payment is None:  # only provider ids can repeat; a manual payment has none
        raise BillingStateError({"status": "This payment was already recorded."})
    return payment


# --- Webhooks ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProviderEvent:
    """A provider's event, normalised by billing.providers (no Django objects inside)."""

    provider: str
    event_id: str
    type: str
    payload: dict
    action: str  # "payment", "refund" or "ignore"
    invoice_number: str = ""
    amount_minor: int = 0
    currency: str = ""
    external_id: str = ""
    ignore_reason: str = ""
    cumulative_of: str = ""
    """Set when ``amount_minor`` is a running total for this charge id (refunds without a list):
    only the part not yet recorded is applied."""


def webhook_event_apply(*, event: ProviderEvent, now: datetime | None = None) -> tuple[bool, str]:
    """Apply a verified provider event exactly once; returns (first_time, result).

    The WebhookEvent row (unique provider + event id) is inserted in the same transaction as the
    payment it causes: a replay, even concurrent, finds the row and changes nothing; a failure rolls
    both back so the provider's retry applies it. An event that cannot apply (unknown invoice,
    currency mismatch, overpayment) is recorded with the reason for operators, never retried.
    """
    now = _now(now)
    with transaction.atomic(), schema_context(settings.PUBLIC_SCHEMA_NAME):
        try:
            with transaction.atomic():
                row = WebhookEvent.objects.create(
                    provider=event.provider, event_id=event.event_id, type=event.type, payload=event.payload
                )
        except IntegrityError:
            return False, "duplicate"
        result = _apply_event(event, now)
        row.result = result[:300]
        row.save(update_fields=["result"])
        return True, result


def _apply_event(event: ProviderEvent, now: datetime) -> str:
    if event.action == "ignore":
        return f"ignored: {event.ignore_reason or event.type}"
    invoice = Invoice.objects.filter(number=event.invoice_number).first() if event.invoice_number else None
    if invoice is None:
        return f"ignored: unknown invoice {event.invoice_number!r}"
    if event.currency.upper() != invoice.currency.upper():
        return f"rejected: currency {event.currency} does not match invoice currency {invoice.currency}"
    exponent = currency_exponent(invoice.currency)
    amount = Decimal(event.amount_minor).scaleb(-exponent)
    if event.cumulative_of:
        already = sum(
            Payment.objects.filter(
                provider=event.provider, kind=PaymentKind.REFUND, external_id__startswith=f"{event.cumulative_of}:"
            ).values_list("amount", flat=True),
            Decimal("0"),
        )
        amount -= already
        if amount <= 0:
            return f"already recorded: refunds of {event.cumulative_of} up to {already}"
    try:
        payment = payment_record(
            invoice=invoice,
            amount=amount,
            provider=event.provider,
            kind=PaymentKind.REFUND if event.action == "refund" else PaymentKind.PAYMENT,
            external_id=event.external_id,
            actor=f"{event.provider} webhook",
            note=f"{event.type} {event.event_id}",
            now=now,
        )
    except ValidationError as exc:
        return "rejected: " + "; ".join(exc.messages)
    if payment is None:
        return f"already recorded: {event.external_id}"
    return f"{payment.kind} {payment.amount} {payment.currency} on {invoice.number}"


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


def _send_dunning_email(tenant: Tenant, invoice: Invoice, offset: int) -> None:
    recipients = _billing_recipients(tenant)
    if not recipients:
        logger.warning("no billing recipient for %s", tenant.slug)
        return
    due = quantize_money(invoice.amount_due, invoice.currency)
    if offset == DunningNotice.SUSPENSION:
        subject = f"Your Codex account is suspended: invoice {invoice.number} is unpaid"
        body = (
            f"Invoice {invoice.number} ({due} {invoice.currency}) was due on {_fmt(invoice.due_at)}. "
            "Your firm's account is suspended; its data is kept. Paying the invoice reactivates it at once."
        )
    else:
        subject = f"Reminder: invoice {invoice.number} is overdue"
        body = (
            f"Invoice {invoice.number} ({due} {invoice.currency}) was due on {_fmt(invoice.due_at)}, "
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
    decision = dunning_decide(due_at=invoice.due_at, now=now, sent=sent, policy=policy)
    for offset in decision.reminders_superseded:
        DunningNotice.objects.get_or_create(invoice=invoice, offset_days=offset, defaults={"sent": False})
    for offset in decision.reminders_to_send:
        _, created = DunningNotice.objects.get_or_create(invoice=invoice, offset_days=offset)
        if created:
            result.reminders += 1
            transaction.on_commit(lambda o=offset: _send_dunning_email(tenant, invoice, o))
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
            transaction.on_commit(lambda: _send_dunning_email(tenant, invoice, DunningNotice.SUSPENSION))


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
                UsageDaily(tenant_id=tenant.pk, day=day, metric=metric, count=counts[metric])
                for metric in (Metric.SEATS, Metric.PORTFOLIOS, Metric.CONTACTS)
                if counts[metric] is not None
            ]
            UsageDaily.objects.bulk_create(
                rows, update_conflicts=True, unique_fields=["tenant", "day", "metric"], update_fields=["count"]
            )
            written += len(rows)
    return written
