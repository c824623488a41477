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

from tenants.exceptions import LimitReached

from .counters import register_resource_counter as register_resource_counter  # apps register here
from .counters import resource_count
from .selectors import effective_plan, subscription_of

BILLING_URL = "/billing/"


class PlanLimitExceeded(LimitReached):
    """A plan limit or a missing feature. ``str(exc)`` is a complete sentence for the UI that names
    the billing page; ``billing_url`` is there for a link (``<a href="{{ exc.billing_url }}">``)."""

    billing_url = BILLING_URL

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
    """The plan whose limits apply to the firm (Free once its subscription has ended), or None."""

    return effective_plan(subscription_of(tenant))


def plan_code_of(tenant) -> str | None:
    """The code of the plan whose limits apply to the firm, or None (the API throttle's source)."""
    plan = plan_of(tenant)
    return plan.code if plan is not None else None


def check_feature(*, tenant, feature: str) -> None:
    plan = plan_of(tenant)
    if plan is None or not plan.has_feature(feature):
        name = plan.name if plan else "current"
        raise PlanLimitExceeded(
            f"Your {name} plan does not include {feature}. Upgrade your plan on the Billing page ({BILLING_URL}).",
            limit=feature,
            code="feature_not_in_plan",
        )


def _count_in_firm(resource: str) -> int:
    """Current usage in the active firm schema (the counters apps registered, ``billing.counters``)."""
    return resource_count(resource) or 0


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
            f"Your {plan.name} plan allows {allowed} {resource}; you have {used}. "
            f"Upgrade your plan on the Billing page ({BILLING_URL}) to add more.",
            limit=resource,
            allowed=allowed,
            used=used,
        )


def check_can_add_seat(*, tenant) -> None:
    check_can_add(tenant=tenant, resource="seats")
