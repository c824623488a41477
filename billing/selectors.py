"""Billing reads: effective plan, usage meters, invoices of a firm, revenue figures for operators."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.http import Http404
from django_tenants.utils import schema_context

from .counters import RESOURCE_LIMIT_FIELDS, resource_count
from .formatting import display_money
from .models import (
    BillingInterval,
    BillingProfile,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    Metric,
    Payment,
    PaymentKind,
    Plan,
    Subscription,
    SubscriptionStatus,
    UsageDaily,
)

FALLBACK_PLAN_CODE = "free"


def tax_rate_of(tenant) -> Decimal:
    """The firm's tax rate (a fraction), 0 without a billing profile."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        rate = BillingProfile.objects.filter(tenant_id=tenant.pk).values_list("tax_rate", flat=True).first()
    return rate if rate is not None else Decimal("0")


# --- Plans and subscriptions -------------------------------------------------------------------------
def subscription_of(tenant) -> Subscription | None:
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        return Subscription.objects.select_related("plan").filter(tenant_id=tenant.pk).first()


def effective_plan(subscription: Subscription | None) -> Plan | None:
    """The plan whose limits apply: the subscribed plan, or Free once the subscription has ended."""
    if subscription is None:
        return None
    if subscription.status == SubscriptionStatus.CANCELED:
        with schema_context(settings.PUBLIC_SCHEMA_NAME):
            return Plan.objects.filter(code=FALLBACK_PLAN_CODE).first() or subscription.plan
    return subscription.plan


def plans_public() -> list[Plan]:
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        return list(Plan.objects.filter(is_public=True))


# --- Usage -------------------------------------------------------------------------------------------
def firm_resource_counts(tenant) -> dict[str, int | None]:
    """Seats, portfolios and contacts of a firm, counted in its schema."""
    with schema_context(tenant.schema_name):
        return {r: resource_count(r) for r in ("seats", "portfolios", "contacts")}


def month_bounds(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    next_first = (first + timedelta(days=32)).replace(day=1)
    return first, next_first - timedelta(days=1)


def api_calls_between(tenant_id: int, start: date, end: date, *, include_pending: bool = True) -> int:
    """API calls of a firm on days ``start..end`` (inclusive): flushed counts plus pending ones."""
    # function-level: metering (point 4's module) imports selectors: cycle listed in the acyclic contract
    from .metering import pending_for

    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        flushed = (
            UsageDaily.objects.filter(
                tenant_id=tenant_id, metric=Metric.API_CALLS, day__gte=start, day__lte=end
            ).aggregate(total=Sum("count"))["total"]
            or 0
        )
    pending = 0
    if include_pending:
        pending = pending_for(tenant_id, [start + timedelta(days=n) for n in range((end - start).days + 1)])
    return flushed + pending


def api_calls_over_limit(*, month_of: date) -> set[int]:
    """Ids of firms whose flushed API calls this month reached a hard limit (no overage price)."""
    first, last = month_bounds(month_of)
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        used = dict(
            UsageDaily.objects.filter(metric=Metric.API_CALLS, day__gte=first, day__lte=last)
            .values("tenant_id")
            .annotate(total=Sum("count"))
            .values_list("tenant_id", "total")
        )
        if not used:
            return set()
        fallback = Plan.objects.filter(code=FALLBACK_PLAN_CODE).first()
        blocked = set()
        for sub in Subscription.objects.select_related("plan").filter(tenant_id__in=used):
            plan = fallback if sub.status == SubscriptionStatus.CANCELED and fallback else sub.plan
            limit = plan.max_api_calls_month
            if limit is not None and plan.api_overage_price_per_1000 is None and used[sub.tenant_id] >= limit:
                blocked.add(sub.tenant_id)
    return blocked


def tenants_without_feature(feature: str) -> set[int]:
    """Ids of firms whose effective plan lacks ``feature`` (canceled subscriptions: the Free plan)."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        live = Subscription.objects.exclude(status=SubscriptionStatus.CANCELED).exclude(
            plan__features__contains=[feature]
        )
        ids = set(live.values_list("tenant_id", flat=True))
        fallback = Plan.objects.filter(code=FALLBACK_PLAN_CODE).first()
        if fallback is not None and not fallback.has_feature(feature):
            ids |= set(
                Subscription.objects.filter(status=SubscriptionStatus.CANCELED).values_list("tenant_id", flat=True)
            )
    return ids


@dataclass(frozen=True)
class Meter:
    key: str
    label: str
    used: int | None
    limit: int | None
    note: str = ""

    @property
    def percent(self) -> int | None:
        if self.used is None or not self.limit:
            return None
        return min(100, round(100 * self.used / self.limit))

    @property
    def over(self) -> bool:
        return self.used is not None and self.limit is not None and self.used >= self.limit


def usage_meters(tenant, *, today: date | None = None) -> list[Meter]:
    """Meters of a firm against its effective plan's limits (counts in the firm's schema)."""
    return _meters(tenant, effective_plan(subscription_of(tenant)), today=today)


def _meters(tenant, plan: Plan | None, *, today: date | None) -> list[Meter]:
    today = today or datetime.now(UTC).date()
    counts = firm_resource_counts(tenant)
    first, last = month_bounds(today)
    calls = api_calls_between(tenant.pk, first, last)

    def limit(field):
        return getattr(plan, field) if plan else None

    api_note = ""
    if plan and plan.max_api_calls_month is not None:
        api_note = (
            f"then {display_money(plan.api_overage_price_per_1000, plan.currency)} per 1,000 calls"
            if plan.api_overage_price_per_1000 is not None
            else "hard limit: further calls get 402 until next month"
        )
    return [
        Meter("seats", "Seats (active users and pending invitations)", counts["seats"], limit("max_seats")),
        Meter("portfolios", "Portfolios", counts["portfolios"], limit("max_portfolios")),
        Meter("contacts", "Contacts", counts["contacts"], limit("max_contacts")),
        Meter("api_calls", f"API calls in {today:%B %Y}", calls, limit("max_api_calls_month"), api_note),
    ]


def downgrade_blockers(tenant, plan: Plan, *, current: Plan | None = None, today: date | None = None) -> list[str]:
    """Reasons the firm's current usage does not fit in ``plan`` (empty: it fits).

    Only limits that are tighter than the ``current`` plan's are counted (an upgrade counts nothing).
    """
    today = today or datetime.now(UTC).date()

    def tighter(field_name: str) -> bool:
        new_limit = getattr(plan, field_name)
        old_limit = getattr(current, field_name) if current is not None else None
        return new_limit is not None and (old_limit is None or new_limit < old_limit)

    reasons = []
    to_count = [r for r in ("seats", "portfolios", "contacts") if tighter(RESOURCE_LIMIT_FIELDS[r])]
    if to_count:
        with schema_context(tenant.schema_name):
            counts = {r: resource_count(r) for r in to_count}
        for resource in to_count:
            allowed = getattr(plan, RESOURCE_LIMIT_FIELDS[resource])
            used = counts[resource]
            if used is not None and used > allowed:
                reasons.append(
                    f"{plan.name} allows {allowed} {resource}; you have {used}. Remove {used - allowed} first."
                )
    api_limit = plan.max_api_calls_month  # not None when tighter() says so
    if api_limit is not None and tighter("max_api_calls_month") and plan.api_overage_price_per_1000 is None:
        first, last = month_bounds(today)
        calls = api_calls_between(tenant.pk, first, last)
        if calls > api_limit:
            reasons.append(
                f"{plan.name} allows {api_limit} API calls a month; "
                f"you have made {calls} this month. Change plan next month."
            )
    # Features missing from the new plan do not block a downgrade: they switch off, data is kept.
    return reasons


@dataclass(frozen=True)
class FirmBillingSummary:
    """A firm's billing as the operators' console shows it on the firm's page."""

    subscription: Subscription | None
    plan: Plan | None  # the plan whose limits apply (Free once canceled)
    mrr: Decimal  # what the firm brings in per month now: 0 while trialing or once canceled
    mrr_after_trial: Decimal | None  # while trialing: what it will bring in once the trial ends
    currency: str
    meters: list[Meter]
    open_invoices: list[Invoice]
    open_amount: Decimal


def firm_billing_summary(*, tenant, today: date | None = None, invoices_shown: int = 10) -> FirmBillingSummary:
    """Plan, MRR (as ``revenue_overview`` counts it: base plan of active and past-due subscriptions),
    usage against the plan's limits and the open invoices (oldest due first, at most
    ``invoices_shown``; ``open_amount`` covers all of them). Reads only; a fixed number of queries."""
    subscription = subscription_of(tenant)
    plan = effective_plan(subscription)
    mrr = Decimal("0")
    after_trial = None
    if subscription is not None:
        amount = monthly_amount(subscription).quantize(Decimal("0.01"))
        if subscription.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE):
            mrr = amount
        elif subscription.status == SubscriptionStatus.TRIALING:
            after_trial = amount
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        open_qs = Invoice.objects.filter(tenant_id=tenant.pk, status=InvoiceStatus.OPEN)
        open_invoices = list(open_qs.order_by("due_at", "pk")[:invoices_shown])
        totals = open_qs.aggregate(total=Sum("total"), paid=Sum("amount_paid"))
        open_amount = (totals["total"] or Decimal("0")) - (totals["paid"] or Decimal("0"))
    return FirmBillingSummary(
        subscription=subscription,
        plan=plan,
        mrr=mrr,
        mrr_after_trial=after_trial,
        currency=plan.currency if plan is not None else "USD",
        meters=_meters(tenant, plan, today=today),
        open_invoices=open_invoices,
        open_amount=open_amount,
    )


# --- Invoices ----------------------------------------------------------------------------------------
def invoices_of(tenant):
    """Finalized invoices of a firm (drafts are the operators' business), newest first."""
    return Invoice.objects.filter(tenant_id=tenant.pk).exclude(status=InvoiceStatus.DRAFT).select_related("plan")


def firm_status_from_subscription(*, tenant) -> str | None:
    """The firm status the subscription implies (trialing, active, past_due); None without one or
    once canceled. ``tenants.registry``'s status source: lifting a suspension follows billing."""
    sub = subscription_of(tenant)
    if sub is None or sub.status == SubscriptionStatus.CANCELED:
        return None
    return str(sub.status)


def unpaid_invoice_for_blocked_page(*, tenant) -> dict:
    """The oldest open invoice of a firm, for the page its people see while it is suspended
    (``tenants.registry``'s blocked-page source): ``{"unpaid_invoice": Invoice}`` or ``{}``."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        invoice = invoices_of(tenant).filter(status=InvoiceStatus.OPEN).order_by("due_at", "id").first()
    return {"unpaid_invoice": invoice} if invoice is not None else {}


def invoice_of(tenant, pk: int) -> Invoice:
    """An invoice of this firm with its lines and payments, or Http404 (also for other firms')."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        invoice = (
            invoices_of(tenant).select_related("tenant").prefetch_related("lines", "payments").filter(pk=pk).first()
        )
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice


# --- Revenue (operators) -----------------------------------------------------------------------------
def monthly_amount(sub: Subscription) -> Decimal:
    """What a subscription brings in per month (yearly price / 12), base plan only."""
    if sub.interval == BillingInterval.YEAR:
        return sub.plan.price_year / 12
    return sub.plan.price_month


def _month_starts(now: datetime, months: int) -> list[datetime]:
    first = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    starts = [first]
    for _ in range(months - 1):
        starts.append((starts[-1] - timedelta(days=1)).replace(day=1))
    return list(reversed(starts))


@dataclass
class RevenueOverview:
    mrr: Decimal
    arr: Decimal
    paying_firms: int
    churn_rate: Decimal | None  # last full month, fraction
    months: list[str]
    mrr_by_plan: dict[str, Decimal]
    revenue_by_plan: dict[str, list[Decimal]]  # collected (payments - refunds) per month
    churned_by_month: list[int]
    currency: str
    mrr_history: list[Decimal]  # at each month start, from the invoices' base lines covering it


def revenue_overview(*, now: datetime, months: int = 12) -> RevenueOverview:
    """MRR, ARR, churn and collected revenue per plan per month (one currency: the plans')."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        live = list(
            Subscription.objects.select_related("plan").filter(
                status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE]
            )
        )
        mrr_by_plan: dict[str, Decimal] = defaultdict(Decimal)
        for sub in live:
            mrr_by_plan[sub.plan.name] += monthly_amount(sub)
        mrr = sum(mrr_by_plan.values(), Decimal("0")).quantize(Decimal("0.01"))
        starts = _month_starts(now, months)
        labels = [f"{s:%Y-%m}" for s in starts]
        revenue: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal("0")] * months)
        rows = (
            Payment.objects.filter(created_at__gte=starts[0])
            .values_list("created_at", "kind", "amount", "invoice__plan__name")
            .order_by()
        )
        for created, kind, amount, plan_name in rows:
            label = f"{created.astimezone(UTC):%Y-%m}"
            if label not in labels:
                continue
            revenue[plan_name][labels.index(label)] += amount if kind == PaymentKind.PAYMENT else -amount
        churned = [
            Subscription.objects.filter(
                canceled_at__gte=s, canceled_at__lt=(s + timedelta(days=32)).replace(day=1)
            ).count()
            for s in starts
        ]
        last_month_start = starts[-2] if months >= 2 else starts[-1]
        this_month_start = starts[-1]
        at_start = Subscription.objects.filter(created_at__lt=last_month_start).exclude(
            canceled_at__lt=last_month_start
        )
        base = at_start.exclude(status=SubscriptionStatus.TRIALING).count()
        lost = Subscription.objects.filter(canceled_at__gte=last_month_start, canceled_at__lt=this_month_start).count()
        currency = (Plan.objects.values_list("currency", flat=True).first()) or "USD"
        mrr_history = [Decimal("0")] * months
        base_lines = (
            InvoiceLine.objects.filter(
                kind=LineKind.BASE, invoice__period_end__gt=starts[0], invoice__period_start__lte=starts[-1]
            )
            .exclude(invoice__status=InvoiceStatus.VOID)
            .values_list("amount", "invoice__interval", "invoice__period_start", "invoice__period_end")
            .order_by()
        )
        for amount, interval, period_start, period_end in base_lines:
            monthly = amount / 12 if interval == BillingInterval.YEAR else amount
            for idx, start in enumerate(starts):
                if period_start <= start < period_end:
                    mrr_history[idx] += monthly
    return RevenueOverview(
        mrr=mrr,
        arr=(mrr * 12).quantize(Decimal("0.01")),
        paying_firms=sum(1 for s in live if s.plan.price_month > 0),
        churn_rate=(Decimal(lost) / Decimal(base)).quantize(Decimal("0.0001")) if base else None,
        months=labels,
        mrr_by_plan={k: v.quantize(Decimal("0.01")) for k, v in sorted(mrr_by_plan.items())},
        revenue_by_plan={k: [x.quantize(Decimal("0.01")) for x in v] for k, v in sorted(revenue.items())},
        churned_by_month=churned,
        currency=currency,
        mrr_history=[v.quantize(Decimal("0.01")) for v in mrr_history],
    )


def invoice_counts_by_status() -> dict[str, int]:
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        return dict(Invoice.objects.values_list("status").annotate(n=Count("id")).order_by())


def overdue_invoices(*, now: datetime):
    return Invoice.objects.filter(Q(status=InvoiceStatus.OPEN) & Q(due_at__lte=now)).select_related(
        "tenant", "subscription"
    )
