"""Returns: TWR (chain-linked daily), MWR / XIRR, annualising, benchmark returns, preset ranges."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .data import PortfolioData
from .ledger import _ONE_DAY, DAYS_PER_YEAR, ONE, PRESETS, PriceSeries, XirrNoSolution, _bisect_day
from .valuation import ValueSeries, price_on, value_series

# --------------------------------------------------------------------------------------------
# Returns
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeriodReturn:
    """A return measured from the close of ``base_date`` to the close of ``end``.

    ``cumulative`` is the return over the whole period; ``annualised`` is set only when the
    period is longer than one calendar year. ``value`` is the figure to show.
    """

    base_date: date
    end: date
    cumulative: Decimal
    annualised: Decimal | None

    @property
    def days(self) -> int:
        return (self.end - self.base_date).days

    @property
    def value(self) -> Decimal:
        return self.annualised if self.annualised is not None else self.cumulative


def add_years(day: date, years: int) -> date:
    """Same calendar date ``years`` later (29 Feb becomes 28 Feb in a common year)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def longer_than_a_year(base_date: date, end: date) -> bool:
    return end > add_years(base_date, 1)


def annualise(cumulative: Decimal, days: int) -> Decimal:
    """(1 + R) ** (365 / days) - 1; a total loss stays -1."""
    growth = ONE + cumulative
    if growth <= 0:
        return -ONE
    return growth ** (Decimal(DAYS_PER_YEAR) / Decimal(days)) - ONE


def _period_return(base_date: date, end: date, cumulative: Decimal) -> PeriodReturn:
    annual = None
    if longer_than_a_year(base_date, end):
        annual = annualise(cumulative, (end - base_date).days)
    return PeriodReturn(base_date, end, cumulative, annual)


def daily_returns(series: ValueSeries) -> list[tuple[date, Decimal]]:
    """r_t = (V_t - F_t) / V_{t-1} - 1 for each day whose previous value is positive.

    Days after a zero (or negative) value are skipped: the chain starts when capital arrives.
    """
    out = []
    prev = series.opening_value
    for d, v, f in zip(series.dates, series.values, series.flows, strict=True):
        if prev > 0:
            out.append((d, (v - f) / prev - ONE))
        prev = v
    return out


def twr_index(series: ValueSeries) -> list[tuple[date, Decimal]]:
    """Growth of 1 under daily linking, from the close before the first linked day.

    Flows do not move the index, so drawdowns measured on it are market drawdowns only.
    """
    index: list[tuple[date, Decimal]] = []
    level = ONE
    prev_day, prev = series.opening_date, series.opening_value
    for d, v, f in zip(series.dates, series.values, series.flows, strict=True):
        if prev > 0:
            if not index:
                index.append((prev_day, ONE))
            level *= (v - f) / prev
            index.append((d, level))
        prev_day, prev = d, v
    return index


def twr_of(series: ValueSeries, *, index: list[tuple[date, Decimal]] | None = None) -> PeriodReturn | None:
    """Time-weighted return of a value series (daily linking); None if no capital ever.

    ``index``: the series' ``twr_index`` if the caller already has it (not computed again)."""
    if index is None:
        index = twr_index(series)
    if not index:
        return None
    base_date, _ = index[0]
    end = series.dates[-1]
    return _period_return(base_date, end, index[-1][1] - ONE)


def twr(data: PortfolioData, start: date, end: date) -> PeriodReturn | None:
    """Time-weighted return over ``[start, end]`` (from the close of ``start - 1``)."""
    return twr_of(value_series(data, start, end))


def _scaled_npv(x: float, times: Sequence[float], amounts: Sequence[float]) -> float:
    """NPV at log-growth ``x`` times a positive factor: same sign as the NPV, never overflows."""
    top = max(-t * x for t in times)
    return sum(a * math.exp(-t * x - top) for t, a in zip(times, amounts, strict=True))


def _root_grid(times: Sequence[float], amounts: Sequence[float]) -> list[float]:
    """Sample points of x = ln(1 + r) that bracket every root of the NPV.

    Above ``hi`` the first flow (t = 0) outweighs all others together, below ``lo`` the last
    one does, so no root lies outside [lo, hi]. Fine steps near 0 %, geometric ones beyond.
    """
    total = math.fsum(abs(a) for a in amounts)
    hi = math.log(total / abs(amounts[0])) / times[1] + 1.0
    lo = -(math.log(total / abs(amounts[-1])) / (times[-1] - times[-2]) + 1.0)
    points = {k / 4 for k in range(-40, 41)} | {float(k) for k in range(-50, 51)}
    step = 50.0
    while step < max(hi, -lo):
        points |= {step, -step}
        step *= 1.25
    return sorted({p for p in points if lo < p < hi} | {lo, hi})


def _solve_log_growth(times: Sequence[float], amounts: Sequence[float], guess: float) -> float:
    """x = ln(1 + r) for the root r > -1 of sum(a_i * (1 + r) ** -t_i).

    Solved for x, where the NPV is a plain sum of exponentials: Newton from the
    guess first; if it leaves the domain, stalls or overflows, the scaled NPV is sampled on a
    grid of x to find sign changes, and the bracket nearest the guess is bisected to the last
    bit.
    """
    x = math.log1p(guess)
    for _ in range(100):
        try:
            terms = [a * math.exp(-t * x) for t, a in zip(times, amounts, strict=True)]
        except OverflowError:
            break
        f = math.fsum(terms)
        df = -math.fsum(t * term for t, term in zip(times, terms, strict=True))
        if not (math.isfinite(f) and math.isfinite(df)) or df == 0.0:
            break
        step = f / df
        x -= step
        if not math.isfinite(x) or abs(x) > 700:
            break
        if abs(step) <= 1e-14 * max(1.0, abs(x)):
            return x

    grid = _root_grid(times, amounts)
    values = [_scaled_npv(g, times, amounts) for g in grid]
    brackets = [
        (grid[k], grid[k + 1], values[k])
        for k in range(len(grid) - 1)
        if values[k] == 0.0 or (values[k] > 0) != (values[k + 1] > 0)
    ]
    if not brackets:
        raise XirrNoSolution("no rate above -100 % sets the NPV of these flows to zero")
    target = math.log1p(guess)
    lo, hi, f_lo = min(brackets, key=lambda b: abs((b[0] + b[1]) / 2 - target))
    if f_lo == 0.0:
        return lo
    while True:
        mid = (lo + hi) / 2
        if mid in (lo, hi):  # adjacent floats: done
            return mid
        f_mid = _scaled_npv(mid, times, amounts)
        if f_mid == 0.0:
            return mid
        if (f_mid > 0) == (f_lo > 0):
            lo, f_lo = mid, f_mid
        else:
            hi = mid


def _prepare_flows(cashflows: Iterable[tuple[date, Decimal | float | int]]) -> list[tuple[date, Decimal]]:
    by_day: dict[date, Decimal] = defaultdict(Decimal)
    for d, amount in cashflows:
        by_day[d] += Decimal(amount) if not isinstance(amount, Decimal) else amount
    flows = sorted((d, a) for d, a in by_day.items() if a)
    if not any(a > 0 for _, a in flows) or not any(a < 0 for _, a in flows):
        raise XirrNoSolution("XIRR needs at least one positive and one negative cash flow")
    return flows


def xirr(
    cashflows: Iterable[tuple[date, Decimal | float | int]],
    *,
    guess: float = 0.1,
    day_count: int = DAYS_PER_YEAR,
) -> Decimal:
    """Annual rate r with sum(a_i / (1 + r) ** ((d_i - d_0) / 365)) = 0 (Actual/365).

    Signs are the caller's: any consistent convention gives the same rate. Flows on the same
    day are netted. Raises ``XirrNoSolution`` when all flows have one sign or no root exists.
    When the flows change sign more than once, several rates can solve the equation; the one
    found from ``guess`` (Newton) or, failing that, the bracket nearest ``guess`` is returned.
    ``day_count`` changes the length of the time unit (used to get a period rate directly).
    """
    if not guess > -1:
        raise ValueError("guess must be above -1 (-100 %)")
    flows = _prepare_flows(cashflows)
    d0 = flows[0][0]
    times = [(d - d0).days / day_count for d, _ in flows]
    amounts = [float(a) for _, a in flows]
    x = _solve_log_growth(times, amounts, guess)
    if -1.0 <= x < 700.0:
        return Decimal(repr(math.expm1(x)))
    # Beyond the float range (e.g. x7 in one day), or a deep loss where a float rate close to
    # -1 would keep too few digits of 1 + r: build the rate from x in decimal arithmetic.
    try:
        return Decimal(repr(x)).exp() - ONE
    except ArithmeticError as exc:  # decimal.Overflow: above 10 ** 999999
        raise XirrNoSolution("the rate is too large to represent") from exc


def mwr_flows(series: ValueSeries) -> list[tuple[date, Decimal]]:
    """Cash flows of the MWR, from the portfolio's side: money in positive, money out negative.

    Opening value at the close before the range (as if deposited), every external flow on its
    day, and the ending value as if withdrawn at the close of the last day.
    """
    flows = []
    if series.opening_value:
        flows.append((series.opening_date, series.opening_value))
    flows.extend((d, f) for d, f in zip(series.dates, series.flows, strict=True) if f)
    if series.values[-1]:
        flows.append((series.dates[-1], -series.values[-1]))
    return flows


def mwr_of(series: ValueSeries) -> PeriodReturn | None:
    """Money-weighted return (XIRR) of a value series; None when there is nothing to measure.

    For periods up to one year ``cumulative`` is the period rate (solved with the period as
    the time unit, identical to (1 + XIRR) ** (days / 365) - 1 without overflowing) and
    ``annualised`` is None; for longer periods ``annualised`` is the XIRR itself.
    """
    flows = mwr_flows(series)
    try:
        _prepare_flows(flows)
    except XirrNoSolution:
        return None
    base_date, end = flows[0][0], series.dates[-1]
    days = (end - base_date).days
    if days <= 0:
        return None
    if longer_than_a_year(base_date, end):
        annual = xirr(flows)
        growth = ONE + annual
        cumulative = growth ** (Decimal(days) / Decimal(DAYS_PER_YEAR)) - ONE if growth > 0 else -ONE
        return PeriodReturn(base_date, end, cumulative, annual)
    return PeriodReturn(base_date, end, xirr(flows, guess=0.0, day_count=days), None)


def mwr(data: PortfolioData, start: date, end: date) -> PeriodReturn | None:
    """Money-weighted return (true XIRR) over ``[start, end]``."""
    return mwr_of(value_series(data, start, end))


def benchmark_return(prices: PriceSeries, start: date, end: date) -> PeriodReturn | None:
    """Price return of a benchmark from the close before ``start`` to the close of ``end``.

    Uses carried-forward closes. If the benchmark has no close before ``start``, its first
    close in the range is the base (``base_date`` says so). None if no two closes exist.
    """
    base_day = start - _ONE_DAY
    pos = _bisect_day(prices, base_day, right=True)
    if pos:
        base_px = prices[pos - 1][1]
    else:
        if not prices or prices[0][0] > end:
            return None
        base_day, base_px = prices[0]
    end_px = price_on(prices, end)
    if end_px is None or base_day >= end or base_px <= 0:
        return None
    return _period_return(base_day, end, end_px / base_px - ONE)


def preset_range(preset: str, today: date, inception: date | None = None) -> tuple[date, date]:
    """(start, end) of a preset, both inclusive; returns are measured from the close of start-1.

    MTD / QTD / YTD start on the first day of the month / quarter / year; 1Y and 3Y start the
    day after the same date one / three years ago; SI starts at inception. Ranges are clamped
    to start no earlier than inception.
    """
    preset = preset.upper()
    if preset == "MTD":
        start = today.replace(day=1)
    elif preset == "QTD":
        start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    elif preset == "YTD":
        start = date(today.year, 1, 1)
    elif preset == "1Y":
        start = add_years(today, -1) + _ONE_DAY
    elif preset == "3Y":
        start = add_years(today, -3) + _ONE_DAY
    elif preset == "SI":
        if inception is None:
            raise ValueError("SI needs the inception date")
        start = inception
    else:
        raise ValueError(f"unknown preset {preset!r}; use one of {PRESETS}")
    if inception is not None:
        if inception > today:
            raise ValueError("inception is after today")
        start = max(start, inception)
    return start, today
