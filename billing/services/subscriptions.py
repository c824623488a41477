"""Plans and subscriptions: trials, plan changes (prorated), cancel and reactivate."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context

# Module import (not names): tenants.services imports this module for provisioning, so the names
# are looked up at call time, when both modules are fully loaded.
from codex.outbox.services import event_emit
from tenants import services as tenant_services

from .. import events, metering
from ..models import (
    BillingInterval,
    Invoice,
    LineKind,
    PendingItem,
    Plan,
    Subscription,
    SubscriptionStatus,
)
from ..money import quantize_money
from ..plans import DEFAULT_PLANS
from ..proration import period_bounds, prorate_plan_change
from ..selectors import (
    downgrade_blockers,
)
from .common import BILLABLE_STATUSES, ZERO, BillingStateError, DowngradeRefused, UnknownPlan, _fmt, _now
from .invoicing import _catch_up, _invoice_current_period


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
        event_emit(
            type="subscription.changed", data=events.subscription_data(sub), resource="subscription", tenant=tenant
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
            event_emit(
                type="subscription.changed", data=events.subscription_data(sub), resource="subscription", tenant=tenant
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
        event_emit(
            type="subscription.changed", data=events.subscription_data(sub), resource="subscription", tenant=tenant
        )
        return sub
