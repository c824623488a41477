"""The firm's own business (tenant schema): service packages, fee schedules, billing groups
(households), client subscriptions, fee runs, fee invoices and statements. docs/fees.md.

Exactly once per billing group and period is a partial unique constraint on ``FeeInvoice``;
invoice numbers are gapless per firm (``FeeInvoiceCounter``, locked by the issuing transaction).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TypedDict

import pghistory
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class DecimalSize(TypedDict):
    max_digits: int
    decimal_places: int


MONEY: DecimalSize = {"max_digits": 18, "decimal_places": 2}
CURRENCY_RE = r"^[A-Z]{3}$"


class FeeMethod(models.TextChoices):
    TIERED = "tiered", "Tiered (marginal)"
    BLENDED = "blended", "Blended (whole balance at the tier reached)"


class Frequency(models.TextChoices):
    MONTHLY = "monthly", "Monthly"
    QUARTERLY = "quarterly", "Quarterly"


class Timing(models.TextChoices):
    ADVANCE = "advance", "In advance (prior period's closing value)"
    ARREARS_ADB = "arrears_adb", "In arrears (average daily balance)"
    ARREARS_END = "arrears_end", "In arrears (period-end value)"


class DayCount(models.TextChoices):
    ACTUAL_365 = "actual_365", "Actual/365"
    QUARTER = "quarter", "Quarter = 1/4 year (month = 1/12)"


class Collection(models.TextChoices):
    DEDUCT = "deduct", "Deduct from the account"
    INVOICE = "invoice", "Invoice the client"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class FeeSchedule(models.Model):
    """A named schedule; its terms and exclusions live in versions with effective dates, so a
    change applies from its date and the periods before keep the old ones."""

    name = models.CharField(max_length=200, unique=True)
    currency = models.CharField(max_length=3, default="USD")
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.CheckConstraint(condition=Q(currency__regex=CURRENCY_RE), name="fee_schedule_currency")]

    def __str__(self) -> str:
        return self.name

    @property
    def current_version(self) -> FeeScheduleVersion | None:
        """The version in effect today (the firm's date), or the earliest when all start later.
        Reads ``versions`` as loaded (prefetch them for a list)."""
        today = timezone.localdate()
        versions = sorted(self.versions.all(), key=lambda v: v.effective_from)
        in_effect = [v for v in versions if v.effective_from <= today]
        return in_effect[-1] if in_effect else (versions[0] if versions else None)


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class FeeScheduleVersion(models.Model):
    schedule = models.ForeignKey(FeeSchedule, on_delete=models.CASCADE, related_name="versions")
    effective_from = models.DateField()
    method = models.CharField(max_length=8, choices=FeeMethod.choices)
    # [{"upto": "1000000.00" | null, "bps": "100"}], validated by fees.engine.validate_tiers.
    tiers = models.JSONField()
    flat_annual = models.DecimalField(**MONEY, default=Decimal(0))
    minimum_annual = models.DecimalField(**MONEY, default=Decimal(0))
    maximum_annual = models.DecimalField(**MONEY, null=True, blank=True)
    # What is not billable while this version is in effect (decision 1200): cash, positions in
    # these instruments or in instruments of these asset classes (their close is taken out of the
    # account's stored value, day by day). docs/fees.md, "Exclusions".
    exclude_cash = models.BooleanField(default=False, help_text="Cash is not billable.")
    excluded_instruments = models.ManyToManyField("market.Instrument", blank=True, related_name="+")
    excluded_asset_classes = models.JSONField(default=list, blank=True, help_text="market.AssetClass values.")

    class Meta:
        ordering = ["schedule_id", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "effective_from"], name="fee_schedule_version_once_a_day"),
            models.CheckConstraint(condition=Q(flat_annual__gte=0), name="fee_version_flat_nonneg"),
            models.CheckConstraint(condition=Q(minimum_annual__gte=0), name="fee_version_min_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} from {self.effective_from}"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Product(models.Model):
    """A service package: a flat fee per period, a fee schedule on assets, or both."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True, default="")
    currency = models.CharField(max_length=3, default="USD")
    flat_fee = models.DecimalField(**MONEY, null=True, blank=True, help_text="Per billing period.")
    fee_schedule = models.ForeignKey(FeeSchedule, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(flat_fee__isnull=False) | Q(fee_schedule__isnull=False), name="product_has_pricing"
            ),
            models.CheckConstraint(condition=Q(flat_fee__gte=0) | Q(flat_fee__isnull=True), name="product_flat_nonneg"),
        ]

    def __str__(self) -> str:
        return self.name


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class BillingGroup(models.Model):
    """Accounts billed together (a household), or one account billed alone."""

    name = models.CharField(max_length=200)
    client = models.ForeignKey("crm.Contact", on_delete=models.PROTECT, related_name="billing_groups")
    currency = models.CharField(max_length=3, help_text="Base of the combined value.")
    portfolios = models.ManyToManyField("portfolios.Portfolio", through="BillingGroupAccount", related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class BillingGroupAccount(models.Model):
    group = models.ForeignKey(BillingGroup, on_delete=models.CASCADE, related_name="accounts")
    # An account is billed in one group only, so a fee is never charged twice on it.
    portfolio = models.OneToOneField("portfolios.Portfolio", on_delete=models.PROTECT, related_name="billing_account")

    class Meta:
        ordering = ["group_id", "portfolio_id"]

    def __str__(self) -> str:
        return f"group {self.group_id}: portfolio {self.portfolio_id}"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class ClientSubscription(models.Model):
    group = models.ForeignKey(BillingGroup, on_delete=models.PROTECT, related_name="subscriptions")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="subscriptions")
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True)
    frequency = models.CharField(max_length=10, choices=Frequency.choices, default=Frequency.QUARTERLY)
    timing = models.CharField(max_length=12, choices=Timing.choices, default=Timing.ARREARS_ADB)
    day_count = models.CharField(max_length=10, choices=DayCount.choices, default=DayCount.ACTUAL_365)
    collection = models.CharField(max_length=8, choices=Collection.choices, default=Collection.INVOICE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["group_id", "starts_on", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")), name="subscription_dates"
            ),
        ]

    def __str__(self) -> str:
        return f"subscription {self.pk} to product {self.product_id}"


class RunStatus(models.TextChoices):
    PREVIEW = "preview", "Preview"
    APPROVED = "approved", "Approved"
    ISSUED = "issued", "Issued"


class FeeRun(models.Model):
    period_start = models.DateField()
    period_end = models.DateField()
    frequency = models.CharField(max_length=10, choices=Frequency.choices)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PREVIEW)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period_start", "-id"]

    def __str__(self) -> str:
        return f"fee run {self.period_start} to {self.period_end} ({self.status})"


class FeeRunItem(models.Model):
    """The preview of one billing group in a run: per account, what will be invoiced, or why not."""

    run = models.ForeignKey(FeeRun, on_delete=models.CASCADE, related_name="items")
    group = models.ForeignKey(BillingGroup, on_delete=models.CASCADE, related_name="+")
    currency = models.CharField(max_length=3)
    total = models.DecimalField(**MONEY)
    # [{"subscription", "product", "portfolio", "billable_value", "tiers", "days", "rate_bps", "fee", ...}]
    lines = models.JSONField(default=list)
    # [{"portfolio": id, "name": ..., "missing_days": ["2026-03-30", ...]}]; non-empty: not issued.
    problems = models.JSONField(default=list)
    skipped = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["run_id", "group_id"]
        constraints = [models.UniqueConstraint(fields=["run", "group"], name="fee_run_item_once")]

    def __str__(self) -> str:
        return f"run {self.run_id}: group {self.group_id}"


class FeeInvoiceCounter(models.Model):
    """The last fee invoice number of a year in this firm; gapless (billing.numbering)."""

    year = models.PositiveIntegerField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last_number}"


class InvoiceKind(models.TextChoices):
    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit_note", "Credit note"


class InvoiceStatus(models.TextChoices):
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class FeeInvoice(models.Model):
    number = models.CharField(max_length=32, unique=True)
    kind = models.CharField(max_length=12, choices=InvoiceKind.choices, default=InvoiceKind.INVOICE)
    run = models.ForeignKey(FeeRun, on_delete=models.PROTECT, null=True, blank=True, related_name="invoices")
    group = models.ForeignKey(BillingGroup, on_delete=models.PROTECT, related_name="invoices")
    client = models.ForeignKey("crm.Contact", on_delete=models.PROTECT, related_name="fee_invoices")
    period_start = models.DateField()
    period_end = models.DateField()
    issued_on = models.DateField()
    due_on = models.DateField()
    currency = models.CharField(max_length=3)
    total = models.DecimalField(**MONEY)
    collection = models.CharField(max_length=8, choices=Collection.choices)
    status = models.CharField(max_length=8, choices=InvoiceStatus.choices, default=InvoiceStatus.OPEN)
    paid_on = models.DateField(null=True, blank=True)
    void_reason = models.CharField(max_length=500, blank=True, default="")
    credit_of = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="credit_notes")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-issued_on", "-id"]
        constraints = [
            # Exactly one live invoice per billing group and period, however many runs start.
            models.UniqueConstraint(
                fields=["group", "period_start", "period_end"],
                condition=Q(kind="invoice") & ~Q(status="void"),
                name="fee_invoice_once_per_group_period",
            ),
            models.CheckConstraint(
                condition=Q(kind="credit_note", total__lte=0, credit_of__isnull=False)
                | Q(kind="invoice", total__gte=0, credit_of__isnull=True),
                name="fee_invoice_sign_by_kind",
            ),
            models.CheckConstraint(
                condition=~Q(status="void") | ~Q(void_reason=""), name="fee_invoice_void_has_reason"
            ),
        ]
        indexes = [models.Index(fields=["status", "due_on"], name="fee_invoice_due_idx")]

    def __str__(self) -> str:
        return self.number


class FeeInvoiceLine(models.Model):
    invoice = models.ForeignKey(FeeInvoice, on_delete=models.CASCADE, related_name="lines")
    subscription = models.ForeignKey(ClientSubscription, on_delete=models.PROTECT, null=True, related_name="+")
    portfolio = models.ForeignKey("portfolios.Portfolio", on_delete=models.PROTECT, null=True, related_name="+")
    description = models.CharField(max_length=300)
    billable_value = models.DecimalField(**MONEY, default=Decimal(0))
    days = models.PositiveIntegerField(default=0)
    rate_bps = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal(0))
    amount = models.DecimalField(**MONEY)
    # The ledger fee booked for "deduct from account" (removed again when the invoice is voided).
    fee_transaction = models.OneToOneField(
        "portfolios.Transaction", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["invoice_id", "id"]

    def __str__(self) -> str:
        return self.description


def statement_path(instance: FeeStatement, filename: str) -> str:
    return f"fee-statements/{instance.period_end:%Y}/{filename}"


class FeeStatement(models.Model):
    """The printable statement of one fee invoice, stored (STORAGES) for the client portal."""

    invoice = models.OneToOneField(FeeInvoice, on_delete=models.CASCADE, related_name="statement")
    client = models.ForeignKey("crm.Contact", on_delete=models.PROTECT, related_name="fee_statements")
    period_start = models.DateField()
    period_end = models.DateField()
    file = models.FileField(upload_to=statement_path)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period_end", "-id"]

    def __str__(self) -> str:
        return f"statement of invoice {self.invoice_id}"


class JobKind(models.TextChoices):
    PREVIEW = "preview", "Preview"
    ISSUE = "issue", "Issue"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class FeeRunJob(models.Model):
    """A fee run's preview or issue started on a page, done in the background (decision 1201):
    the page shows it running (progress in the cache, ``fees.services.fee_run_job_progress``)
    and how it ended. The preview's run exists once it is done; an issue names its run."""

    kind = models.CharField(max_length=8, choices=JobKind.choices)
    status = models.CharField(max_length=8, choices=JobStatus.choices, default=JobStatus.QUEUED)
    period_start = models.DateField()
    period_end = models.DateField()
    frequency = models.CharField(max_length=10, choices=Frequency.choices)
    issued_on = models.DateField(null=True, blank=True)
    run = models.ForeignKey(FeeRun, on_delete=models.CASCADE, null=True, blank=True, related_name="jobs")
    message = models.CharField(max_length=1000, blank=True, default="")
    # What a done job produced, for the API (decision 1351): a preview's run and its groups, an
    # issue's counts (groups, ready, with_problems, skipped). Empty until done.
    result = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set when queued and when a worker takes it up; a job still queued or running long after it
    # whose row is not locked by its work has lost its worker: swept ``failed`` with the reason
    # (fees.services.fee_run_jobs_sweep, decision 1220).
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One issue at a time per run: a second click finds the first one queued or running.
            models.UniqueConstraint(
                fields=["run"],
                condition=Q(kind="issue", status__in=["queued", "running"]),
                name="fee_run_job_one_issue_at_a_time",
            ),
        ]

    def __str__(self) -> str:
        return f"fee run {self.kind} job {self.pk} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in (JobStatus.QUEUED, JobStatus.RUNNING)
