"""The figures of many portfolios at once (value, YTD, since inception) for lists and the dashboard."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, OuterRef, Subquery
from django.utils import timezone

from .. import analytics, valuation_engine
from ..ledger import TXN_VALUES, ledger_currencies, txn_from_tuple
from ..models import Portfolio, Transaction, Valuation
from .common import ZERO, _without_gc_pauses
from .loading import (
    _instrument_infos,
    _price_series,
    fx_series,
)
from .portfolio import (
    _sub_series,
    portfolio_performance,
)


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
