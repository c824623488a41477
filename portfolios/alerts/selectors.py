"""Alert reads and access (docs/decisions/0150-alerts.md).

- Owners, admins, viewers and API keys see every rule and event of the firm.
- Advisors see the rules they created and the rules on portfolios of their book, plus every event
  they were notified of (a manager's price alert on a stock their clients hold reaches them).
- Writes: owners, admins and write keys on every rule; advisors on the rules they see through
  their own work (created by them, or on their book); viewers and read keys never.
- Another firm sees nothing: rules live in each firm's schema.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from portfolios.access import portfolios_visible_to, sees_whole_firm
from portfolios.models import Portfolio
from tenants.accounts.models import Role

from .models import INSTRUMENT_KINDS, AlertEvent, AlertNotification, AlertRule


def _is_advisor(user) -> bool:
    return getattr(user, "role", None) == Role.ADVISOR and getattr(user, "pk", None) is not None


def _advisor_rules_q(user) -> Q:
    return Q(created_by_id=user.pk) | Q(portfolio__in=portfolios_visible_to(user).values("pk"))


def rules_visible_to(user) -> QuerySet[AlertRule]:
    qs = AlertRule.objects.select_related("instrument", "portfolio", "created_by")
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return qs.none()
    if sees_whole_firm(user):
        return qs
    if _is_advisor(user):
        return qs.filter(_advisor_rules_q(user))
    return qs.none()


def rule_is_writable_by(user, rule: AlertRule) -> bool:
    if not getattr(user, "can_write", False):
        return False
    if sees_whole_firm(user):
        return True
    return _is_advisor(user) and AlertRule.objects.filter(_advisor_rules_q(user), pk=rule.pk).exists()


def rule_for_user(user, pk, *, write: bool = False) -> AlertRule:
    """The rule ``pk`` if ``user`` may read it (404 otherwise) and change it with ``write`` (403)."""
    try:
        pk = int(pk)
    except (TypeError, ValueError) as exc:
        raise Http404("No such alert.") from exc
    rule = rules_visible_to(user).filter(pk=pk).first()
    if rule is None:
        raise Http404("No such alert.")
    if write and not rule_is_writable_by(user, rule):
        raise PermissionDenied("Your role may read this alert but not change it.")
    return rule


def events_visible_to(user) -> QuerySet[AlertEvent]:
    qs = AlertEvent.objects.select_related("rule", "rule__instrument", "rule__portfolio")
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return qs.none()
    if sees_whole_firm(user):
        return qs
    if _is_advisor(user):
        notified = AlertNotification.objects.filter(event_id=OuterRef("pk"), recipient_id=user.pk)
        return qs.filter(Q(rule__in=rules_visible_to(user).values("pk")) | Exists(notified))
    return qs.none()


def notifications_of(user) -> QuerySet[AlertNotification]:
    if getattr(user, "pk", None) is None:
        return AlertNotification.objects.none()
    return AlertNotification.objects.filter(recipient_id=user.pk).select_related(
        "event", "event__rule", "event__rule__instrument"
    )


def unread_count(user) -> int:
    if getattr(user, "pk", None) is None:
        return 0
    return AlertNotification.objects.filter(recipient_id=user.pk, read_at__isnull=True).count()


def affected_portfolios(rule: AlertRule) -> list[Portfolio]:
    """Portfolios concerned by a rule: those holding its instrument, or its own portfolio."""
    if rule.kind in INSTRUMENT_KINDS:
        if rule.instrument_id is None:  # refused by the database (alert_instrument_rule_has_instrument)
            return []
        return list(
            Portfolio.objects.filter(archived=False, holdings__instrument_id=rule.instrument_id)
            .select_related("advisor", "client")
            .distinct()
            .order_by("pk")
        )
    if rule.portfolio_id is not None:
        return list(Portfolio.objects.select_related("advisor", "client").filter(pk=rule.portfolio_id))
    return []
