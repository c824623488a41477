"""All at once: the ``Performance`` of a portfolio over a range (returns, risk, summary, benchmark)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .data import PortfolioData
from .holdings import PeriodSummary, period_summary
from .ledger import ZERO, PriceSeries
from .returns import PeriodReturn, benchmark_return, mwr_of, twr_index, twr_of
from .risk import Drawdown, annualised_volatility, max_drawdown, trading_day_returns
from .valuation import ValueSeries, value_series

# --------------------------------------------------------------------------------------------
# All at once
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Performance:
    start: date
    end: date
    series: ValueSeries
    twr: PeriodReturn | None
    mwr: PeriodReturn | None
    benchmark: PeriodReturn | None
    max_drawdown: Drawdown | None
    volatility: Decimal | None
    summary: PeriodSummary

    @property
    def start_value(self) -> Decimal:
        return self.series.opening_value

    @property
    def end_value(self) -> Decimal:
        return self.series.values[-1]

    @property
    def net_flows(self) -> Decimal:
        return sum(self.series.flows, ZERO)


def performance(
    data: PortfolioData,
    start: date,
    end: date,
    *,
    benchmark_prices: PriceSeries | None = None,
) -> Performance:
    """Every period figure from one pass over the days: the selector's one call."""
    series = value_series(data, start, end)
    index = twr_index(series)
    return Performance(
        start=start,
        end=end,
        series=series,
        twr=twr_of(series, index=index),
        mwr=mwr_of(series),
        benchmark=benchmark_return(benchmark_prices, start, end) if benchmark_prices else None,
        max_drawdown=max_drawdown(index),
        volatility=annualised_volatility(trading_day_returns(series)),
        summary=period_summary(data, start, end),
    )
