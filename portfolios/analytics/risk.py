"""Risk: maximum drawdown, annualised volatility of trading-day returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .ledger import ONE, TRADING_DAYS_PER_YEAR, ZERO
from .returns import daily_returns
from .valuation import ValueSeries

# --------------------------------------------------------------------------------------------
# Risk
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Drawdown:
    depth: Decimal  # positive fraction: 0.25 means the index fell 25 % from its peak
    peak_date: date
    trough_date: date
    recovery_date: date | None  # first day back at or above the peak, None if not yet


def max_drawdown(series: Sequence[tuple[date, Decimal]]) -> Drawdown | None:
    """Largest fall from a running peak of a positive level series (use a TWR index)."""
    if not series:
        return None
    peak_day, peak = series[0]
    best = Drawdown(ZERO, peak_day, peak_day, None)
    best_peak = None
    for d, level in series:
        if level >= peak:
            if best_peak is not None and best.recovery_date is None and level >= best_peak:
                best = Drawdown(best.depth, best.peak_date, best.trough_date, d)
            peak_day, peak = d, level
            continue
        depth = ONE - level / peak
        if depth > best.depth:
            best = Drawdown(depth, peak_day, d, None)
            best_peak = peak
    return best


def annualised_volatility(returns: Sequence[Decimal]) -> Decimal | None:
    """Sample standard deviation of periodic (trading-day) returns times sqrt(252)."""
    n = len(returns)
    if n < 2:
        return None
    mean = sum(returns, ZERO) / n
    variance = sum(((r - mean) ** 2 for r in returns), ZERO) / (n - 1)
    return variance.sqrt() * Decimal(TRADING_DAYS_PER_YEAR).sqrt()


def trading_day_returns(series: ValueSeries) -> list[Decimal]:
    """Daily-linked returns compounded onto market days (days with any price or FX data).

    Weekends and holidays carry prices forward; compounding their (usually zero) returns into
    the next market day keeps them from diluting the volatility.
    """
    out = []
    growth = None
    market = dict(zip(series.dates, series.market_days, strict=True))
    for d, r in daily_returns(series):
        growth = (ONE + r) if growth is None else growth * (ONE + r)
        if market[d]:
            out.append(growth - ONE)
            growth = None
    return out
