"""Portfolio analytics: lots, valuation, returns and risk, as pure functions.

No Django import here on purpose: a selector reads the ledger, prices and FX rates from the
database, fills the plain dataclasses below and calls these functions. Everything can then be
tested exhaustively without a database. The definitions of every figure are in
``docs/analytics.md``; the short version:

* Money is ``Decimal`` end to end (quantities, prices, cash, values, gains).
* Returns and ratios are ``Decimal`` too, unrounded; quantize only when presenting them.
  XIRR is solved in binary floating point for speed (a root is good to ~1e-12) and handed back
  as ``Decimal``.
* Transactions and external flows happen at the **end of the day** (after that day's close).
* Prices and FX rates carry forward from the last known observation; before an instrument's
  first market price the last trade price is used, before a currency's first FX rate the rate
  recorded on the last transaction in that currency.
* Year fractions are Actual/365; a return is annualised only when its period is longer than
  one calendar year.

One module per part, each importing only the ones before it: ``ledger`` (kinds, errors, inputs),
``lots``, ``data`` (``PortfolioData``), ``valuation``, ``holdings`` (holdings, allocation, the
period summary), ``returns`` (TWR, MWR / XIRR), ``risk`` (drawdown, volatility), ``report`` (``performance``).
The public names are re-exported here: ``from portfolios.analytics import xirr`` keeps working.
"""

from .data import PortfolioData
from .holdings import (
    Holding,
    HoldingsSnapshot,
    LotHolding,
    PeriodSummary,
    ReturnSplit,
    allocation,
    holdings_on,
    period_summary,
    return_split,
)
from .ledger import (
    ALLOCATION_DIMENSIONS,
    BUY,
    CASH_BUCKET,
    CASH_KINDS,
    CONVERSION,
    DAYS_PER_YEAR,
    DEPOSIT,
    DIVIDEND,
    EARLIEST_DATE,
    FEE,
    INTEREST,
    KINDS,
    LOT_METHODS,
    ONE,
    PRESETS,
    SECURITY_KINDS,
    SELL,
    SETTLED_KINDS,
    SPLIT,
    TAX,
    TRADING_DAYS_PER_YEAR,
    TRANSFER_IN,
    TRANSFER_OUT,
    UNCLASSIFIED,
    WITHDRAWAL,
    ZERO,
    AnalyticsError,
    DatedValues,
    InstrumentInfo,
    InsufficientQuantity,
    InvalidTransaction,
    MissingFxRate,
    PriceSeries,
    Txn,
    UnknownLot,
    XirrNoSolution,
)
from .lots import Lot, LotBook, RealisedLot, YearGains, build_lots, cash_balances, realised_gains_by_year
from .report import Performance, performance
from .returns import (
    PeriodReturn,
    add_years,
    annualise,
    benchmark_return,
    daily_returns,
    longer_than_a_year,
    mwr,
    mwr_flows,
    mwr_of,
    preset_range,
    twr,
    twr_index,
    twr_of,
    xirr,
)
from .risk import Drawdown, annualised_volatility, max_drawdown, trading_day_returns
from .valuation import CurrencyDay, ValueSeries, price_on, value_on, value_series, value_series_by_currency

__all__ = [
    "ReturnSplit",
    "return_split",
    "CONVERSION",
    "SETTLED_KINDS",
    "ALLOCATION_DIMENSIONS",
    "AnalyticsError",
    "BUY",
    "CASH_BUCKET",
    "CASH_KINDS",
    "DAYS_PER_YEAR",
    "DEPOSIT",
    "DIVIDEND",
    "DatedValues",
    "Drawdown",
    "EARLIEST_DATE",
    "FEE",
    "Holding",
    "HoldingsSnapshot",
    "INTEREST",
    "InstrumentInfo",
    "InsufficientQuantity",
    "InvalidTransaction",
    "KINDS",
    "LOT_METHODS",
    "Lot",
    "LotBook",
    "LotHolding",
    "MissingFxRate",
    "ONE",
    "PRESETS",
    "Performance",
    "PeriodReturn",
    "PeriodSummary",
    "PortfolioData",
    "PriceSeries",
    "RealisedLot",
    "SECURITY_KINDS",
    "SELL",
    "SPLIT",
    "TAX",
    "TRADING_DAYS_PER_YEAR",
    "TRANSFER_IN",
    "TRANSFER_OUT",
    "Txn",
    "UNCLASSIFIED",
    "UnknownLot",
    "ValueSeries",
    "WITHDRAWAL",
    "XirrNoSolution",
    "YearGains",
    "ZERO",
    "add_years",
    "allocation",
    "annualise",
    "annualised_volatility",
    "benchmark_return",
    "build_lots",
    "cash_balances",
    "daily_returns",
    "holdings_on",
    "longer_than_a_year",
    "max_drawdown",
    "mwr",
    "mwr_flows",
    "mwr_of",
    "performance",
    "period_summary",
    "preset_range",
    "price_on",
    "realised_gains_by_year",
    "trading_day_returns",
    "twr",
    "twr_index",
    "twr_of",
    "value_on",
    "value_series",
    "value_series_by_currency",
    "CurrencyDay",
    "xirr",
]
