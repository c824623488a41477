"""Market data reads. Pure functions of the database state."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Case, DateField, F, OuterRef, Q, QuerySet, Subquery, Value, When, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from .models import SHARED, FeedRun, FxRate, Instrument, Price


def stale_thresholds(today: date | None = None) -> tuple[date, date]:
    """A close older than these dates is stale: (shared instruments, firm instruments)."""
    today = today or timezone.localdate()
    return (
        today - timedelta(days=settings.MARKET_STALE_AFTER_DAYS),
        today - timedelta(days=settings.MARKET_FIRM_STALE_AFTER_DAYS),
    )


def instrument_list() -> QuerySet[Instrument]:
    """Instruments this schema sees (shared + the firm's own) with their latest close, its date,
    and ``stale_since`` (that date, when older than expected; also set when there is no close at
    all, to the instrument's creation day). Two correlated subqueries, one query."""
    latest = Price.objects.filter(instrument=OuterRef("pk")).order_by("-date")
    shared_before, firm_before = stale_thresholds()
    return Instrument.objects.annotate(
        last_close=Subquery(latest.values("close")[:1]), last_date=Subquery(latest.values("date")[:1])
    ).annotate(
        stale_since=Case(
            When(Q(last_date__isnull=True, is_active=True), then=F("created_at__date")),
            When(Q(owner=SHARED, is_active=True, last_date__lt=shared_before), then=F("last_date")),
            When(Q(is_active=True, last_date__lt=firm_before) & ~Q(owner=SHARED), then=F("last_date")),
            default=Value(None),
            output_field=DateField(),
        )
    )


def feed_runs_for_firm() -> QuerySet[FeedRun]:
    return FeedRun.objects.order_by("-started_at", "-id")


def price_series(*, instrument: Instrument, start: date | None = None, end: date | None = None) -> QuerySet[Price]:
    prices = Price.objects.filter(instrument=instrument).order_by("date")
    if start:
        prices = prices.filter(date__gte=start)
    if end:
        prices = prices.filter(date__lte=end)
    return prices


def latest_closes(*, instrument_ids, count: int = 2) -> dict[int, list[tuple[date, Decimal]]]:
    """The last ``count`` closes (newest first) of each instrument, in one query."""

    ranked = (
        Price.objects.filter(instrument_id__in=list(instrument_ids))
        .annotate(rank=Window(RowNumber(), partition_by=[F("instrument_id")], order_by=F("date").desc()))
        .filter(rank__lte=count)
        .order_by("instrument_id", "-date")
        .values_list("instrument_id", "date", "close")
    )
    closes: dict[int, list[tuple[date, Decimal]]] = {}
    for instrument_id, day, close in ranked:
        closes.setdefault(instrument_id, []).append((day, close))
    return closes


def fx_rate_list() -> QuerySet[FxRate]:
    return FxRate.objects.order_by("base", "quote", "-date")
