"""One place that answers "may this firm do X / add one more Y".

Portfolios, CRM, team, API and imports ask here; the billing issue refines the counting (metering)
but keeps these signatures:

- ``check_feature(tenant=..., feature="alerts")`` raises ``PlanLimitExceeded(code="feature_not_in_plan")``
- ``check_can_add(tenant=..., resource="portfolios", adding=1)`` raises ``PlanLimitExceeded``
  (``code="plan_limit_exceeded"``) when the firm is at its plan's limit.
- ``check_can_add_seat(tenant=...)``: seats are active users plus pending invitations.

The API maps PlanLimitExceeded to ``402 {"error": {"code": ..., "details": {limit, allowed, used}}}``
(billing.apps); pages show ``str(exc)`` and link to the billing page.
"""

from __future__ import annotations

from django.conf import settings
from django_tenants.utils import schema_context


class PlanLimitExceeded(Exception):
    def __init__(
        self,
        message: str,
        *,
        limit: str,
        allowed: int | None = None,
        used: int | None = None,
        code: str = "plan_limit_exceeded",
    ):
        super().__init__(message)
        self.limit = limit
        self.allowed = allowed
        self.used = used
        self.code = code


def plan_of(tenant):
    from .models import Subscription

    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        sub = Subscription.objects.select_related("plan").filter(tenant_id=tenant.pk).first()
    return sub.plan if sub else None


def check_feature(*, tenant, feature: str) -> None:
    plan = plan_of(tenant)
    if plan is None or not plan.has_feature(feature):
        name = plan.name if plan else "current"
        raise PlanLimitExceeded(
            f"Your {name} plan does not include {feature}. Upgrade your plan to use it.",
            limit=feature,
            code="feature_not_in_plan",
        )


def _count_in_firm(resource: str) -> int:
    """Current usage in the active firm schema."""
    if resource == "portfolios":
        from portfolios.models import Portfolio

        return Portfolio.objects.count()
    if resource == "contacts":
        from crm.models import Contact

        return Contact.objects.count()
    if resource == "seats":
        from tenants.accounts.models import Invitation, User

        return (
            User.objects.filter(is_active=True).count()
            + Invitation.objects.filter(accepted_at__isnull=True, revoked_at__isnull=True).count()
        )
    raise ValueError(f"unknown resource {resource!r}")


_LIMIT_FIELDS = {"portfolios": "max_portfolios", "contacts": "max_contacts", "seats": "max_seats"}


def check_can_add(*, tenant, resource: str, adding: int = 1) -> None:
    """Raise PlanLimitExceeded if adding ``adding`` more ``resource`` would pass the plan's limit.

    Must be called with the connection in the firm's schema (as in any firm request).
    """
    plan = plan_of(tenant)
    if plan is None:
        return
    allowed = getattr(plan, _LIMIT_FIELDS[resource])
    if allowed is None:
        return
    used = _count_in_firm(resource)
    if used + adding > allowed:
        raise PlanLimitExceeded(
            f"Your {plan.name} plan allows {allowed} {resource}; you have {used}. Upgrade to add more.",
            limit=resource,
            allowed=allowed,
            used=used,
        )


def check_can_add_seat(*, tenant) -> None:
    check_can_add(tenant=tenant, resource="seats")
