"""Market data (public schema): instruments, daily closes, FX rates, and the feeds' runs.

Instruments are shared by every firm, except a firm's own instruments (``owner`` = the firm's
schema name): only that firm sees them, through the default manager (decision 0970).
"""

from __future__ import annotations

import pghistory
from django.db import models
from django.db.models.functions import Upper


class AssetClass(models.TextChoices):
    EQUITY = "equity", "Equity"
    BOND = "bond", "Bond"
    FUND = "fund", "Fund"
    ETF = "etf", "ETF"
    COMMODITY = "commodity", "Commodity"
    REAL_ESTATE = "real_estate", "Real estate"
    CASH = "cash", "Cash equivalent"
    CRYPTO = "crypto", "Crypto"
    OTHER = "other", "Other"


SHARED = ""


class CurrentSchema(models.Func):
    """PostgreSQL's ``current_schema()``: the firm's schema on a firm's connection, ``public``
    otherwise. Evaluated by the database when the query runs, so a queryset built once at import
    time (a form field's, a serializer field's) still scopes to the firm of each request."""

    template = "current_schema()"
    output_field = models.CharField()


class InstrumentManager(models.Manager):
    """The instruments the current schema may see: the shared ones and, in a firm's schema, the
    firm's own. Every door (API, forms, imports, analytics) reads through it, so no firm can name
    another firm's instrument; ``Instrument.all_objects`` is for operators' and feeds' code."""

    def get_queryset(self):
        return super().get_queryset().filter(models.Q(owner=SHARED) | models.Q(owner=CurrentSchema()))


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent(), exclude=[])
class Instrument(models.Model):
    symbol = models.CharField(max_length=32)
    exchange = models.CharField(max_length=16, blank=True, default="")
    name = models.CharField(max_length=200)
    asset_class = models.CharField(max_length=16, choices=AssetClass.choices, default=AssetClass.EQUITY)
    currency = models.CharField(max_length=3)
    sector = models.CharField(max_length=64, blank=True, default="")
    country = models.CharField(max_length=2, blank=True, default="", help_text="ISO 3166-1 alpha-2")
    is_active = models.BooleanField(default=True)
    # "" for a market instrument shared by every firm; a firm's schema name for its own instrument.
    owner = models.CharField(max_length=63, blank=True, default=SHARED, db_index=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = InstrumentManager()
    all_objects = models.Manager()

    class Meta:
        ordering = ["symbol", "exchange"]
        base_manager_name = "all_objects"
        default_manager_name = "objects"
        constraints = [
            models.UniqueConstraint(
                Upper("symbol"), Upper("exchange"), "owner", name="instrument_symbol_exchange_owner_unique"
            ),
            models.CheckConstraint(condition=models.Q(currency__regex=r"^[A-Z]{3}$"), name="instrument_currency_iso"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol}{'.' + self.exchange if self.exchange else ''}"

    @property
    def is_firm_instrument(self) -> bool:
        return self.owner != SHARED


class PriceSource:
    FILE = "file"
    MANUAL = "manual"  # a firm's valuation of its own instrument, or an operator's correction


# Only manual prices are tracked: feeds write thousands of rows a day, each already audited per run.
@pghistory.track(
    pghistory.InsertEvent(condition=pghistory.Q(new__source="manual")),
    pghistory.UpdateEvent(condition=pghistory.Q(old__source="manual") | pghistory.Q(new__source="manual")),
    pghistory.DeleteEvent(condition=pghistory.Q(old__source="manual")),
    exclude=[],
)
class Price(models.Model):
    """Daily close of an instrument in its own currency, unadjusted for splits."""

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="prices")
    date = models.DateField()
    close = models.DecimalField(max_digits=20, decimal_places=6)
    source = models.CharField(max_length=32, blank=True, default="file")

    class Meta:
        ordering = ["instrument", "date"]
        constraints = [
            models.UniqueConstraint(fields=["instrument", "date"], name="price_one_per_day"),
            models.CheckConstraint(condition=models.Q(close__gt=0), name="price_positive"),
        ]
        indexes = [models.Index(fields=["date"], name="price_date_idx")]

    def __str__(self) -> str:
        return f"{self.instrument} {self.date} {self.close}"


class FxRate(models.Model):
    """How many units of ``quote`` one unit of ``base`` buys on ``date`` (e.g. EUR/USD 1.08)."""

    base = models.CharField(max_length=3)
    quote = models.CharField(max_length=3)
    date = models.DateField()
    rate = models.DecimalField(max_digits=20, decimal_places=10)
    source = models.CharField(max_length=32, blank=True, default="file")

    class Meta:
        ordering = ["base", "quote", "date"]
        constraints = [
            models.UniqueConstraint(fields=["base", "quote", "date"], name="fx_one_per_day"),
            models.CheckConstraint(condition=models.Q(rate__gt=0), name="fx_positive"),
            models.CheckConstraint(condition=~models.Q(base=models.F("quote")), name="fx_distinct_currencies"),
        ]

    def __str__(self) -> str:
        return f"{self.base}/{self.quote} {self.date} {self.rate}"


class FeedRunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    OK = "ok", "OK"
    PARTIAL = "partial", "Partly failed"
    FAILED = "failed", "Failed"


class FeedRun(models.Model):
    """One run of a market-data provider: what it was asked, what it wrote, what it refused.

    ``report`` holds one entry per instrument (or currency for FX): ``{"key", "written",
    "unchanged", "conflicts": [...], "rejected": [{"date", "reason"}], "error"}``."""

    provider = models.CharField(max_length=32)
    kind = models.CharField(max_length=8, choices=[("prices", "Prices"), ("fx", "FX rates")])
    status = models.CharField(max_length=8, choices=FeedRunStatus.choices, default=FeedRunStatus.RUNNING)
    actor = models.CharField(max_length=254, blank=True, default="")
    overwrite = models.BooleanField(default=False)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    written = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0, help_text="Instruments or currencies with any failure.")
    error = models.TextField(blank=True, default="")
    report = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["provider", "-started_at"], name="feedrun_provider_idx")]

    def __str__(self) -> str:
        return f"{self.provider} {self.kind} {self.started_at:%Y-%m-%d %H:%M} {self.status}"


class ProviderCall(models.Model):
    """One HTTP call to a market-data provider, whatever its outcome (decision 1030): who started
    the run (``beat``, ``manage.py`` or a person), which provider and URL (any key masked), what it
    was about, when, the HTTP status (0: no answer), the latency and the rows the answer held."""

    run = models.ForeignKey(FeedRun, on_delete=models.CASCADE, related_name="calls", null=True, blank=True)
    provider = models.CharField(max_length=32)
    actor = models.CharField(max_length=254, blank=True, default="")
    subject = models.CharField(max_length=64, blank=True, default="", help_text="Instrument or currency asked.")
    url = models.CharField(max_length=2000, help_text="Credential parameters are masked.")
    started_at = models.DateTimeField()
    status = models.PositiveSmallIntegerField(default=0, help_text="HTTP status; 0 when nothing answered.")
    latency_ms = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0, help_text="Rows (days) the answer held.")
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["provider", "-started_at"], name="providercall_provider_idx")]

    def __str__(self) -> str:
        return f"{self.provider} {self.started_at:%Y-%m-%d %H:%M:%S} {self.status or 'no answer'}"

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error


class CorporateAction(models.Model):
    """A split or dividend a provider reported for a shared instrument. Firms holding it see it as
    a proposed ledger entry to accept or dismiss; nothing is booked by the feed (decision 0973)."""

    class Kind(models.TextChoices):
        SPLIT = "split", "Split"
        DIVIDEND = "dividend", "Dividend"

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="corporate_actions")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    date = models.DateField(help_text="Ex-date.")
    value = models.DecimalField(
        max_digits=20, decimal_places=10, help_text="Split ratio (2 = 2-for-1) or dividend per unit."
    )
    source = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date", "instrument"]
        constraints = [
            models.UniqueConstraint(fields=["instrument", "kind", "date"], name="corporate_action_once"),
            models.CheckConstraint(condition=models.Q(value__gt=0), name="corporate_action_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.instrument} {self.date}"
