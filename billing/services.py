"""Billing writes. Provisioning calls ``subscription_start_trial``; the billing domain grows here."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Plan, Subscription, SubscriptionStatus


class UnknownPlan(ValueError):
    pass


def plan_get(*, code: str) -> Plan:
    try:
        return Plan.objects.get(code=code)
    except Plan.DoesNotExist as exc:
        raise UnknownPlan(f"Unknown plan {code!r}") from exc


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


@transaction.atomic
def plans_seed() -> list[Plan]:
    """Create the default plans that are missing; operators' later edits are never overwritten."""
    from .plans import DEFAULT_PLANS

    plans = []
    for spec in DEFAULT_PLANS:
        plan, _created = Plan.objects.get_or_create(code=spec["code"], defaults=spec)
        plans.append(plan)
    return plans
