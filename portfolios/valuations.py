"""Reads of the valuation store: the API other features build on (fee billing on average daily
balance, the client portal, the portfolio pages). docs/analytics.md, "Stored valuations".

Each selector costs one query over the days asked for (the ``(portfolio, date)`` unique index),
whatever the length of the ledger. None of them writes: while a portfolio's rebuild is pending
(``valuation_status(...).updating``) they return the previous figures, never half-updated ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import connection
from django.db.models import OuterRef, Subquery, Sum
from django.db.models.functions import ExtractYear

from . import analytics
from .models import FirmValuation, Portfolio, Transaction, Valuation, ValuationCurrency, ValuationStatus
from .valuation_engine import DAY_COLUMNS, ONE_DAY, SUMMED, CurrencyClose, DayValuation, series_from_rows, summary_of

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ValuationInfo:
    """Where a portfolio's stored figures stand, for the page and the API."""

    updating: bool  # a rebuild is pending: figures shown are the previous ones
    failed: bool  # the last rebuild failed: figures shown are the previous ones
    error: str
    valued_through: date | None
    inception: date | None = None  # the ledger's first day
    last_trade: date | None = None  # the ledger's last day

    @property
    def message(self) -> str:
        if self.failed:
            return f"Figures could not be updated ({self.error}); the previous figures are shown."
        if self.updating:
            return "Figures updating: the previous figures are shown until the update is done."
        return ""


NO_STATE = ValuationInfo(updating=False, failed=False, error="", valued_through=None)


def valuation_status(*, portfolio: Portfolio) -> ValuationInfo:
    """The state of the store and the ledger's first and last days, in one query."""
    first_day = Transaction.objects.filter(portfolio=OuterRef("pk")).order_by("trade_date").values("trade_date")[:1]
    last_day = Transaction.objects.filter(portfolio=OuterRef("pk")).order_by("-trade_date").values("trade_date")[:1]
    row = (
        Portfolio.objects.filter(pk=portfolio.pk)
        .values_list(
            "valuation_state__status",
            "valuation_state__stale_from",
            "valuation_state__error",
            "valuation_state__valued_through",
            Subquery(first_day),
            Subquery(last_day),
        )
        .first()
    )
    if row is None:
        return NO_STATE
    status, stale_from, error, through, inception, last_trade = row
    return ValuationInfo(
        updating=status == ValuationStatus.UPDATING or stale_from is not None,
        failed=status == ValuationStatus.FAILED,
        error=error or "",
        valued_through=through,
        inception=inception,
        last_trade=last_trade,
    )


def portfolio_valuations(*, portfolio: Portfolio, start: date, end: date) -> list[DayValuation]:
    """The stored close of every day in ``[start, end]`` (base currency), oldest first; days not
    valued (before inception, after the last valuation) are absent. One query."""
    rows = (
        Valuation.objects.filter(portfolio=portfolio, date__gte=start, date__lte=end)
        .order_by("date")
        .values_list(*DAY_COLUMNS)
    )
    return [DayValuation(*r) for r in rows]


def portfolio_valuations_by_currency(
    *, portfolio: Portfolio, start: date, end: date
) -> dict[date, list[CurrencyClose]]:
    """Per day of ``[start, end]``, securities and cash per currency (local) and the day's rate."""
    out: dict[date, list[CurrencyClose]] = {}
    rows = (
        ValuationCurrency.objects.filter(portfolio=portfolio, date__gte=start, date__lte=end)
        .order_by("date", "currency")
        .values_list("date", "currency", "securities_local", "cash_local", "fx_rate")
    )
    for day, ccy, sec, cash, rate in rows:
        out.setdefault(day, []).append(CurrencyClose(ccy, sec, cash, rate))
    return out


def portfolio_daily_balances(*, portfolio: Portfolio, start: date, end: date) -> list[tuple[date, Decimal]]:
    """``(day, value in base)`` for every calendar day of ``[start, end]``: 0 before inception,
    the last stored value carried over days not valued yet. What an average-daily-balance fee
    reads. One query."""
    stored = dict(
        Valuation.objects.filter(portfolio=portfolio, date__gte=start, date__lte=end)
        .order_by("date")
        .values_list("date", "value")
    )
    out, last, day = [], ZERO, start
    while day <= end:
        last = stored.get(day, last)
        out.append((day, last))
        day += ONE_DAY
    return out


def stored_series(*, portfolio: Portfolio, start: date, end: date) -> analytics.ValueSeries | None:
    """The ``analytics.ValueSeries`` of ``[start, end]`` from the store, or None when the store
    does not cover the range (``valuation_engine.series_from_rows``). One query.

    Read as plain rows, each figure without the trailing zeros of its column's 40 decimal places
    (PostgreSQL's ``trim_scale``: the same number, ``5002487.329`` rather than a 47-digit
    ``5002487.3290000…``, so shorter to parse and to compute on): ten years are 3,652 rows, and
    the ORM's per-row work and the long decimals were a third of the since-inception
    performance's CPU (decision 1310)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT date, trim_scale(value), trim_scale(net_flows), market_day "  # noqa: S608 (a model's table)
            f"FROM {Valuation._meta.db_table} WHERE portfolio_id = %s AND date >= %s AND date <= %s ORDER BY date",
            [portfolio.pk, start - ONE_DAY, end],
        )
        rows = cursor.fetchall()
    return series_from_rows(rows, start=start, end=end, base_currency=portfolio.base_currency)


def stored_summary(*, portfolio: Portfolio, start: date, end: date) -> analytics.PeriodSummary:
    """Realised gains, income, fees, taxes, deposits and withdrawals over ``[start, end]``: one
    aggregate over the range's stored days."""
    totals = Valuation.objects.filter(portfolio=portfolio, date__gte=start, date__lte=end).aggregate(
        **{c: Sum(c) for c in SUMMED}
    )
    return summary_of(totals)


def stored_realised_by_year(*, portfolio: Portfolio) -> dict[int, analytics.YearGains]:
    """Realised gains per calendar year of disposal, from the store. One query."""
    rows = (
        Valuation.objects.filter(portfolio=portfolio)
        .exclude(realised_short=0, realised_long=0)
        .annotate(year=ExtractYear("date"))
        .values("year")
        .annotate(short=Sum("realised_short"), long=Sum("realised_long"))
        .order_by("year")
        .values_list("year", "short", "long")
    )
    return {y: analytics.YearGains(short=s, long=lg) for y, s, lg in rows}


@dataclass(frozen=True, slots=True)
class FirmDay:
    """The firm's stored close of one day for the portfolios of one base currency (not archived)."""

    date: date
    currency: str
    value: Decimal
    net_flows: Decimal
    cash: Decimal
    portfolios: int


def firm_valuations(*, start: date, end: date) -> list[FirmDay]:
    """The firm's stored totals of every day in ``[start, end]``, one row per day and base
    currency, oldest first (``FirmValuation``, docs/decisions/0920). One query over the days
    asked for, whatever the number of portfolios."""
    rows = (
        FirmValuation.objects.filter(date__gte=start, date__lte=end)
        .order_by("date", "currency")
        .values_list("date", "currency", "value", "net_flows", "cash", "portfolios")
    )
    return [FirmDay(*r) for r in rows]


def portfolios_closes(
    *, portfolio_ids: list[int], start: date, end: date
) -> dict[int, dict[date, tuple[Decimal, Decimal]]]:
    """``{portfolio id: {day: (value, cash)}}`` of the stored closes in ``[start, end]`` of many
    portfolios in one query (base currency; days not valued are absent, as in
    ``portfolio_valuations``). What a fee run over thousands of accounts reads (issue 21)."""
    out: dict[int, dict[date, tuple[Decimal, Decimal]]] = {pid: {} for pid in portfolio_ids}
    rows = Valuation.objects.filter(portfolio_id__in=portfolio_ids, date__gte=start, date__lte=end).values_list(
        "portfolio_id", "date", "value", "cash"
    )
    for pid, day, value, cash in rows:
        out[pid][day] = (value, cash)
    return out
