"""Market data shared by every firm (public schema): instruments, daily closes, FX rates."""

from __future__ import annotations

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


class Instrument(models.Model):
    symbol = models.CharField(max_length=32)
    exchange = models.CharField(max_length=16, blank=True, default="")
    name = models.CharField(max_length=200)
    asset_class = models.CharField(max_length=16, choices=AssetClass.choices, default=AssetClass.EQUITY)
    currency = models.CharField(max_length=3)
    sector = models.CharField(max_length=64, blank=True, default="")
    country = models.CharField(max_length=2, blank=True, default="", help_text="ISO 3166-1 alpha-2")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["symbol", "exchange"]
        constraints = [
            models.UniqueConstraint(Upper("symbol"), Upper("exchange"), name="instrument_symbol_exchange_unique"),
            models.CheckConstraint(condition=models.Q(currency__regex=r"^[A-Z]{3}$"), name="instrument_currency_iso"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol}{'.' + self.exchange if self.exchange else ''}"


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
