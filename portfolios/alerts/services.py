"""Alert writes: rules, their evaluation (the state machine in ``rules.py``), notifications.

Flow: a market import commits -> ``alerts_enqueue_all_firms`` queues ``tasks.alerts_evaluate_firm``
once per active firm, in that firm's schema -> ``alerts_evaluate`` fires the rules whose condition
now holds (one ``AlertEvent`` each, in-app notifications for the recipients) -> on commit,
``tasks.alert_event_deliver`` e-mails each recipient once and opens the CRM follow-up tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

from billing.entitlements import check_feature
from codex.db import current_schema
from codex.notifications.models import NotificationKind
from codex.notifications.services import notification_send, notifications_mark_read_for_sources
from codex.outbox.services import event_emit
from crm.services import task_create
from portfolios.access import portfolios_visible_to, sees_whole_firm
from portfolios.events import alert_data
from portfolios.market.models import Instrument
from portfolios.market.selectors import latest_closes
from portfolios.selectors import portfolio_value_series
from tenants.accounts.models import User
from tenants.links import firm_url
from tenants.models import BLOCKED_STATUSES, Tenant

from . import rules
from .models import INSTRUMENT_KINDS, PERCENT_KINDS, PORTFOLIO_KINDS, AlertEvent, AlertNotification, AlertRule, RuleKind
from .selectors import affected_portfolios, rule_is_writable_by

logger = logging.getLogger("codex.alerts")
MAX_PERCENT = Decimal(100)


# --- rules --------------------------------------------------------------------------------------------
def _require_write(actor) -> None:
    if not getattr(actor, "can_write", False):
        raise PermissionDenied("Your role may read alerts but not change them.")


def _threshold(kind: str, raw) -> Decimal:
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError({"threshold": "Enter a number."}) from None
    if not value.is_finite() or value <= 0:
        raise ValidationError({"threshold": "Enter a number above zero."})
    if kind in PERCENT_KINDS and value > MAX_PERCENT:
        raise ValidationError({"threshold": "A percentage must be at most 100."})
    if value != value.quantize(Decimal("0.000001")) or abs(value) >= Decimal(10) ** 14:
        raise ValidationError({"threshold": "Use at most 14 digits before and 6 after the decimal point."})
    return value


def _check_target(*, actor, kind: str, instrument, portfolio) -> None:
    if kind in INSTRUMENT_KINDS:
        if instrument is None:
            raise ValidationError({"instrument": "Choose the instrument to watch."})
        if portfolio is not None:
            raise ValidationError({"portfolio": "A price alert watches an instrument, not a portfolio."})
    elif kind in PORTFOLIO_KINDS:
        if portfolio is None:
            raise ValidationError({"portfolio": "Choose the portfolio to watch."})
        if instrument is not None:
            raise ValidationError({"instrument": "A drawdown alert watches a portfolio, not an instrument."})
        _check_portfolio_in_book(actor=actor, portfolio=portfolio)


def _check_portfolio_in_book(*, actor, portfolio) -> None:
    if not portfolios_visible_to(actor).filter(pk=portfolio.pk).exists():
        raise ValidationError({"portfolio": "Choose one of the portfolios in your book."})


def alert_rule_create(
    *,
    actor,
    tenant,
    kind: str,
    threshold,
    instrument: Instrument | None = None,
    portfolio=None,
    note: str = "",
    active: bool = True,
) -> AlertRule:
    """Create a rule, armed. Raises PermissionDenied (role), PlanLimitExceeded (no alerts in the
    plan) or ValidationError by field."""
    _require_write(actor)
    check_feature(tenant=tenant, feature="alerts")
    if kind not in RuleKind.values:
        raise ValidationError({"kind": "Choose a kind of alert."})
    _check_target(actor=actor, kind=kind, instrument=instrument, portfolio=portfolio)
    fields = {"portfolio": portfolio} if portfolio is not None else {}
    rule = AlertRule(
        kind=kind,
        instrument=instrument,
        threshold=_threshold(kind, threshold),
        note=(note or "").strip()[:200],
        created_by=actor if isinstance(actor, User) else None,
        active=active,
        **fields,
    )
    rule.full_clean()
    rule.save()
    return rule


def alert_rule_update(*, actor, rule: AlertRule, threshold=None, note: str | None = None, active=None) -> AlertRule:
    """Change threshold, note or active. A new threshold or a re-activation re-arms the rule, so the
    next evaluation judges it afresh."""
    _require_write(actor)
    if not rule_is_writable_by(actor, rule):
        raise PermissionDenied("Only the advisor of this book or a manager may change this alert.")
    if threshold is not None and str(threshold).strip() != "":
        new = _threshold(rule.kind, threshold)
        if new != rule.threshold:
            rule.threshold, rule.armed = new, True
    if note is not None:
        rule.note = note.strip()[:200]
    if active is not None and bool(active) != rule.active:
        rule.active = bool(active)
        rule.armed = True
    rule.full_clean()
    rule.save()
    return rule


def alert_rule_delete(*, actor, rule: AlertRule) -> None:
    _require_write(actor)
    if not rule_is_writable_by(actor, rule):
        raise PermissionDenied("Only the advisor of this book or a manager may delete this alert.")
    rule.delete()


# --- evaluation ---------------------------------------------------------------------------------------
def _subject(rule: AlertRule) -> str:
    instrument = rule.instrument
    if instrument is not None:
        return f"{instrument.symbol} ({instrument.name})"
    portfolio = rule.portfolio
    if portfolio is None:  # refused by the database: every kind has its target (alert_*_rule_has_*)
        raise ValueError(f"alert rule {rule.pk} has no instrument and no portfolio")
    return f"Portfolio {portfolio.name}"


def _observations(rules_: list[AlertRule]) -> dict[int, rules.Observation | None]:
    """One observation per rule: two queries for all instrument rules, one selector per portfolio."""
    # (rule, its instrument): the database gives every instrument rule one (alert_instrument_rule_has_instrument)
    instrument_rules = [
        (r, r.instrument_id) for r in rules_ if r.kind in INSTRUMENT_KINDS and r.instrument_id is not None
    ]
    closes = latest_closes(instrument_ids={i for _r, i in instrument_rules}, count=2)
    observed = {r.pk: rules.observe_closes(r.kind, closes.get(i, [])) for r, i in instrument_rules}
    for rule in rules_:
        if rule.kind in PORTFOLIO_KINDS:
            observed[rule.pk] = _portfolio_drawdown(rule)
    return observed


def _portfolio_drawdown(rule: AlertRule) -> rules.Observation | None:
    """Drawdown of the portfolio's time-weighted index since inception (flows are not losses)."""
    try:
        _values, index, _benchmark = portfolio_value_series(portfolio=rule.portfolio)
    except ValidationError:
        return None  # no transactions yet (or none before today): nothing to observe
    return rules.observe_drawdown(index)


def alerts_evaluate(*, now=None) -> list[AlertEvent]:
    """Evaluate every active rule of the current firm against the latest data; atomic.

    Rules are locked while evaluated, so two concurrent evaluations cannot both fire one crossing.
    Idempotent: evaluating again with no new data fires nothing. Returns the new events.
    """
    now = now or timezone.now()
    with transaction.atomic():
        active = list(
            AlertRule.objects.select_for_update(of=("self",))
            .select_related("instrument", "portfolio")
            .filter(active=True)
            .order_by("pk")
        )
        observations = _observations(active)
        events, changed = [], []
        for rule in active:
            observation = observations.get(rule.pk)
            holds = None if observation is None else rules.condition_holds(rule.kind, rule.threshold, observation.value)
            step = rules.transition(armed=rule.armed, holds=holds)
            rule.last_evaluated_at = now
            if observation is not None:
                rule.last_value, rule.last_observed_on = observation.value, observation.on
            rule.armed = step.armed
            if step.fire:
                if observation is None:  # transition() fires only on a condition that holds, seen in an observation
                    raise ValueError(f"alert rule {rule.pk} fired without an observation")
                rule.last_fired_at = now
                events.append(
                    AlertEvent(
                        rule=rule,
                        fired_at=now,
                        observed_on=observation.on,
                        value=observation.value,
                        message=rules.describe(rule.kind, _subject(rule), rule.threshold, observation)[:500],
                    )
                )
            changed.append(rule)
        AlertRule.objects.bulk_update(
            changed, ["armed", "last_value", "last_observed_on", "last_evaluated_at", "last_fired_at"], batch_size=500
        )
        AlertEvent.objects.bulk_create(events)
        for e in events:
            event_emit(type="alert.fired", data=alert_data(e), resource=f"alert_rule:{e.rule_id}")
        _notify_in_app(events)
        if events:
            ids, schema = [e.pk for e in events], current_schema()
            transaction.on_commit(lambda: _queue_delivery(schema, ids))
    return events


def _queue_delivery(schema: str, event_ids: list[int]) -> None:
    # The commit may run after the caller left the firm's schema: send from the firm's schema so
    # each task carries it. (tasks imports this module: import it when used.)
    # function-level: tasks import services: cycle listed in the acyclic contract
    from .tasks import alert_event_deliver

    with schema_context(schema):
        for event_id in event_ids:
            alert_event_deliver.delay(event_id)


def event_recipients(event: AlertEvent) -> list[User]:
    """The rule's owner and the advisors of the portfolios the event affects (active users only)."""
    ids = {event.rule.created_by_id} if event.rule.created_by_id else set()
    ids |= {p.advisor_id for p in affected_portfolios(event.rule)}
    return list(User.objects.filter(pk__in=ids, is_active=True).order_by("pk"))


def _notify_in_app(events: Iterable[AlertEvent]) -> None:
    """An alert notification per recipient (the alerts page, the e-mail) and the same notice in the
    notification centre (the bell, pushed live), one per recipient and event (source ``alert:<id>``)."""
    rows = []
    for event in events:
        recipients = event_recipients(event)
        rows += [AlertNotification(event=event, recipient=user) for user in recipients]
        notification_send(
            recipients=recipients,
            kind=NotificationKind.ALERT,
            title=event.message,
            body=f"Rule: {event.rule}",
            url="/portfolios/alerts/",
            source=alert_source(event.pk),
        )
    AlertNotification.objects.bulk_create(rows, ignore_conflicts=True)


def alert_source(event_id: int) -> str:
    return f"alert:{event_id}"


def alert_event_deliver(*, event_id: int, tenant) -> dict:
    """E-mail each recipient of the event once, and open a CRM task for the advisor of each
    affected client. Safe to retry: sent e-mails are marked, CRM tasks are idempotent per source."""
    event = AlertEvent.objects.select_related("rule", "rule__instrument").filter(pk=event_id).first()
    if event is None:
        return {"emailed": 0, "tasks": 0}
    link = firm_url(tenant.slug, "/portfolios/alerts/")
    affected = affected_portfolios(event.rule)
    emailed = 0
    pending = AlertNotification.objects.filter(event=event, emailed_at__isnull=True).values_list("pk", flat=True)
    for notification_id in list(pending):
        with transaction.atomic():
            notification = (
                AlertNotification.objects.select_for_update()
                .select_related("recipient")
                .filter(pk=notification_id, emailed_at__isnull=True)
                .first()
            )
            if notification is None or not notification.recipient.email:
                continue
            send_mail(
                f"Alert: {event.message}"[:200],
                _email_body(event, notification.recipient, affected, link),
                None,
                [notification.recipient.email],
            )
            notification.emailed_at = timezone.now()
            notification.save(update_fields=["emailed_at"])
            emailed += 1
    tasks = _open_crm_tasks(event, affected)
    return {"emailed": emailed, "tasks": tasks}


def _email_body(event: AlertEvent, recipient: User, affected: list, link: str) -> str:
    """The message, and the portfolios concerned that this recipient may see (an advisor: theirs)."""
    mine = [p for p in affected if sees_whole_firm(recipient) or p.advisor_id == recipient.pk]
    lines = [event.message, "", f"Rule: {event.rule}", f"Fired at {event.fired_at:%Y-%m-%d %H:%M} UTC."]
    if mine:
        lines += ["", "Portfolios concerned:"]
        lines += [f"- {p.name}" + (f" ({p.client})" if p.client_id else "") for p in mine]
    lines += ["", f"See your alerts: {link}", ""]
    return "\n".join(lines)


def _open_crm_tasks(event: AlertEvent, affected: list) -> int:
    """One task per affected client, for that portfolio's advisor (``crm.services.task_create``)."""
    opened = 0
    for portfolio in affected:
        if portfolio.client_id is None or portfolio.advisor_id is None or not portfolio.advisor.is_active:
            continue
        task_create(
            owner=portfolio.advisor,
            title=f"Alert for {portfolio.client}: {event.message}"[:200],
            due_date=timezone.localdate() + timedelta(days=1),
            contact=portfolio.client,
            body=f"Portfolio “{portfolio.name}”. {event.message}\nReview the position; contact the client if needed.",
            source=f"alert:{event.pk}:{portfolio.pk}",
        )
        opened += 1
    return opened


def alert_notifications_mark_read(*, user, ids: Iterable[int] | None = None) -> int:
    """Mark the user's unread notifications read (all, or those in ``ids``); returns how many."""
    qs = AlertNotification.objects.filter(recipient_id=user.pk, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    with transaction.atomic():
        event_ids = list(qs.values_list("event_id", flat=True))
        marked = AlertNotification.objects.filter(
            recipient_id=user.pk, read_at__isnull=True, event_id__in=event_ids
        ).update(read_at=timezone.now())
        # the bell shows the same notices: read here, read there
        notifications_mark_read_for_sources(user=user, sources=[alert_source(pk) for pk in event_ids])
    return marked


def alert_notifications_read_in_centre(*, sender, user, sources: list[str], **_kwargs) -> int:
    """Receiver of ``codex.notifications.signals.notifications_read``: alert notices read under the
    bell are read on the alerts page too."""
    event_ids = [int(s.split(":", 1)[1]) for s in sources if s.startswith("alert:") and s[6:].isdigit()]
    if not event_ids:
        return 0
    return AlertNotification.objects.filter(recipient_id=user.pk, read_at__isnull=True, event_id__in=event_ids).update(
        read_at=timezone.now()
    )


# --- fan-out after an import ------------------------------------------------------------------------
def firms_to_evaluate() -> list[Tenant]:
    with schema_context(get_public_schema_name()):
        return list(
            Tenant.objects.exclude(schema_name=get_public_schema_name())
            .exclude(status__in=list(BLOCKED_STATUSES))
            .order_by("pk")
        )


def alerts_enqueue_all_firms(*, kind: str = "prices", **_signal_kwargs) -> int:
    """Queue one evaluation task per active firm, each carrying that firm's schema (tenant-schemas-
    celery reads it from the connection when the task is sent). Called on commit of an import."""
    from .tasks import alerts_evaluate_firm  # tasks imports this module

    if kind == "instruments":
        return 0  # new or renamed instruments carry no prices: nothing to evaluate
    firms = firms_to_evaluate()
    for tenant in firms:
        with tenant_context(tenant):
            alerts_evaluate_firm.delay()
    logger.info("alert evaluation queued for %d firm(s) from schema %s", len(firms), current_schema())
    return len(firms)
