"""Plans and subscriptions (public schema). Invoices, payments and metering build on these."""

from __future__ import annotations

from decimal import Decimal

from django.db import models


class Feature(models.TextChoices):
    ALERTS = "alerts", "Alerts"
    API = "api", "API access"
    NEWSLETTER = "newsletter", "Newsletter"
    IMPORTS = "imports", "Imports"
    WEBHOOKS = "webhooks", "Webhooks"


class Plan(models.Model):
    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    price_month = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    price_year = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(max_length=3, default="USD")
    seat_price = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    included_seats = models.PositiveIntegerField(default=1)
    # Limits: null means unlimited.
    max_seats = models.PositiveIntegerField(null=True, blank=True)
    max_portfolios = models.PositiveIntegerField(null=True, blank=True)
    max_contacts = models.PositiveIntegerField(null=True, blank=True)
    max_api_calls_month = models.PositiveIntegerField(null=True, blank=True)
    features = models.JSONField(default=list, blank=True)
    is_public = models.BooleanField(default=True)
    sort_order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "price_month"]
        constraints = [
            models.CheckConstraint(condition=models.Q(price_month__gte=0), name="plan_price_month_nonneg"),
            models.CheckConstraint(condition=models.Q(price_year__gte=0), name="plan_price_year_nonneg"),
            models.CheckConstraint(condition=models.Q(seat_price__gte=0), name="plan_seat_price_nonneg"),
        ]

    def __str__(self) -> str:
        return self.name

    def has_feature(self, feature: str) -> bool:
        return feature in (self.features or [])


class SubscriptionStatus(models.TextChoices):
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    CANCELED = "canceled", "Canceled"


class BillingInterval(models.TextChoices):
    MONTH = "month", "Monthly"
    YEAR = "year", "Yearly"


class Subscription(models.Model):
    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="subscription")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.TRIALING)
    interval = models.CharField(max_length=8, choices=BillingInterval.choices, default=BillingInterval.MONTH)
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(current_period_end__gt=models.F("current_period_start")),
                name="subscription_period_positive",
            )
        ]

    def __str__(self) -> str:
        return f"{self.tenant} on {self.plan} ({self.status})"
