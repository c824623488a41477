"""Stored daily valuations: the pure part (no Django import).

``compute_valuations`` turns ``analytics`` output into the rows the store keeps, one per
calendar day, from a start date given the state before it (the TWR index level at the close of
the day before). The readers turn stored rows back into ``analytics`` objects
(``series_of``, ``summary_of``, ``performance_of``) so every figure read from the store is
computed by the same functions as before. docs/analytics.md, "Stored valuations".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from . import analytics
from .analytics import (
    DEPOSIT,
    DIVIDEND,
    FEE,
    INTEREST,
    TAX,
    WITHDRAWAL,
    PeriodSummary,
    PortfolioData,
    ValueSeries,
)

ZERO = Decimal(0)
ONE = Decimal(1)
CENT = Decimal("0.01")
ONE_DAY = timedelta(days=1)

#: Columns of a stored day, in the order ``DayValuation.row()`` gives them.
DAY_COLUMNS = (
    "date",
    "value",
    "net_flows",
    "cash",
    "dividends",
    "interest",
    "fees",
    "taxes",
    "deposits",
    "withdrawals",
    "realised_short",
    "realised_long",
    "twr_index",
    "market_day",
)
#: The per-day amounts whose sum over a range is that range's ``PeriodSummary``.
SUMMED = ("dividends", "interest", "fees", "taxes", "deposits", "withdrawals", "realised_short", "realised_long")


@dataclass(frozen=True, slots=True)
class CurrencyClose:
    currency: str
    securities_local: Decimal
    cash_local: Decimal
    fx_rate: Decimal

    @property
    def value_base(self) -> Decimal:
        return (self.securities_local + self.cash_local) * self.fx_rate


@dataclass(frozen=True, slots=True)
class DayValuation:
    date: date
    value: Decimal
    net_flows: Decimal
    cash: Decimal
    dividends: Decimal
    interest: Decimal
    fees: Decimal
    taxes: Decimal
    deposits: Decimal
    withdrawals: Decimal
    realised_short: Decimal
    realised_long: Decimal
    twr_index: Decimal
    market_day: bool
    currencies: tuple[CurrencyClose, ...] = ()

    def row(self) -> tuple:
        return tuple(getattr(self, c) for c in DAY_COLUMNS)


@dataclass(frozen=True, slots=True)
class Opening:
    """The stored state at the close of ``date``, the day before a recomputation starts."""

    date: date
    twr_index: Decimal = ONE


def inception_opening(inception: date) -> Opening:
    return Opening(inception - ONE_DAY, ONE)


def compute_valuations(data: PortfolioData, start: date, end: date, *, opening: Opening) -> list[DayValuation]:
    """One ``DayValuation`` per calendar day of ``[start, end]``; ``opening`` is the state at the
    close of ``start - 1`` (its TWR index level carries on). Raises what ``analytics`` raises
    (``MissingFxRate``, ``InsufficientQuantity``...) and nothing else."""
    if opening.date != start - ONE_DAY:
        raise ValueError("the opening state must be the close of the day before start")
    series, per_currency = analytics.value_series_by_currency(data, start, end)
    amounts = _daily_amounts(data, start, end)
    out: list[DayValuation] = []
    level = opening.twr_index
    prev = series.opening_value
    empty = dict.fromkeys(SUMMED, ZERO)
    for day, value, flow, market, parts in zip(
        series.dates, series.values, series.flows, series.market_days, per_currency, strict=True
    ):
        # twr_index semantics: a day after a close with no capital does not move the level.
        if prev > 0:
            level *= (value - flow) / prev
        prev = value
        currencies = tuple(CurrencyClose(c, sec, cash, rate) for c, (sec, cash, rate) in sorted(parts.items()))
        day_amounts = amounts.get(day, empty)
        out.append(
            DayValuation(
                date=day,
                value=value,
                net_flows=flow,
                cash=sum((c.cash_local * c.fx_rate for c in currencies), ZERO),
                twr_index=level,
                market_day=market,
                currencies=currencies,
                **day_amounts,
            )
        )
    return out


def _daily_amounts(data: PortfolioData, start: date, end: date) -> dict[date, dict[str, Decimal]]:
    """The ``period_summary`` totals of each day (same products, at each row's FX rate)."""
    days: dict[date, dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(SUMMED, ZERO))
    kind_column = {
        DIVIDEND: "dividends",
        INTEREST: "interest",
        FEE: "fees",
        TAX: "taxes",
        DEPOSIT: "deposits",
        WITHDRAWAL: "withdrawals",
    }
    for t in data.sorted_txns:
        if t.date < start:
            continue
        if t.date > end:
            break
        d = days[t.date]
        if t.fees:
            d["fees"] += t.fees * t.fx_rate
        column = kind_column.get(t.kind)
        if column is not None:
            d[column] += t.gross * t.fx_rate
    for r in data.lot_book.realised:
        if start <= r.disposed <= end:
            days[r.disposed]["realised_long" if r.term == "long" else "realised_short"] += r.gain_base
    return days


# --------------------------------------------------------------------------------------------
# Reading stored rows back into analytics objects
# --------------------------------------------------------------------------------------------


def series_of(
    *,
    base_currency: str,
    opening_date: date,
    opening_value: Decimal,
    dates: list[date],
    values: list[Decimal],
    flows: list[Decimal],
    market_days: list[bool],
) -> ValueSeries:
    return ValueSeries(
        base_currency=base_currency,
        opening_date=opening_date,
        opening_value=opening_value,
        dates=dates,
        values=values,
        flows=flows,
        market_days=market_days,
    )


def series_from_rows(rows: list[tuple], *, start: date, end: date, base_currency: str) -> ValueSeries | None:
    """The ``ValueSeries`` of ``[start, end]`` from stored ``(date, value, net_flows, market_day)``
    rows of ``[start - 1, end]`` in date order: the opening is the close of ``start - 1`` (0 when
    the range starts at or before inception; the days before inception held nothing). None when
    the rows do not cover the range: nothing stored, the last stored day is before ``end``, or a
    gap."""
    rows = list(rows)
    opening_value = rows.pop(0)[1] if rows and rows[0][0] == start - ONE_DAY else ZERO
    if not rows or rows[-1][0] != end or (end - rows[0][0]).days + 1 != len(rows):
        return None
    dates, values, flows, market = (list(col) for col in zip(*rows, strict=True))
    if dates[0] > start:
        if opening_value:
            return None
        pad = (dates[0] - start).days
        dates = [start + ONE_DAY * i for i in range(pad)] + dates
        values = [ZERO] * pad + values
        flows = [ZERO] * pad + flows
        market = [False] * pad + market
    return series_of(
        base_currency=base_currency,
        opening_date=start - ONE_DAY,
        opening_value=opening_value,
        dates=dates,
        values=values,
        flows=flows,
        market_days=market,
    )


def summary_of_days(days: Iterable[DayValuation]) -> PeriodSummary:
    """``summary_of`` the sums of ``days``' amounts (what the store's aggregate gives)."""
    totals = dict.fromkeys(SUMMED, ZERO)
    for d in days:
        for c in SUMMED:
            totals[c] += getattr(d, c)
    return summary_of(totals)


def summary_of(totals: Mapping[str, Decimal | None]) -> PeriodSummary:
    """A range's ``PeriodSummary`` from the sums of its days' amounts."""
    t = {k: totals.get(k) or ZERO for k in SUMMED}
    return PeriodSummary(
        realised_gain=t["realised_short"] + t["realised_long"],
        realised_short=t["realised_short"],
        realised_long=t["realised_long"],
        dividends=t["dividends"],
        interest=t["interest"],
        fees=t["fees"],
        taxes=t["taxes"],
        deposits=t["deposits"],
        withdrawals=t["withdrawals"],
    )


def performance_of(
    series: ValueSeries,
    summary: PeriodSummary,
    start: date,
    end: date,
    *,
    benchmark_prices: Sequence | None = None,
    index: list[tuple[date, Decimal]] | None = None,
) -> analytics.Performance:
    """``analytics.performance`` for a series read from the store: the same functions, in the
    same order, on the same values. ``index``: the series' ``twr_index`` when the caller has it."""
    if index is None:
        index = analytics.twr_index(series)
    return analytics.Performance(
        start=start,
        end=end,
        series=series,
        twr=analytics.twr_of(series, index=index),
        mwr=analytics.mwr_of(series),
        benchmark=analytics.benchmark_return(benchmark_prices, start, end) if benchmark_prices else None,
        max_drawdown=analytics.max_drawdown(index),
        volatility=analytics.annualised_volatility(analytics.trading_day_returns(series)),
        summary=summary,
    )


def return_from_index(base_date: date, end: date, level: Decimal) -> analytics.PeriodReturn:
    """The TWR from the close of ``base_date`` (index 1) to ``end`` (index ``level``): what
    ``analytics.twr_of`` gives for the series since inception, from one stored row."""
    cumulative = level - ONE
    annual = None
    if analytics.longer_than_a_year(base_date, end):
        annual = analytics.annualise(cumulative, (end - base_date).days)
    return analytics.PeriodReturn(base_date, end, cumulative, annual)


def return_between(base_date: date, end: date, level_base: Decimal, level_end: Decimal) -> analytics.PeriodReturn:
    """The TWR from the close of ``base_date`` to ``end`` from the stored index levels of both
    days (the chain's growth in between; equal to ``twr_of`` the range to the 28th digit)."""
    return return_from_index(base_date, end, level_end / level_base)


def realised_by_year(rows: Iterable[tuple[int, Decimal, Decimal]]) -> dict[int, analytics.YearGains]:
    """``analytics.realised_gains_by_year`` from stored ``(year, short, long)`` sums."""
    out = {}
    for year, short, long in sorted(rows):
        if short or long:
            out[year] = analytics.YearGains(short=short, long=long)
    return out


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


#: Columns compared to the cent; the index is compared to 1e-10 (it is a ratio, not money).
MONEY_COLUMNS = tuple(c for c in DAY_COLUMNS if c not in ("date", "twr_index", "market_day"))
INDEX_TOLERANCE = Decimal("1e-10")


def differences(stored: Sequence[tuple], fresh: Sequence[DayValuation]) -> list[str]:
    """What differs between stored rows (tuples in ``DAY_COLUMNS`` order) and a recomputation:
    a missing or extra day, a money column to the cent, the index beyond 1e-10."""
    out = []
    by_day = {row[0]: row for row in stored}
    fresh_days = set()
    for f in fresh:
        fresh_days.add(f.date)
        row = by_day.get(f.date)
        if row is None:
            out.append(f"{f.date}: missing")
            continue
        s = dict(zip(DAY_COLUMNS, row, strict=True))
        for c in MONEY_COLUMNS:
            if cents(s[c]) != cents(getattr(f, c)):
                out.append(f"{f.date} {c}: stored {cents(s[c])}, recomputed {cents(getattr(f, c))}")
        if abs(s["twr_index"] - f.twr_index) > INDEX_TOLERANCE:
            out.append(f"{f.date} twr_index: stored {s['twr_index']}, recomputed {f.twr_index}")
        if s["market_day"] != f.market_day:
            out.append(f"{f.date} market_day: stored {s['market_day']}, recomputed {f.market_day}")
    out.extend(f"{d}: stored but not in the recomputation" for d in sorted(set(by_day) - fresh_days))
    return out
