"""One portfolio: performance, value series, holdings, allocation, realised gains, the page's
dashboard, its lots and ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from .. import analytics, valuation_engine, valuations
from ..ledger import ledger_of
from ..models import Lot, Portfolio, Transaction
from .common import PRESETS, _without_gc_pauses
from .loading import LoadedPortfolio, _instrument_infos, _price_series, portfolio_data
from .ranges import resolve_range


@dataclass
class PortfolioPerformance:
    portfolio: Portfolio
    performance: analytics.Performance
    benchmark_prices: analytics.PriceSeries
    instruments: dict
    valuation: valuations.ValuationInfo = valuations.NO_STATE


def _benchmark_closes(portfolio: Portfolio, start: date, end: date) -> analytics.PriceSeries:
    """The benchmark's closes of ``[start, end]`` plus the last one before (one query)."""
    if not portfolio.benchmark_id:
        return []
    return _price_series([portfolio.benchmark_id], since=start, end=end).get(portfolio.benchmark_id, [])


def _stored_performance(
    portfolio: Portfolio, start: date, end: date, bench: analytics.PriceSeries
) -> analytics.Performance | None:
    """Performance over ``[start, end]`` from the valuation store (two queries over the range's
    days), or None when the store does not cover the range."""
    series = valuations.stored_series(portfolio=portfolio, start=start, end=end)
    if series is None:
        return None
    summary = valuations.stored_summary(portfolio=portfolio, start=start, end=end)
    return valuation_engine.performance_of(series, summary, start, end, benchmark_prices=bench or None)


@_without_gc_pauses
def portfolio_performance(
    *, portfolio: Portfolio, start=None, end=None, preset: str | None = None, today: date | None = None
) -> PortfolioPerformance:
    """Value series, TWR, MWR (XIRR), benchmark, drawdown, volatility and totals over a range.

    Read from the stored valuations: the cost grows with the days of the range, not with the
    ledger. Only when the store does not cover the range (a portfolio valued before the store
    existed, a day not valued yet) are the figures computed from the ledger, by the same functions."""
    today = today or timezone.localdate()
    info = valuations.valuation_status(portfolio=portfolio)
    s, e = resolve_range(inception=info.inception, start=start, end=end, preset=preset, today=today)
    bench = _benchmark_closes(portfolio, s, e)
    perf = _stored_performance(portfolio, s, e, bench)
    if perf is None:
        loaded = portfolio_data(portfolio=portfolio, end=today)
        perf = analytics.performance(loaded.data, s, e, benchmark_prices=loaded.benchmark_prices or None)
    return PortfolioPerformance(portfolio, perf, bench, {}, info)


@dataclass
class PeriodRow:
    preset: str
    start: date
    end: date
    twr: analytics.PeriodReturn | None
    mwr: analytics.PeriodReturn | None
    benchmark: analytics.PeriodReturn | None
    clamped: bool = False  # the portfolio is younger than the period: it starts at inception


def _sub_series(series: analytics.ValueSeries, start: date) -> analytics.ValueSeries:
    """The part of a daily series from ``start`` on (opening = the close of ``start - 1``)."""
    i = (start - series.dates[0]).days
    if i <= 0:
        return series
    return analytics.ValueSeries(
        base_currency=series.base_currency,
        opening_date=series.dates[i - 1],
        opening_value=series.values[i - 1],
        dates=series.dates[i:],
        values=series.values[i:],
        flows=series.flows[i:],
        market_days=series.market_days[i:],
    )


@_without_gc_pauses
def portfolio_value_series(
    *, portfolio: Portfolio, start=None, end=None, preset: str | None = None, today: date | None = None
) -> tuple[analytics.ValueSeries, list[tuple[date, Decimal]], list]:
    """(daily values, TWR index, benchmark closes in the range), from the stored valuations
    (computed from the ledger only when the store does not cover the range)."""
    today = today or timezone.localdate()
    inception = valuations.valuation_status(portfolio=portfolio).inception
    s, e = resolve_range(inception=inception, start=start, end=end, preset=preset, today=today)
    series = valuations.stored_series(portfolio=portfolio, start=s, end=e)
    if series is None:
        series = analytics.value_series(portfolio_data(portfolio=portfolio, end=today).data, s, e)
    return series, analytics.twr_index(series), benchmark_index(_benchmark_closes(portfolio, s, e), s, e)


def benchmark_index(prices: analytics.PriceSeries, start: date, end: date) -> list[tuple[date, Decimal]]:
    """Benchmark level rebased to 1 at the close before ``start`` (carried forward daily)."""
    if not prices:
        return []
    base = analytics.price_on(prices, start - timedelta(days=1)) or analytics.price_on(prices, end)
    if base is None:
        return []
    out = []
    day = start - timedelta(days=1)
    while day <= end:
        px = analytics.price_on(prices, day)
        if px is not None:
            out.append((day, px / base))
        day += timedelta(days=1)
    return out


def portfolio_holdings(*, portfolio: Portfolio, on: date | None = None) -> tuple[analytics.HoldingsSnapshot, dict]:
    """Positions, per-lot detail and cash at the close of ``on`` (default today), with the
    instruments' descriptions. Loads only the last close and rate on or before ``on``."""
    on = on or timezone.localdate()
    loaded = portfolio_data(portfolio=portfolio, end=on, since=on)
    return analytics.holdings_on(loaded.data, on), dict(loaded.data.instruments)


def portfolio_allocation(*, portfolio: Portfolio, by: str = "asset_class", on: date | None = None) -> dict:
    if by not in analytics.ALLOCATION_DIMENSIONS:
        raise ValidationError({"by": f"Choose one of {', '.join(analytics.ALLOCATION_DIMENSIONS)}."})
    on = on or timezone.localdate()
    loaded = portfolio_data(portfolio=portfolio, end=on, since=on)
    return analytics.allocation(loaded.data, on, by)


def portfolio_realised_gains(
    *, portfolio: Portfolio, year: int | None = None
) -> tuple[dict[int, analytics.YearGains], list[analytics.RealisedLot], dict]:
    """Realised gains per calendar year (short / long term) and per disposed lot, in base
    currency at the transactions' FX rates; lots filtered to ``year`` if given. Needs no prices."""
    txns = ledger_of(portfolio=portfolio)
    book = analytics.build_lots(txns, method=portfolio.lot_method)
    lots = [r for r in book.realised if year is None or r.disposed.year == year]
    infos = _instrument_infos({r.instrument_id for r in lots})
    return analytics.realised_gains_by_year(book.realised), lots, infos


@dataclass
class Dashboard:
    """Everything the portfolio page needs (``loaded`` is None when analytics could not run)."""

    loaded: LoadedPortfolio | None
    snapshot: analytics.HoldingsSnapshot | None
    allocations: dict
    performance: analytics.Performance | None
    returns: list[PeriodRow]
    benchmark_index: list
    realised_by_year: dict
    valuation: valuations.ValuationInfo = valuations.NO_STATE


@_without_gc_pauses
def portfolio_dashboard(*, portfolio: Portfolio, today: date | None = None) -> Dashboard:
    """Holdings, allocation by every dimension, since-inception performance, the returns table.

    Holdings are priced at the last close on or before ``today`` (only those closes are read);
    the performance, the returns table and realised gains come from the stored valuations."""
    today = today or timezone.localdate()
    loaded = portfolio_data(portfolio=portfolio, end=today, since=today)
    info = valuations.valuation_status(portfolio=portfolio)
    if loaded.inception is None or loaded.inception > today:
        return Dashboard(loaded, None, {}, None, [], [], {}, info)
    snap = analytics.holdings_on(loaded.data, today)
    allocs = {by: analytics.allocation(loaded.data, today, by, snapshot=snap) for by in analytics.ALLOCATION_DIMENSIONS}
    s, e = analytics.preset_range("SI", today, loaded.inception)
    bench = _benchmark_closes(portfolio, s, e)
    perf = _stored_performance(portfolio, s, e, bench)
    if perf is None:
        full = portfolio_data(portfolio=portfolio, end=today)
        perf = analytics.performance(full.data, s, e, benchmark_prices=bench or None)
        realised = analytics.realised_gains_by_year(full.data.lot_book.realised)
    else:
        realised = valuations.stored_realised_by_year(portfolio=portfolio)
    rows = []
    for p in PRESETS:
        ps, pe = analytics.preset_range(p, today, loaded.inception)
        part = _sub_series(perf.series, ps)
        bench_return = analytics.benchmark_return(bench, ps, pe) if bench else None
        clamped = p != "SI" and ps != analytics.preset_range(p, today)[0]
        rows.append(PeriodRow(p, ps, pe, analytics.twr_of(part), analytics.mwr_of(part), bench_return, clamped))
    return Dashboard(
        loaded=loaded,
        snapshot=snap,
        allocations=allocs,
        performance=perf,
        returns=rows,
        benchmark_index=benchmark_index(bench, s, e),
        realised_by_year=realised,
        valuation=info,
    )


@_without_gc_pauses
def portfolio_analytics_bundle(*, portfolio: Portfolio, preset: str = "SI", today: date | None = None):
    """Performance + allocation (all dimensions) + value series, from one load: what the
    benchmark in ``bench/portfolio_analytics.py`` measures."""
    today = today or timezone.localdate()
    loaded = portfolio_data(portfolio=portfolio, end=today)
    s, e = resolve_range(inception=loaded.inception, preset=preset, today=today)
    perf = analytics.performance(loaded.data, s, e, benchmark_prices=loaded.benchmark_prices or None)
    snap = analytics.holdings_on(loaded.data, e)
    allocs = {by: analytics.allocation(loaded.data, e, by, snapshot=snap) for by in analytics.ALLOCATION_DIMENSIONS}
    return perf, allocs, perf.series


def lots_of(*, portfolio: Portfolio) -> QuerySet[Lot]:
    return Lot.objects.filter(portfolio=portfolio).select_related("instrument")


def transactions_of(*, portfolio: Portfolio) -> QuerySet[Transaction]:
    return Transaction.objects.filter(portfolio=portfolio).select_related("instrument")
