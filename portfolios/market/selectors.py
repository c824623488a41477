"""Market data reads. Pure functions of the database state."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db.models import F, OuterRef, QuerySet, Subquery, Window
from django.db.models.functions import RowNumber

from .models import FxRate, Instrument, Price


def instrument_list() -> QuerySet[Instrument]:
    """Instruments with their latest close and its date (two correlated subqueries, one query)."""
    latest = Price.objects.filter(instrument=OuterRef("pk")).order_by("-date")
    return Instrument.objects.annotate(
        last_close=Subquery(latest.values("close")[:1]), last_date=Subquery(latest.values("date")[:1])
    )


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
