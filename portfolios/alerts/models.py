"""Alert rules and their firings (firm schema).

A rule watches one instrument's closes (price above/below, daily move) or one portfolio's value
(drawdown). It is *armed* until its condition holds; then it fires once (an ``AlertEvent``) and
stays disarmed until the condition clears, which re-arms it. See ``portfolios/alerts/rules.py``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class RuleKind(models.TextChoices):
    PRICE_ABOVE = "price_above", "Price at or above"
    PRICE_BELOW = "price_below", "Price at or below"
    DAILY_MOVE_PCT = "daily_move_pct", "Daily move of at least (%)"
    PORTFOLIO_DRAWDOWN_PCT = "portfolio_drawdown_pct", "Portfolio drawdown of at least (%)"


INSTRUMENT_KINDS = frozenset({RuleKind.PRICE_ABOVE, RuleKind.PRICE_BELOW, RuleKind.DAILY_MOVE_PCT})
PORTFOLIO_KINDS = frozenset({RuleKind.PORTFOLIO_DRAWDOWN_PCT})
PERCENT_KINDS = frozenset({RuleKind.DAILY_MOVE_PCT, RuleKind.PORTFOLIO_DRAWDOWN_PCT})


class AlertRule(models.Model):
    kind = models.CharField(max_length=24, choices=RuleKind.choices)
    instrument = models.ForeignKey(
        "market.Instrument", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    portfolio = models.ForeignKey(
        "portfolios.Portfolio", on_delete=models.CASCADE, null=True, blank=True, related_name="alert_rules"
    )
    threshold = models.DecimalField(max_digits=20, decimal_places=6)
    note = models.CharField(max_length=200, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="alert_rules"
    )
    active = models.BooleanField(default=True)
    # State machine: armed until the condition holds, then fired and disarmed until it clears.
    armed = models.BooleanField(default=True)
    last_value = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    last_observed_on = models.DateField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(threshold__gt=0), name="alert_threshold_positive"),
            models.CheckConstraint(condition=Q(kind__in=RuleKind.values), name="alert_kind_valid"),
            models.CheckConstraint(
                condition=~Q(kind__in=sorted(k.value for k in INSTRUMENT_KINDS)) | Q(instrument__isnull=False),
                name="alert_instrument_rule_has_instrument",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=sorted(k.value for k in PORTFOLIO_KINDS)) | Q(portfolio__isnull=False),
                name="alert_portfolio_rule_has_portfolio",
            ),
            models.CheckConstraint(
                condition=Q(instrument__isnull=True) | Q(portfolio__isnull=True), name="alert_one_target"
            ),
        ]
        indexes = [models.Index(fields=["active", "kind"], name="alert_rule_active_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.threshold.normalize():f}"

    @property
    def is_percent(self) -> bool:
        return self.kind in PERCENT_KINDS


class AlertEvent(models.Model):
    """One firing of a rule: the observed value and a message people can read."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="events")
    fired_at = models.DateTimeField()
    observed_on = models.DateField(help_text="The date of the price (or value) that crossed the threshold.")
    value = models.DecimalField(max_digits=20, decimal_places=6)
    message = models.CharField(max_length=500)

    class Meta:
        ordering = ["-fired_at", "-id"]
        indexes = [models.Index(fields=["rule", "-fired_at"], name="alert_event_rule_idx")]

    def __str__(self) -> str:
        return self.message


class AlertNotification(models.Model):
    """An event as one person's in-app notification: read state and e-mail delivery (sent once)."""

    event = models.ForeignKey(AlertEvent, on_delete=models.CASCADE, related_name="notifications")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_notifications"
    )
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-event__fired_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["event", "recipient"], name="alert_notification_once")]
        indexes = [
            models.Index(fields=["recipient"], condition=Q(read_at__isnull=True), name="alert_unread_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → user {self.recipient_id}"
