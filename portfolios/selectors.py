"""Reads of the portfolios app: load the ledger, closes and FX rates, call ``analytics``.

Each selector reads what it needs in a fixed, small number of queries (independent of the number
of transactions, instruments or days) and hands plain dataclasses to the pure
``portfolios.analytics`` module, which computes every figure (docs/analytics.md).

Over 600 lines because every read of the app loads the ledger and market data through the same
few helpers (one portfolio, lists, firm-wide exposure), so the pinned query counts are read in
one file.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import wraps

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count, Max, OuterRef, QuerySet, Subquery
from django.utils import timezone

from portfolios.market.models import FxRate, Instrument, Price

from . import analytics, valuation_engine, valuations
from .access import portfolios_visible_to
from .ledger import TXN_VALUES, ledger_currencies, ledger_of, txn_from_tuple
from .models import CashBalance, Holding, Lot, Portfolio, Transaction, Valuation

ZERO = Decimal(0)
ONE = Decimal(1)
FIRM_CURRENCY = "USD"
PRESETS = analytics.PRESETS
INSTRUMENT_FIELDS = ("id", "symbol", "name", "currency", "asset_class", "sector", "country", "exchange")


@contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while a selector builds its data.

    Loading ten years of closes creates some 400,000 tracked objects (tuples, dates, Decimals);
    the collector would walk them again and again as they are allocated, for nothing: they hold
    no reference cycles and are freed by reference counting. Measured on the benchmark portfolio
    (bench/portfolio_analytics.py, interleaved runs): about 25 % of the selector's time. The
    previous state is restored on exit, so nesting is harmless."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _without_gc_pauses(fn):
    @wraps(fn)
    def wrapper(*args, **kwargs):
        with gc_paused():
            return fn(*args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------------------------
# Portfolios as listed
# --------------------------------------------------------------------------------------------

#: The columns ``PortfolioSerializer`` reads: the portfolio's own, and one or two of each joined
#: row (a contact also carries its search vector and trigram arrays, which the list never shows).
PORTFOLIO_LIST_COLUMNS = (
    "id",
    "name",
    "client_id",
    "client__first_name",
    "client__last_name",
    "advisor_id",
    "advisor__email",
    "base_currency",
    "benchmark_id",
    "benchmark__symbol",
    "lot_method",
    "archived",
    "created_at",
    "updated_at",
)


def portfolio_list(*, user) -> QuerySet[Portfolio]:
    """The portfolios ``user`` may read (``access.portfolios_visible_to``: the whole firm, or an
    advisor's book), each with its client, advisor and benchmark joined and the ids of the users it
    is shared with (``shared_with_ids``, ascending) in the same query: one query per page whatever
    the number of rows. Lists and single portfolios of the API read it alike."""
    shared_with = Portfolio.shared_with.through.objects.filter(portfolio_id=OuterRef("pk"))
    return (
        portfolios_visible_to(user)
        .select_related("advisor", "client", "benchmark")
        .only(*PORTFOLIO_LIST_COLUMNS)
        .annotate(shared_with_ids=ArraySubquery(shared_with.order_by("user_id").values("user_id")))
    )


# --------------------------------------------------------------------------------------------
# Loading market data
# --------------------------------------------------------------------------------------------


# Dates of closes travel as day offsets from this day (integers: no DateStyle to depend on).
_DAY_ZERO = date(2000, 1, 1)
_DAY_ZERO_ORDINAL = _DAY_ZERO.toordinal()


def _array_items(text: str) -> list[str]:
    """Elements of a PostgreSQL array of numbers in its text form (``{1,2.5,3}``)."""
    return text[1:-1].split(",")


def _price_series(instrument_ids, *, since: date | None, end: date) -> dict[int, analytics.DatedValues]:
    """Closes per instrument up to ``end``; with ``since``, only from ``since`` on plus the last
    close before it (enough for carry-forward valuation from ``since + 1``).

    Speed matters here (10 years x 50 instruments = 130,000 closes): each instrument's dates and
    closes come as two arrays from one grouped query (one scan, one round trip), each array as
    one string, and are kept as two lists (``analytics.DatedValues``), not one pair per close.
    Instruments quoted on the same days (the usual case) share one list of dates, sent and
    parsed once. Closes become ``Decimal`` straight from their text (what psycopg's numeric
    loader returns too, same digits and exponent), without its per-element array parsing.
    Measurements: docs/analytics.md, "Through the database: loading and the date grid"."""
    out: dict[int, analytics.DatedValues] = {}
    ids = sorted(i for i in instrument_ids if i is not None)
    if not ids:
        return out
    table = Price._meta.db_table
    lower = "AND date >= %s" if since is not None else ""
    params = [_DAY_ZERO, ids, since, end] if since is not None else [_DAY_ZERO, ids, end]
    with connection.cursor() as cur:
        if since is not None:
            cur.execute(
                f"SELECT DISTINCT ON (instrument_id) instrument_id, date, close FROM {table} "  # noqa: S608
                "WHERE instrument_id = ANY(%s) AND date < %s ORDER BY instrument_id, date DESC",
                [ids, since],
            )
            for iid, d, px in cur.fetchall():
                out[iid] = analytics.DatedValues([d], [px])
        # An instrument quoted on the same days as the one before it gets NULL for its dates:
        # they are sent, and turned into ``date`` objects, once.
        cur.execute(
            "SELECT instrument_id, CASE WHEN days = lag(days) OVER (ORDER BY instrument_id) "  # noqa: S608
            "THEN NULL ELSE days::text END, closes FROM ("
            "SELECT instrument_id, array_agg(date - %s ORDER BY date) AS days, "
            f"array_agg(close ORDER BY date)::text AS closes FROM {table} "
            f"WHERE instrument_id = ANY(%s) {lower} AND date <= %s GROUP BY instrument_id"
            ") AS series ORDER BY instrument_id",
            params,
        )
        days: list[date] = []
        from_ordinal, zero = date.fromordinal, _DAY_ZERO_ORDINAL
        for iid, day_text, close_text in cur.fetchall():
            if day_text is not None:
                days = [from_ordinal(zero + int(n)) for n in _array_items(day_text)]
            closes = list(map(Decimal, _array_items(close_text)))
            before = out.get(iid)
            if before is None:
                out[iid] = analytics.DatedValues(days, closes)
            else:  # the last close before ``since``, then these
                out[iid] = analytics.DatedValues(before.dates + days, before.values + closes)
    return out


def _merge_cross(a: list, b: list) -> list:
    """Product of two carried-forward rate series on the union of their dates."""
    days = sorted({d for d, _ in a} | {d for d, _ in b})
    out = []
    for d in days:
        ra, rb = analytics.price_on(a, d), analytics.price_on(b, d)
        if ra is not None and rb is not None:
            out.append((d, ra * rb))
    return out


def fx_series(currencies, *, base: str, since: date | None, end: date) -> dict[str, list[tuple[date, Decimal]]]:
    """Value of one unit of each currency in ``base``, per date (direct pair, inverse pair, or a
    cross through USD). One query."""
    wanted = {c for c in currencies if c and c != base}
    if not wanted:
        return {}
    codes = sorted(wanted | {base, FIRM_CURRENCY})
    # keep a margin so every pair has a rate before ``since`` to carry forward
    lower = "AND date >= %s" if since is not None else ""
    params = [_DAY_ZERO, codes, codes, end] + ([since - timedelta(days=14)] if since is not None else [])
    pairs: dict[tuple[str, str], analytics.DatedValues] = {}
    day_lists: dict[str, list[date]] = {}  # pairs quoted on the same days share one list
    from_ordinal, zero = date.fromordinal, _DAY_ZERO_ORDINAL
    with connection.cursor() as cur:
        # one array of dates and one of rates per pair, as for the closes (_price_series)
        cur.execute(
            "SELECT base, quote, array_agg(date - %s ORDER BY date)::text, array_agg(rate ORDER BY date)::text "  # noqa: S608
            f"FROM {FxRate._meta.db_table} WHERE base = ANY(%s) AND quote = ANY(%s) AND date <= %s {lower} "
            "GROUP BY base, quote",
            params,
        )
        for b, q, day_text, rate_text in cur.fetchall():
            days = day_lists.get(day_text)
            if days is None:
                days = day_lists[day_text] = [from_ordinal(zero + int(n)) for n in _array_items(day_text)]
            pairs[(b, q)] = analytics.DatedValues(days, list(map(Decimal, _array_items(rate_text))))

    def one(c: str, target: str) -> analytics.DatedValues | list:
        if (c, target) in pairs:
            return pairs[(c, target)]
        if (target, c) in pairs:
            inverse = pairs[(target, c)]
            return analytics.DatedValues(inverse.dates, [ONE / r for r in inverse.values])
        return []

    out = {}
    for c in wanted:
        series = one(c, base)
        if not series and FIRM_CURRENCY not in (c, base):
            series = _merge_cross(one(c, FIRM_CURRENCY), one(FIRM_CURRENCY, base))
        if series:
            out[c] = series
    return out


def _instrument_infos(ids) -> dict[int, analytics.InstrumentInfo]:
    return {
        row["id"]: analytics.InstrumentInfo(
            id=row["id"],
            symbol=row["symbol"],
            currency=row["currency"],
            asset_class=row["asset_class"] or None,
            sector=row["sector"] or None,
            country=row["country"] or None,
            name=row["name"],
        )
        for row in Instrument.objects.filter(pk__in=[i for i in ids if i is not None]).values(*INSTRUMENT_FIELDS)
    }


@dataclass
class LoadedPortfolio:
    portfolio: Portfolio
    data: analytics.PortfolioData
    benchmark_prices: list = field(default_factory=list)

    @property
    def inception(self) -> date | None:
        return self.data.inception


def portfolio_data(*, portfolio: Portfolio, end: date | None = None, since: date | None = None) -> LoadedPortfolio:
    """Ledger, instruments, closes and FX rates of ``portfolio`` as ``analytics.PortfolioData``.

    With ``since``, closes and rates before ``since`` are reduced to the last one (valuations from
    ``since`` on are unchanged). Four queries (five with ``since``), whatever the size of the ledger."""
    end = end or timezone.localdate()
    txns = ledger_of(portfolio=portfolio)
    ids = {t.instrument_id for t in txns if t.instrument_id is not None}
    bench_id = portfolio.benchmark_id
    instruments = _instrument_infos(ids | ({bench_id} if bench_id else set()))
    prices = _price_series(ids | ({bench_id} if bench_id else set()), since=since, end=end)
    bench = prices.pop(bench_id, []) if bench_id and bench_id not in ids else prices.get(bench_id, [])
    currencies = ledger_currencies(txns) | {i.currency for i in instruments.values()}
    fx = fx_series(currencies, base=portfolio.base_currency, since=since, end=end)
    data = analytics.PortfolioData(
        base_currency=portfolio.base_currency,
        txns=txns,
        instruments=instruments,
        prices=prices,
        fx=fx,
        lot_method=portfolio.lot_method,
    )
    return LoadedPortfolio(portfolio=portfolio, data=data, benchmark_prices=bench)


# --------------------------------------------------------------------------------------------
# Ranges and presets
# --------------------------------------------------------------------------------------------


class NoTransactionsYet(ValidationError):
    """Returns and series of a portfolio with an empty ledger: nothing to measure yet (409 in the
    API: the portfolio's state, not the request, is what is missing)."""


def resolve_range(
    *, inception: date | None, start=None, end=None, preset: str | None = None, today: date | None = None
) -> tuple[date, date]:
    """``(start, end)`` from explicit dates or a preset (MTD, QTD, YTD, 1Y, 3Y, SI; default SI).

    Raises ``ValidationError`` naming ``start``, ``end`` or ``preset``."""
    today = today or timezone.localdate()
    errors = {}

    def parse(v, name):
        if v in (None, ""):
            return None
        if isinstance(v, date):
            return v
        try:
            return date.fromisoformat(str(v))
        except ValueError:
            errors[name] = "Enter a date as YYYY-MM-DD."
            return None

    s, e = parse(start, "start"), parse(end, "end")
    if preset and (s or e):
        errors["preset"] = "Give either a preset or start/end dates, not both."
    if errors:
        raise ValidationError(errors)
    if inception is None:
        raise NoTransactionsYet({"portfolio": "This portfolio has no transactions yet."})
    if s is None and e is None:
        p = (preset or "SI").upper()
        if p not in PRESETS:
            raise ValidationError({"preset": f"Choose one of {', '.join(PRESETS)}."})
        if inception > today:
            raise ValidationError({"portfolio": "The first transaction is after today."})
        return analytics.preset_range(p, today, inception)
    e = e or today
    s = s or inception
    if e > today:
        errors["end"] = "The end date is in the future."
    if s < analytics.EARLIEST_DATE:
        errors["start"] = f"The start date must be on or after {analytics.EARLIEST_DATE.isoformat()}."
    if e < analytics.EARLIEST_DATE:
        errors["end"] = f"The end date must be on or after {analytics.EARLIEST_DATE.isoformat()}."
    if s > e:
        errors["start"] = "The start date is after the end date."
    if errors:
        raise ValidationError(errors)
    return s, e


# --------------------------------------------------------------------------------------------
# One portfolio
# --------------------------------------------------------------------------------------------


@dataclass
class PortfolioPerformance:
    portfolio: Portfolio
    performance: analytics.Performance
    benchmark_prices: list
    instruments: dict
    valuation: valuations.ValuationInfo = valuations.NO_STATE


def _benchmark_closes(portfolio: Portfolio, start: date, end: date) -> list:
    """The benchmark's closes of ``[start, end]`` plus the last one before (one query)."""
    if not portfolio.benchmark_id:
        return []
    return _price_series([portfolio.benchmark_id], since=start, end=end).get(portfolio.benchmark_id, [])


def _stored_performance(portfolio: Portfolio, start: date, end: date, bench: list) -> analytics.Performance | None:
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


def benchmark_index(prices: list, start: date, end: date) -> list[tuple[date, Decimal]]:
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
    """Everything the portfolio page needs."""

    loaded: LoadedPortfolio
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


# --------------------------------------------------------------------------------------------
# Lists
# --------------------------------------------------------------------------------------------


@dataclass
class PortfolioSummary:
    value: Decimal | None
    ytd: analytics.PeriodReturn | None
    since_inception: analytics.PeriodReturn | None
    error: str = ""


SUMMARY_CACHE_SECONDS = 300


def _summary_cache():
    """The shared cache (Redis), or None where ``CODEX_SUMMARY_CACHE`` is off (the benchmark's
    "before" settings)."""
    if not getattr(settings, "CODEX_SUMMARY_CACHE", True):
        return None
    return caches["default"]


def portfolio_summaries(portfolios, *, today: date | None = None) -> dict[int, PortfolioSummary]:
    """Value today, YTD and since-inception TWR of each portfolio, in four queries for any
    number of portfolios (ledgers, instruments, closes, rates).

    With Redis, each summary is cached under a fingerprint of its ledger (row count, last change,
    last id), base currency, lot method and day: a ledger change shows at once, new market data
    within ``SUMMARY_CACHE_SECONDS``. A page of warm summaries costs one query (the fingerprints)
    and one cache round trip instead of replaying every ledger (docs/benchmarks.md, "Profile and fix").
    """
    today = today or timezone.localdate()
    portfolios = list(portfolios)
    cache = _summary_cache()
    if not portfolios or cache is None:
        return _portfolio_summaries(portfolios, today=today)
    stamps = {
        row["portfolio_id"]: row
        for row in Transaction.objects.filter(portfolio_id__in=[p.pk for p in portfolios], trade_date__lte=today)
        .values("portfolio_id")
        .annotate(n=Count("id"), changed=Max("updated_at"), top=Max("id"))
        .order_by()
    }

    def key_of(p) -> str:
        s = stamps.get(p.pk)
        ledger = f"{s['n']}:{s['changed'].timestamp()}:{s['top']}" if s else "empty"
        return f"psum:1:{p.pk}:{today.isoformat()}:{p.base_currency}:{p.lot_method}:{ledger}"

    keys = {p.pk: key_of(p) for p in portfolios}
    cached = cache.get_many(list(keys.values()))
    out = {pk: cached[key] for pk, key in keys.items() if key in cached}
    missing = [p for p in portfolios if p.pk not in out]
    if missing:
        fresh = _portfolio_summaries(missing, today=today)
        cache.set_many({keys[pk]: s for pk, s in fresh.items()}, SUMMARY_CACHE_SECONDS)
        out.update(fresh)
    return out


def _portfolio_summaries(portfolios, *, today: date) -> dict[int, PortfolioSummary]:
    """From the stored valuations: three queries for any number of portfolios, whatever their
    history (today's close and TWR index, the first close with capital, the index at the close
    before 1 January: YTD is the index's growth since then, the daily-linked chain to the 28th
    digit). Portfolios whose capital ran out before the year read the year's days; those the store
    does not cover yet are computed from their ledgers (``_summaries_from_ledger``)."""
    if not portfolios:
        return {}
    by_pk = {p.pk: p for p in portfolios}
    closes = dict(
        (pid, (value, level))
        for pid, value, level in Valuation.objects.filter(portfolio_id__in=by_pk, date=today).values_list(
            "portfolio_id", "value", "twr_index"
        )
    )
    out: dict[int, PortfolioSummary] = {}
    covered = [pk for pk in by_pk if pk in closes]
    if covered:
        first_capital = _first_capital(covered)
        ytd_start = date(today.year, 1, 1)
        year_open = {
            pid: (value, level)
            for pid, value, level in Valuation.objects.filter(
                portfolio_id__in=covered, date=ytd_start - timedelta(days=1)
            ).values_list("portfolio_id", "value", "twr_index")
        }
        restarted = []  # capital before the year, none at its start: read the year's days
        for pk in covered:
            value, level = closes[pk]
            base = first_capital.get(pk)
            # twr_of(series since inception): the index from the close before the first
            # linked day, i.e. the first close with capital.
            since_inception = valuation_engine.return_from_index(base, today, level) if base and base < today else None
            opening = year_open.get(pk)
            if base is None or base >= ytd_start - timedelta(days=1):
                ytd = since_inception  # the chain starts within the year: YTD is since inception
            elif opening is not None and opening[0] > 0:
                # the year's chain is the index's growth since the close before 1 January
                ytd = valuation_engine.return_between(ytd_start - timedelta(days=1), today, opening[1], level)
            else:
                restarted.append(pk)
                ytd = None
            out[pk] = PortfolioSummary(value=value, ytd=ytd, since_inception=since_inception)
        if restarted:
            year_rows: dict[int, list] = defaultdict(list)
            for row in (
                Valuation.objects.filter(
                    portfolio_id__in=restarted, date__gte=ytd_start - timedelta(days=1), date__lte=today
                )
                .order_by("portfolio_id", "date")
                .values_list("portfolio_id", "date", "value", "net_flows", "market_day")
            ):
                year_rows[row[0]].append(row[1:])
            for pk in restarted:
                out[pk].ytd = _ytd_of(by_pk[pk], year_rows[pk], ytd_start)
    missing = [by_pk[pk] for pk in by_pk if pk not in out]
    out.update(_summaries_from_ledger(missing, today=today))
    return out


def _first_capital(portfolio_ids) -> dict[int, date]:
    """Per portfolio, the first stored close with capital (the TWR's base date since inception):
    one query, each portfolio's answer one step along the ``(portfolio, date)`` index."""
    first = Valuation.objects.filter(portfolio=OuterRef("pk"), value__gt=0).order_by("date").values("date")[:1]
    return {
        pk: day
        for pk, day in Portfolio.objects.filter(pk__in=list(portfolio_ids))
        .annotate(first=Subquery(first))
        .values_list("pk", "first")
        if day is not None
    }


@dataclass
class SinceInception:
    value: Decimal | None
    twr: analytics.PeriodReturn | None
    mwr: analytics.PeriodReturn | None
    error: str = ""


def portfolio_since_inception(portfolios, *, today: date | None = None) -> dict[int, SinceInception]:
    """Value on ``today`` and since-inception TWR and MWR (XIRR) of each portfolio, from the
    stored valuations in three queries for any number of portfolios: the day's close and TWR index,
    the first close with capital, and the days with an external flow (all the XIRR needs). The
    figures are those of ``portfolio_performance(preset="SI")``. Portfolios the store does not
    cover are computed by ``portfolio_performance``."""
    today = today or timezone.localdate()
    by_pk = {p.pk: p for p in portfolios}
    out: dict[int, SinceInception] = {}
    if not by_pk:
        return out
    closes = {
        pid: (value, level)
        for pid, value, level in Valuation.objects.filter(portfolio_id__in=by_pk, date=today).values_list(
            "portfolio_id", "value", "twr_index"
        )
    }
    covered = [pk for pk in by_pk if pk in closes]
    first_capital = _first_capital(covered) if covered else {}
    flows: dict[int, list] = defaultdict(list)
    if covered:
        for pid, day, flow in (
            Valuation.objects.filter(portfolio_id__in=covered, date__lte=today)
            .exclude(net_flows=0)
            .order_by("portfolio_id", "date")
            .values_list("portfolio_id", "date", "net_flows")
        ):
            flows[pid].append((day, flow))
    for pk in covered:
        value, level = closes[pk]
        base = first_capital.get(pk)
        twr = valuation_engine.return_from_index(base, today, level) if base and base < today else None
        # mwr_of reads only the opening (0 since inception), the flow days and the last close.
        days = [d for d, _ in flows[pk] if d < today]
        sparse = valuation_engine.series_of(
            base_currency=by_pk[pk].base_currency,
            opening_date=today,  # unused: the opening value is 0
            opening_value=ZERO,
            dates=[*days, today],
            values=[ZERO] * len(days) + [value],
            flows=[f for d, f in flows[pk] if d < today] + [next((f for d, f in flows[pk] if d == today), ZERO)],
            market_days=[False] * (len(days) + 1),
        )
        out[pk] = SinceInception(value=value, twr=twr, mwr=analytics.mwr_of(sparse))
    for pk, p in by_pk.items():
        if pk in out:
            continue
        try:
            perf = portfolio_performance(portfolio=p, preset="SI", today=today).performance
        except analytics.AnalyticsError as exc:
            out[pk] = SinceInception(None, None, None, error=str(exc))
        except ValidationError as exc:  # no transactions yet: nothing to measure
            out[pk] = SinceInception(None, None, None, error=" ".join(exc.messages))
        else:
            out[pk] = SinceInception(perf.end_value, perf.twr, perf.mwr)
    return out


def _ytd_of(portfolio: Portfolio, rows: list, ytd_start: date) -> analytics.PeriodReturn | None:
    """YTD TWR from the stored closes of ``[ytd_start - 1, today]`` (from inception if later)."""
    if rows and rows[0][0] < ytd_start:
        opening_date, opening_value = rows[0][0], rows[0][1]
        rows = rows[1:]
    elif rows:
        opening_date, opening_value = rows[0][0] - timedelta(days=1), ZERO
    if not rows:
        return None
    dates, values, flows, market = (list(c) for c in zip(*rows, strict=True))
    series = valuation_engine.series_of(
        base_currency=portfolio.base_currency,
        opening_date=opening_date,
        opening_value=opening_value,
        dates=dates,
        values=values,
        flows=flows,
        market_days=market,
    )
    return analytics.twr_of(series)


@_without_gc_pauses
def _summaries_from_ledger(portfolios, *, today: date) -> dict[int, PortfolioSummary]:
    if not portfolios:
        return {}
    by_pk = {p.pk: p for p in portfolios}
    ledgers: dict[int, list] = defaultdict(list)
    rows = (
        Transaction.objects.filter(portfolio_id__in=by_pk, trade_date__lte=today)
        .order_by("portfolio_id", "trade_date", "id")
        .values_list("portfolio_id", *TXN_VALUES)
    )
    for r in rows:
        ledgers[r[0]].append(txn_from_tuple(r[1:]))
    ids = {t.instrument_id for txns in ledgers.values() for t in txns if t.instrument_id}
    instruments = _instrument_infos(ids)
    inception = min((txns[0].date for txns in ledgers.values()), default=today)
    prices = _price_series(ids, since=inception, end=today)
    currencies = {c for txns in ledgers.values() for c in ledger_currencies(txns)}
    currencies |= {i.currency for i in instruments.values()}
    fx_by_base = {
        base: fx_series(currencies, base=base, since=inception, end=today)
        for base in {p.base_currency for p in portfolios}
    }
    out = {}
    ytd_start = date(today.year, 1, 1)
    for pk, p in by_pk.items():
        txns = ledgers.get(pk)
        if not txns:
            out[pk] = PortfolioSummary(None, None, None)
            continue
        data = analytics.PortfolioData(
            base_currency=p.base_currency,
            txns=txns,
            instruments=instruments,
            prices=prices,
            fx=fx_by_base[p.base_currency],
            lot_method=p.lot_method,
        )
        try:
            series = analytics.value_series(data, txns[0].date, today)
        except analytics.AnalyticsError as exc:
            out[pk] = PortfolioSummary(None, None, None, error=str(exc))
            continue
        out[pk] = PortfolioSummary(
            value=series.values[-1],
            ytd=analytics.twr_of(_sub_series(series, max(ytd_start, txns[0].date))),
            since_inception=analytics.twr_of(series),
        )
    return out


# --------------------------------------------------------------------------------------------
# Firm-wide
# --------------------------------------------------------------------------------------------


def latest_closes(instrument_ids, *, on: date) -> dict[int, tuple[date, Decimal, Decimal | None]]:
    """Per instrument: (date, last close on or before ``on``, the close before it or None). One query."""
    ids = sorted(set(instrument_ids))
    if not ids:
        return {}
    table = Price._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            "SELECT instrument_id, date, close, prev FROM ("  # noqa: S608
            " SELECT instrument_id, date, close,"
            "  LAG(close) OVER (PARTITION BY instrument_id ORDER BY date) AS prev,"
            "  ROW_NUMBER() OVER (PARTITION BY instrument_id ORDER BY date DESC) AS rn"
            f" FROM {table} WHERE instrument_id = ANY(%s) AND date <= %s AND date > %s"
            ") t WHERE rn = 1",
            [ids, on, on - timedelta(days=31)],
        )
        found = {iid: (d, px, prev) for iid, d, px, prev in cur.fetchall()}
        missing = [i for i in ids if i not in found]
        if missing:  # stale instruments: no close in the last month, take the last one at all
            cur.execute(
                f"SELECT DISTINCT ON (instrument_id) instrument_id, date, close FROM {table} "  # noqa: S608
                "WHERE instrument_id = ANY(%s) AND date <= %s ORDER BY instrument_id, date DESC",
                [missing, on],
            )
            for iid, d, px in cur.fetchall():
                found[iid] = (d, px, None)
    return found


def fx_to(currencies, *, target: str, on: date) -> dict[str, Decimal]:
    """Latest value of one unit of each currency in ``target`` on ``on``; currencies without a
    known rate are left out (the caller reports them)."""
    series = fx_series(currencies, base=target, since=on, end=on)
    out = {target: ONE}
    for c in set(currencies) - {target}:
        r = analytics.price_on(series.get(c, []), on)
        if r is not None:
            out[c] = r
    return out


@dataclass
class ExposureRow:
    key: str
    label: str
    value: Decimal
    weight: Decimal
    clients: list[str]
    portfolios: list[int]
    instrument_id: int | None = None
    sector: str = ""
    asset_class: str = ""
    currency: str = ""
    day_change: Decimal | None = None


@dataclass
class FirmExposure:
    currency: str
    on: date
    total_value: Decimal  # AUM: securities and cash of every portfolio in the caller's book
    securities_value: Decimal
    cash_value: Decimal
    portfolio_count: int
    by_instrument: list[ExposureRow]
    by_sector: list[ExposureRow]
    movers: list[ExposureRow]
    # Left out of every figure, and said so: currencies with no rate to ``currency`` yet, and
    # instruments without any close yet.
    missing_rates: list[str] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)


def firm_exposure(*, user, currency: str = FIRM_CURRENCY, on: date | None = None, movers: int = 5) -> FirmExposure:
    """AUM, exposure per instrument and per sector (with the clients holding each), and the day's
    top movers, over the portfolios ``user`` may see (archived ones excluded), in ``currency``.
    Amounts in a currency with no rate to ``currency`` are left out and listed in
    ``missing_rates`` (a firm-wide view with a named gap beats no view at all).

    Valued from the derived holdings and cash balances at the last close on or before ``on``.
    A fixed number of queries, whatever the number of portfolios and holdings."""
    on = on or timezone.localdate()
    currency = (currency or FIRM_CURRENCY).upper()
    visible = portfolios_visible_to(user, include_archived=False)
    holdings = list(
        Holding.objects.filter(portfolio__in=visible).values_list(
            "portfolio_id",
            "instrument_id",
            "quantity",
            "currency",
            "portfolio__name",
            "portfolio__client__first_name",
            "portfolio__client__last_name",
        )
    )
    cash = list(CashBalance.objects.filter(portfolio__in=visible).values_list("portfolio_id", "currency", "amount"))
    portfolio_count = visible.count()
    ids = {h[1] for h in holdings}
    infos = {row["id"]: row for row in Instrument.objects.filter(pk__in=ids).values(*INSTRUMENT_FIELDS)}
    closes = latest_closes(ids, on=on)
    currencies = {h[3] for h in holdings} | {c[1] for c in cash}
    rates = fx_to(currencies, target=currency, on=on)

    per_instr: dict[int, dict] = {}
    unpriced = set()
    for pid, iid, qty, ccy, pname, first, last in holdings:
        close = closes.get(iid)
        if close is None:
            unpriced.add(infos[iid]["symbol"])
            continue  # no market price at all yet: not valued (docs/portfolios.md)
        if ccy not in rates:
            continue
        value = qty * close[1] * rates[ccy]
        row = per_instr.setdefault(iid, {"value": ZERO, "clients": set(), "portfolios": set()})
        row["value"] += value
        row["clients"].add(f"{first} {last}".strip() if first or last else pname)
        row["portfolios"].add(pid)
    securities = sum((r["value"] for r in per_instr.values()), ZERO)
    cash_value = sum((amount * rates[c] for _, c, amount in cash if c in rates), ZERO)
    total = securities + cash_value

    def weight(v: Decimal) -> Decimal:
        return v / total if total else ZERO

    by_instrument = []
    for iid, r in per_instr.items():
        info = infos[iid]
        d, px, prev = closes[iid]
        by_instrument.append(
            ExposureRow(
                key=str(iid),
                label=f"{info['symbol']} · {info['name']}",
                value=r["value"],
                weight=weight(r["value"]),
                clients=sorted(r["clients"]),
                portfolios=sorted(r["portfolios"]),
                instrument_id=iid,
                sector=info["sector"] or analytics.UNCLASSIFIED,
                asset_class=info["asset_class"],
                currency=info["currency"],
                day_change=(px / prev - ONE) if prev else None,
            )
        )
    by_instrument.sort(key=lambda r: -r.value)
    sectors: dict[str, dict] = {}
    for r in by_instrument:
        s = sectors.setdefault(r.sector, {"value": ZERO, "clients": set(), "portfolios": set()})
        s["value"] += r.value
        s["clients"].update(r.clients)
        s["portfolios"].update(r.portfolios)
    by_sector = sorted(
        (
            ExposureRow(
                key=k,
                label=k,
                value=v["value"],
                weight=weight(v["value"]),
                clients=sorted(v["clients"]),
                portfolios=sorted(v["portfolios"]),
                sector=k,
            )
            for k, v in sectors.items()
        ),
        key=lambda r: -r.value,
    )
    top = sorted((r for r in by_instrument if r.day_change is not None), key=lambda r: -abs(r.day_change))
    return FirmExposure(
        currency=currency,
        on=on,
        total_value=total,
        securities_value=securities,
        cash_value=cash_value,
        portfolio_count=portfolio_count,
        by_instrument=by_instrument,
        by_sector=by_sector,
        movers=top[:movers],
        missing_rates=sorted(currencies - set(rates)),
        unpriced=sorted(unpriced),
    )
