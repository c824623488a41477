"""One place that answers "may this firm do X / add one more Y". The billing domain fills it out."""

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


def _plan_of(tenant):
    from .models import Subscription

    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        sub = Subscription.objects.select_related("plan").filter(tenant_id=tenant.pk).first()
    return sub.plan if sub else None


def check_can_add_seat(*, tenant) -> None:
    """Raise PlanLimitExceeded if the firm's plan has no seat left (active users + pending invites)."""
    plan = _plan_of(tenant)
    if plan is None or plan.max_seats is None:
        return
    from tenants.accounts.models import Invitation, User

    used = (
        User.objects.filter(is_active=True).count()
        + Invitation.objects.filter(accepted_at__isnull=True, revoked_at__isnull=True).count()
    )
    if used >= plan.max_seats:
        raise PlanLimitExceeded(
            f"Your {plan.name} plan includes {plan.max_seats} seat(s), all in use. Upgrade to add people.",
            limit="seats",
            allowed=plan.max_seats,
            used=used,
        )
