"""One portfolio: performance, value series, holdings, allocation, realised gains, the page's
dashboard, its lots and ledger."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from portfolios.market.models import Price

from .. import analytics, valuation_engine, valuations
from ..ledger import ledger_of
from ..models import CashBalance, Lot, Portfolio, Transaction
from .common import ONE, PRESETS, ZERO, _without_gc_pauses
from .firm import fx_to, latest_closes
from .loading import (
    LoadedPortfolio,
    _instrument_infos,
    _price_series,
    portfolio_data,
)
from .ranges import resolve_range


@dataclass
class PortfolioPerformance:
    portfolio: Portfolio
    performance: analytics.Performance
    benchmark_prices: analytics.PriceSeries  # the closes its benchmark return reads (decision 1310)
    instruments: dict
    valuation: valuations.ValuationInfo = valuations.NO_STATE


def _benchmark_closes(portfolio: Portfolio, start: date, end: date) -> analytics.PriceSeries:
    """The benchmark's closes of ``[start, end]`` plus the last one before (one query)."""
    if not portfolio.benchmark_id:
        return []
    return _price_series([portfolio.benchmark_id], since=start, end=end).get(portfolio.benchmark_id, [])


def _benchmark_ends(portfolio: Portfolio, start: date, end: date) -> analytics.PriceSeries:
    """The benchmark's closes that ``analytics.benchmark_return`` over ``[start, end]`` reads: the
    last one before ``start``, the first one in the range (its base when none is before) and the
    last one on or before ``end``. Its return from these is the return from every close of the
    range (the same two closes divided), read as three rows of one query instead of the range's
    thousands (decision 1310)."""
    if not portfolio.benchmark_id:
        return []
    closes = Price.objects.filter(instrument_id=portfolio.benchmark_id)
    before = closes.filter(date__lt=start).order_by("-date").values_list("date", "close")[:1]
    first = closes.filter(date__gte=start, date__lte=end).order_by("date").values_list("date", "close")[:1]
    last = closes.filter(date__lte=end).order_by("-date").values_list("date", "close")[:1]
    return sorted(set(before.union(first, last, all=True).order_by()))


def _stored_performance(
    portfolio: Portfolio, start: date, end: date, bench: analytics.PriceSeries, *, index: list | None = None
) -> analytics.Performance | None:
    """Performance over ``[start, end]`` from the valuation store (two queries over the range's
    days), or None when the store does not cover the range. ``index``: a list that receives the
    series' TWR index (computed once, for callers that chart it or cut periods from it)."""
    series = valuations.stored_series(portfolio=portfolio, start=start, end=end)
    if series is None:
        return None
    summary = valuations.stored_summary(portfolio=portfolio, start=start, end=end)
    levels = analytics.twr_index(series)
    if index is not None:
        index.extend(levels)
    return valuation_engine.performance_of(series, summary, start, end, benchmark_prices=bench or None, index=levels)


def _period_twr(
    part: analytics.ValueSeries, levels: dict[date, Decimal], last_level: Decimal | None
) -> analytics.PeriodReturn | None:
    """``analytics.twr_of(part)`` for a part of a series whose TWR index is known: with capital at
    the part's opening close, the part's daily chain is the index's growth since that close (the
    same links; equal to 27 digits), read from two levels instead of linking every day again.
    Otherwise (a part opening with no capital) the part is linked day by day as before."""
    base = levels.get(part.opening_date)
    if part.opening_value > 0 and base is not None and last_level is not None:
        return valuation_engine.return_between(part.opening_date, part.dates[-1], base, last_level)
    return analytics.twr_of(part)


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
    bench = _benchmark_ends(portfolio, s, e)
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
    *,
    portfolio: Portfolio,
    start=None,
    end=None,
    preset: str | None = None,
    today: date | None = None,
    info: valuations.ValuationInfo | None = None,
) -> tuple[analytics.ValueSeries, list[tuple[date, Decimal]], list]:
    """(daily values, TWR index, benchmark closes in the range), from the stored valuations
    (computed from the ledger only when the store does not cover the range). ``info``: the
    portfolio's ``valuation_status`` when the caller has read it (not read again)."""
    today = today or timezone.localdate()
    inception = (info or valuations.valuation_status(portfolio=portfolio)).inception
    s, e = resolve_range(inception=inception, start=start, end=end, preset=preset, today=today)
    series = valuations.stored_series(portfolio=portfolio, start=s, end=e)
    if series is None:
        series = analytics.value_series(portfolio_data(portfolio=portfolio, end=today).data, s, e)
    return series, analytics.twr_index(series), benchmark_index(_benchmark_closes(portfolio, s, e), s, e)


def benchmark_index(prices: analytics.PriceSeries, start: date, end: date) -> list[tuple[date, Decimal]]:
    """Benchmark level rebased to 1 at the close before ``start`` (carried forward daily).

    One walk along the closes (sorted by day) beside the calendar, not one search per day."""
    if not prices:
        return []
    base = analytics.price_on(prices, start - timedelta(days=1)) or analytics.price_on(prices, end)
    if base is None:
        return []
    if isinstance(prices, analytics.DatedValues):
        days, closes = prices.dates, prices.values
    else:
        days, closes = [p[0] for p in prices], [p[1] for p in prices]
    out = []
    one_day = timedelta(days=1)
    day = start - one_day
    i = bisect_right(days, day)  # closes[i - 1] is the last close on or before ``day``
    n, level_of = len(days), -1
    level = base
    while day <= end:
        while i < n and days[i] <= day:
            i += 1
        if i:
            if level_of != i:  # a new close: divided once, carried over the days without one
                level, level_of = closes[i - 1] / base, i
            out.append((day, level))
        day += one_day
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


# Today's holdings of one portfolio from the derived tables (``Holding``, ``Lot``, ``CashBalance``),
# which the ledger writes keep consistent with the ledger in their own transaction (docs/portfolios.md):
# the portfolio page prices them without replaying the ledger.
#
# Priced as ``analytics.holdings_on`` prices them: the last close on or before the day and the last
# FX rate on or before the day. Where that rule needs the ledger (an instrument with no close yet is
# valued at its last trade price; a currency with no rate at its last transaction's rate), or where
# the ledger has rows after the day asked for (the derived tables hold the whole ledger), this
# returns None and the caller replays the ledger as before.


def stored_holdings_on(
    *, portfolio: Portfolio, on: date, last_trade: date | None
) -> tuple[analytics.HoldingsSnapshot, dict[object, analytics.InstrumentInfo]] | None:
    """``(snapshot, instruments)`` at the close of ``on`` from the derived tables, or None when
    only the ledger can answer (see the comment above). ``last_trade``: the ledger's last
    day (``valuations.valuation_status`` reads it). Four queries whatever the ledger's length
    (open lots, cash, instruments, closes), five with a currency other than the base (rates)."""
    if last_trade is not None and last_trade > on:
        return None
    # A holding is the sum of its open lots (portfolios.services keeps both from one replay).
    # (opened by, acquired on, quantity, cost local, cost base) per instrument: plain rows, not models
    lots: dict[int, list[tuple]] = defaultdict(list)
    for iid, opened_by, acquired_on, quantity, cost_local, cost_base in (
        Lot.objects.filter(portfolio=portfolio, quantity__gt=0)
        .order_by("instrument_id", "acquired_on", "opened_by_id")
        .values_list("instrument_id", "opened_by_id", "acquired_on", "quantity", "cost_local", "cost_base")
    ):
        lots[iid].append((opened_by, acquired_on, quantity, cost_local, cost_base))
    held = [
        (
            iid,
            sum((lot[2] for lot in open_lots), ZERO),
            sum((lot[3] for lot in open_lots), ZERO),
            sum((lot[4] for lot in open_lots), ZERO),
        )
        for iid, open_lots in lots.items()
    ]
    cash = {c: a for c, a in CashBalance.objects.filter(portfolio=portfolio).values_list("currency", "amount") if a}
    ids = {h[0] for h in held}
    infos = _instrument_infos(ids)
    closes = latest_closes(ids, on=on)
    if any(i not in closes for i in ids):
        return None  # valued at its last trade price: the ledger's
    currencies = {infos[i].currency for i in ids} | set(cash)
    base = portfolio.base_currency
    rates = fx_to(currencies, target=base, on=on) if currencies - {base} else {base: ONE}
    if currencies - set(rates):
        return None  # valued at the last transaction's rate: the ledger's
    holdings = []
    for iid, qty, cost_local, cost_base in held:
        ccy = infos[iid].currency
        px, fx = closes[iid][1], rates[ccy]
        holdings.append(
            analytics.Holding(
                instrument_id=iid,
                currency=ccy,
                quantity=qty,
                price=px,
                fx_rate=fx,
                market_value_local=qty * px,
                market_value_base=qty * px * fx,
                cost_local=cost_local,
                cost_base=cost_base,
                lots=tuple(
                    analytics.LotHolding(opened_by, acquired_on, quantity, cost_base, quantity * px * fx)
                    for opened_by, acquired_on, quantity, _cost_local, cost_base in lots[iid]
                ),
            )
        )
    snapshot = analytics.HoldingsSnapshot(
        date=on,
        base_currency=base,
        holdings=tuple(holdings),
        cash=cash,
        cash_base={c: amount * rates[c] for c, amount in cash.items()},
    )
    return snapshot, infos


@dataclass
class Dashboard:
    """Everything the portfolio page needs. ``loaded`` is None when nothing needed the ledger
    (holdings from the derived tables, figures from the store)."""

    loaded: LoadedPortfolio | None
    snapshot: analytics.HoldingsSnapshot | None
    allocations: dict
    performance: analytics.Performance | None
    returns: list[PeriodRow]
    benchmark_index: list
    realised_by_year: dict
    valuation: valuations.ValuationInfo = valuations.NO_STATE
    instruments: dict = field(default_factory=dict)  # of the holdings
    twr_index: list = field(default_factory=list)  # of ``performance.series`` (the growth chart's)


@_without_gc_pauses
def portfolio_dashboard(*, portfolio: Portfolio, today: date | None = None) -> Dashboard:
    """Holdings, allocation by every dimension, since-inception performance, the returns table.

    Holdings come from the derived tables priced at the last close on or before ``today``
    (``stored_holdings``; the ledger is replayed only where the pricing rule needs it); the
    performance, the returns table and realised gains come from the stored valuations."""
    today = today or timezone.localdate()
    info = valuations.valuation_status(portfolio=portfolio)
    loaded = None
    stored = (
        stored_holdings_on(portfolio=portfolio, on=today, last_trade=info.last_trade)
        if info.inception and info.inception <= today
        else None
    )
    if stored is None:
        loaded = portfolio_data(portfolio=portfolio, end=today, since=today)
        if loaded.inception is None or loaded.inception > today:
            return Dashboard(loaded, None, {}, None, [], [], {}, info, dict(loaded.data.instruments))
        snap, instruments = analytics.holdings_on(loaded.data, today), dict(loaded.data.instruments)
    else:
        snap, instruments = stored
    inception = info.inception
    assert inception is not None  # a ledger that starts by today: both paths above
    holdings_data = analytics.PortfolioData(base_currency=portfolio.base_currency, txns=(), instruments=instruments)
    allocs = {
        by: analytics.allocation(holdings_data, today, by, snapshot=snap) for by in analytics.ALLOCATION_DIMENSIONS
    }
    s, e = analytics.preset_range("SI", today, inception)
    bench = _benchmark_closes(portfolio, s, e)
    index: list[tuple[date, Decimal]] = []
    perf = _stored_performance(portfolio, s, e, bench, index=index)
    if perf is None:
        full = portfolio_data(portfolio=portfolio, end=today)
        perf = analytics.performance(full.data, s, e, benchmark_prices=bench or None)
        realised = analytics.realised_gains_by_year(full.data.lot_book.realised)
        index = analytics.twr_index(perf.series)
    else:
        realised = valuations.stored_realised_by_year(portfolio=portfolio)
    levels = dict(index)
    last_level = index[-1][1] if index else None
    rows = []
    for p in PRESETS:
        ps, pe = analytics.preset_range(p, today, inception)
        part = _sub_series(perf.series, ps)
        bench_return = analytics.benchmark_return(bench, ps, pe) if bench else None
        clamped = p != "SI" and ps != analytics.preset_range(p, today)[0]
        twr = perf.twr if part is perf.series else _period_twr(part, levels, last_level)
        mwr = perf.mwr if part is perf.series else analytics.mwr_of(part)
        rows.append(PeriodRow(p, ps, pe, twr, mwr, bench_return, clamped))
    return Dashboard(
        loaded=loaded,
        snapshot=snap,
        allocations=allocs,
        performance=perf,
        returns=rows,
        benchmark_index=benchmark_index(bench, s, e),
        realised_by_year=realised,
        valuation=info,
        instruments=instruments,
        twr_index=index,
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
