"""Reads of the portfolios app: load the ledger, closes and FX rates, call ``analytics``.

Each selector reads what it needs in a fixed, small number of queries (independent of the number
of transactions, instruments or days) and hands plain dataclasses to the pure
``portfolios.analytics`` module, which computes every figure (docs/analytics.md).

Modules, in the order they build on each other: ``common`` (constants, the GC pause around big
loads), ``listing`` (the portfolio list's queryset), ``loading`` (ledger, closes and FX rates of a
portfolio), ``ranges`` (dates from presets), ``portfolio`` (one portfolio: performance, holdings,
allocation, value series, the page's dashboard), ``firm`` (latest closes, FX to one currency, the
firm-wide exposure), ``summaries`` (the figures of many portfolios at once). The public names are
re-exported here, so ``from portfolios import selectors; selectors.portfolio_dashboard(...)`` keeps
working."""

from .common import FIRM_CURRENCY, INSTRUMENT_FIELDS, ONE, PRESETS, ZERO, gc_paused
from .firm import ExposureRow, FirmExposure, firm_exposure, fx_to, latest_closes
from .listing import PORTFOLIO_LIST_COLUMNS, portfolio_firm_count, portfolio_list, portfolios_matching
from .loading import LoadedPortfolio, fx_series, portfolio_data
from .portfolio import (
    Dashboard,
    PeriodRow,
    PortfolioPerformance,
    benchmark_index,
    lots_of,
    portfolio_allocation,
    portfolio_analytics_bundle,
    portfolio_dashboard,
    portfolio_holdings,
    portfolio_performance,
    portfolio_realised_gains,
    portfolio_value_series,
    stored_holdings_on,
    transactions_of,
)
from .ranges import NoTransactionsYet, resolve_range
from .summaries import (
    SUMMARY_CACHE_SECONDS,
    PortfolioSummary,
    SinceInception,
    portfolio_since_inception,
    portfolio_summaries,
)

__all__ = [
    "Dashboard",
    "ExposureRow",
    "FIRM_CURRENCY",
    "FirmExposure",
    "INSTRUMENT_FIELDS",
    "LoadedPortfolio",
    "NoTransactionsYet",
    "ONE",
    "PORTFOLIO_LIST_COLUMNS",
    "PRESETS",
    "PeriodRow",
    "PortfolioPerformance",
    "PortfolioSummary",
    "SUMMARY_CACHE_SECONDS",
    "SinceInception",
    "ZERO",
    "benchmark_index",
    "firm_exposure",
    "fx_series",
    "fx_to",
    "gc_paused",
    "latest_closes",
    "lots_of",
    "portfolio_allocation",
    "portfolio_analytics_bundle",
    "portfolio_dashboard",
    "portfolio_data",
    "portfolio_holdings",
    "portfolio_list",
    "portfolio_performance",
    "portfolio_realised_gains",
    "portfolio_since_inception",
    "portfolio_summaries",
    "portfolio_value_series",
    "portfolio_firm_count",
    "portfolios_matching",
    "resolve_range",
    "stored_holdings_on",
    "transactions_of",
]
