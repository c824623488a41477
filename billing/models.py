"""Plans and subscriptions (public schema). Invoices, payments and metering build on these."""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from codex.crypto import SealedTextField
from codex.history_tracking import track_public_record


class Feature(models.TextChoices):
    ALERTS = "alerts", "Alerts"
    API = "api", "API access"
    NEWSLETTER = "newsletter", "Newsletter"
    IMPORTS = "imports", "Imports"
    WEBHOOKS = "webhooks", "Webhooks"
    FEE_BILLING = "fee_billing", "Client fee billing"


@track_public_record()
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
    # Price per 1,000 API calls over max_api_calls_month. Null: no overage, the limit is hard (402).
    api_overage_price_per_1000 = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
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

    def price_for(self, interval: str) -> Decimal:
        return self.price_year if interval == BillingInterval.YEAR else self.price_month


class SubscriptionStatus(models.TextChoices):
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    CANCELED = "canceled", "Canceled"


class BillingInterval(models.TextChoices):
    MONTH = "month", "Monthly"
    YEAR = "year", "Yearly"


@track_public_record()
class Subscription(models.Model):
    history_firm_lookup = "tenant_id"
    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="subscription")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.TRIALING)
    interval = models.CharField(max_length=8, choices=BillingInterval.choices, default=BillingInterval.MONTH)
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    # Periods repeat from the anchor (billing/proration.py). Null on rows made before it existed:
    # current_period_start is then the anchor.
    billing_anchor = models.DateTimeField(null=True, blank=True)
    # Credit owed to the firm (a downgrade's unused time beyond an invoice), applied to next invoices.
    credit_balance = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(current_period_end__gt=models.F("current_period_start")),
                name="subscription_period_positive",
            ),
            models.CheckConstraint(condition=models.Q(credit_balance__gte=0), name="subscription_credit_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant} on {self.plan} ({self.status})"

    @property
    def anchor(self):
        return self.billing_anchor or self.current_period_start

    @property
    def price(self) -> Decimal:
        return self.plan.price_for(self.interval)


# --- Firm billing details -------------------------------------------------------------------------
@track_public_record()
class BillingProfile(models.Model):
    """Who a firm's invoices are addressed to, and the tax rate applied to them (public schema)."""

    history_firm_lookup = "tenant_id"

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="billing_profile")
    legal_name = models.CharField(max_length=200, blank=True, default="")
    address = models.TextField(blank=True, default="")
    tax_id = models.CharField("tax ID", max_length=50, blank=True, default="")
    billing_email = models.EmailField(blank=True, default="")
    # A fraction: 0.2000 is 20 %. Snapshotted on each invoice at creation.
    tax_rate = models.DecimalField(max_digits=6, decimal_places=4, default=Decimal("0"))

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(tax_rate__gte=0) & models.Q(tax_rate__lt=1), name="billingprofile_tax_rate_range"
            )
        ]

    def __str__(self) -> str:
        return f"Billing profile of {self.tenant}"


# --- Metering -------------------------------------------------------------------------------------
class Metric(models.TextChoices):
    API_CALLS = "api_calls", "API calls"
    SEATS = "seats", "Seats"
    PORTFOLIOS = "portfolios", "Portfolios"
    CONTACTS = "contacts", "Contacts"


class UsageDaily(models.Model):
    """One counter per firm, day and metric. API calls are summed; the others are daily snapshots."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    metric = models.CharField(max_length=16, choices=Metric.choices)
    count = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "daily usage"
        verbose_name_plural = "daily usage"
        ordering = ["-day", "metric"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "day", "metric"], name="usagedaily_one_row_per_day"),
            models.CheckConstraint(condition=models.Q(count__gte=0), name="usagedaily_count_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day} {self.metric}={self.count}"


# --- Invoices -------------------------------------------------------------------------------------
class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    VOID = "void", "Void"
    UNCOLLECTIBLE = "uncollectible", "Uncollectible"


class InvoiceCounter(models.Model):
    """The last invoice number used in a year. Locked with SELECT ... FOR UPDATE at finalize, so
    numbers are gapless: a rolled-back finalize rolls the counter back with it."""

    year = models.PositiveIntegerField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last_number}"


@track_public_record()
class Invoice(models.Model):
    history_firm_lookup = "tenant_id"
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="invoices")
    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="invoices")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    number = models.CharField(max_length=32, unique=True, null=True, blank=True)
    status = models.CharField(max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    currency = models.CharField(max_length=3)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    interval = models.CharField(max_length=8, choices=BillingInterval.choices)
    # Snapshot of the firm's billing details when the invoice was made.
    bill_to = models.JSONField(default=dict, blank=True)
    tax_rate = models.DecimalField(max_digits=6, decimal_places=4, default=Decimal("0"))
    subtotal = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))
    tax = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))
    total = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))
    amount_paid = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))
    amount_refunded = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))
    created_at = models.DateTimeField(auto_now_add=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start", "-id"]
        indexes = [models.Index(fields=["status", "due_at"], name="invoice_status_due")]
        constraints = [
            # Exactly one invoice per subscription and billing period: the last line of defence
            # against concurrent invoice runs.
            models.UniqueConstraint(fields=["subscription", "period_start"], name="invoice_one_per_period"),
            models.CheckConstraint(
                condition=models.Q(period_end__gt=models.F("period_start")), name="invoice_period_positive"
            ),
            models.CheckConstraint(condition=models.Q(total__gte=0), name="invoice_total_nonneg"),
            models.CheckConstraint(condition=models.Q(amount_paid__gte=0), name="invoice_paid_nonneg"),
            models.CheckConstraint(
                condition=models.Q(amount_refunded__gte=0) & models.Q(amount_refunded__lte=models.F("amount_paid")),
                name="invoice_refund_le_paid",
            ),
            models.CheckConstraint(
                condition=models.Q(status="draft") | models.Q(status="void") | models.Q(number__isnull=False),
                name="invoice_number_when_finalized",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=[s.value for s in InvoiceStatus]), name="invoice_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"Draft invoice #{self.pk}"

    @property
    def amount_due(self) -> Decimal:
        return max(self.total - self.amount_paid, Decimal("0"))


class LineKind(models.TextChoices):
    BASE = "base", "Plan"
    SEATS = "seats", "Extra seats"
    PRORATION_CREDIT = "proration_credit", "Proration credit"
    PRORATION_CHARGE = "proration_charge", "Proration charge"
    OVERAGE = "overage", "Overage"
    CREDIT = "credit", "Credit balance"


@track_public_record()
class InvoiceLine(models.Model):
    history_firm_lookup = "invoice__tenant_id"
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    kind = models.CharField(max_length=20, choices=LineKind.choices)
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("1"))
    unit_amount = models.DecimalField(max_digits=14, decimal_places=4)
    amount = models.DecimalField(max_digits=14, decimal_places=4)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["invoice", "position", "id"]

    def __str__(self) -> str:
        return self.description


class PendingItem(models.Model):
    """A charge or credit waiting for the firm's next invoice (plan-change proration)."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="pending_items")
    kind = models.CharField(max_length=20, choices=LineKind.choices)
    description = models.CharField(max_length=300)
    amount = models.DecimalField(max_digits=14, decimal_places=4)
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)
    invoice = models.ForeignKey(Invoice, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.description


# --- Payments -------------------------------------------------------------------------------------
class PaymentKind(models.TextChoices):
    PAYMENT = "payment", "Payment"
    REFUND = "refund", "Refund"


@track_public_record()
class Payment(models.Model):
    """Money received for (or refunded on) an invoice. Amounts are positive; ``kind`` says which way."""

    history_firm_lookup = "tenant_id"

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=PaymentKind.choices, default=PaymentKind.PAYMENT)
    provider = models.CharField(max_length=32)
    external_id = models.CharField(max_length=255, blank=True, default="")
    amount = models.DecimalField(max_digits=14, decimal_places=4)
    currency = models.CharField(max_length=3)
    recorded_by = models.CharField(max_length=254, blank=True, default="")
    note = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_amount_positive"),
            # A provider's payment or refund is recorded once, however many events mention it.
            models.UniqueConstraint(
                fields=["provider", "kind", "external_id"],
                condition=~models.Q(external_id=""),
                name="payment_external_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency} on {self.invoice}"


class WebhookEvent(models.Model):
    """Every provider event received, once per event id: the row is the exactly-once guard."""

    provider = models.CharField(max_length=32)
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    result = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="webhookevent_once")]

    def __str__(self) -> str:
        return f"{self.provider} {self.type} {self.event_id}"


# --- Dunning --------------------------------------------------------------------------------------
class DunningNotice(models.Model):
    """A reminder sent (or superseded) for an invoice; offset -1 is the suspension notice."""

    SUSPENSION = -1

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="dunning_notices")
    offset_days = models.IntegerField()
    sent = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["invoice", "offset_days"]
        constraints = [models.UniqueConstraint(fields=["invoice", "offset_days"], name="dunningnotice_once")]

    def __str__(self) -> str:
        return f"{self.invoice} +{self.offset_days}d"


# --- Idempotency (used by codex.api.idempotency for any app) ----------------------------------------
class IdempotencyRecord(models.Model):
    """One ``Idempotency-Key`` of one credential of a firm, and the response it got
    (``codex.api.idempotency``)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    credential = models.CharField(
        max_length=64, default="", help_text="Who sent the key: api-key:<id> or user:<id> (per firm)."
    )
    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=255, help_text="HTTP method and path the key was used on.")
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    # Superseded by response_sealed (expand: kept nullable until the contract migration).
    response_body = models.JSONField(null=True, blank=True, default=None)
    response_sealed = SealedTextField(default="", help_text="The JSON response, sealed by codex.crypto.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "credential", "key"], name="idempotency_key_once_per_credential")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.scope})"
