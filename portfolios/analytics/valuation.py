"""Valuation: one incremental pass over the days gives the value series; value and price on a day."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .data import PortfolioData
from .ledger import (
    _DAY_KEY,
    _ONE_DAY,
    BUY,
    CASH_KINDS,
    DEPOSIT,
    ONE,
    SPLIT,
    TRANSFER_IN,
    TRANSFER_OUT,
    WITHDRAWAL,
    ZERO,
    DatedValues,
    InsufficientQuantity,
    MissingFxRate,
    PriceSeries,
    Txn,
    _bisect_day,
    _columns,
)

# --------------------------------------------------------------------------------------------
# Valuation: one incremental pass over the days
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValueSeries:
    """End-of-day values in base currency for ``dates`` (every calendar day of the range).

    ``opening_value`` is the value at the close of ``opening_date`` (the day before the range);
    ``flows[i]`` is the external flow (deposits, withdrawals, transfers at market value; money
    into the portfolio positive) that happened at the end of ``dates[i]``, already included in
    ``values[i]``. ``market_days[i]`` is true when any price or FX observation exists that day.
    """

    base_currency: str
    opening_date: date
    opening_value: Decimal
    dates: list[date]
    values: list[Decimal]
    flows: list[Decimal]
    market_days: list[bool]

    def points(self) -> list[tuple[date, Decimal]]:
        return list(zip(self.dates, self.values, strict=True))


class _Engine:
    """Positions, cash and last prices, moved forward one day at a time.

    Invariant: ``sec[c] == sum(qty[i] * last[i])`` over instruments ``i`` quoted in currency
    ``c`` (instruments without any price yet count 0). Each price move or quantity change
    updates that sum with one multiplication, so a day costs O(events of the day), not
    O(positions).
    """

    def __init__(self, data: PortfolioData):
        self.data = data
        self.base = data.base_currency
        self.qty: dict[object, Decimal] = {}
        self.last: dict[object, Decimal] = {}
        self.ccy: dict[object, str] = {}
        self.sec: dict[str, Decimal] = defaultdict(Decimal)
        self.cash: dict[str, Decimal] = defaultdict(Decimal)
        self.fx: dict[str, Decimal] = {self.base: ONE}
        self.first_price = {i: s[0][0] for i, s in data.prices.items() if s}
        self.first_fx = {c: s[0][0] for c, s in data.fx.items() if s}

    def currency(self, iid: object) -> str:
        c = self.ccy.get(iid)
        if c is None:
            c = self.ccy[iid] = self.data.currency_of(iid)
        return c

    def set_price(self, iid: object, px: Decimal) -> None:
        old = self.last.get(iid, ZERO)
        self.last[iid] = px
        q = self.qty.get(iid)
        if q:
            self.sec[self.currency(iid)] += q * (px - old)

    def fx_of(self, c: str, on: date) -> Decimal:
        rate = self.fx.get(c)
        if rate is None:
            raise MissingFxRate(f"no {c}->{self.base} rate known on or before {on.isoformat()}")
        return rate

    def apply(self, t: Txn, *, with_flow: bool) -> Decimal:
        """Apply one transaction; return its external flow in base (if ``with_flow``)."""
        c = t.currency
        if c != self.base:
            first = self.first_fx.get(c)
            if first is None or t.date < first:
                self.fx[c] = t.fx_rate
        c2 = t.counter_currency
        if c2 is not None and c2 != self.base:
            first = self.first_fx.get(c2)
            if first is None or t.date < first:
                self.fx[c2] = t.counter_fx_rate
        for currency, delta in t.cash_moves:
            self.cash[currency] += delta
        kind = t.kind
        if kind in CASH_KINDS:
            if not with_flow:
                return ZERO
            if kind == DEPOSIT:
                return t.gross * self.fx[c]
            if kind == WITHDRAWAL:
                return -t.gross * self.fx[c]
            return ZERO
        iid = t.instrument_id
        first = self.first_price.get(iid)
        no_market_price = first is None or t.date < first
        held = self.qty.get(iid, ZERO)
        if kind == SPLIT:
            if no_market_price and iid in self.last:
                self.set_price(iid, self.last[iid] / t.quantity)
            self._move(iid, held * t.quantity - held)
            return ZERO
        if no_market_price and t.price > 0:
            self.set_price(iid, t.price)
        if kind in (BUY, TRANSFER_IN):
            dq = t.quantity
        else:
            if t.quantity > held:
                raise InsufficientQuantity(instrument_id=iid, on=t.date, requested=t.quantity, held=held)
            dq = -t.quantity
        self._move(iid, dq)
        if with_flow and (kind in (TRANSFER_IN, TRANSFER_OUT)):
            ic = self.currency(iid)
            return dq * self.last.get(iid, ZERO) * self.fx_of(ic, t.date)
        return ZERO

    def _move(self, iid: object, dq: Decimal) -> None:
        self.qty[iid] = self.qty.get(iid, ZERO) + dq
        px = self.last.get(iid)
        if px is not None:
            self.sec[self.currency(iid)] += dq * px


class _GridGroup:
    """The instruments of one currency quoted on the common date grid, read row by row.

    ``quantities[k]`` mirrors ``_Engine.qty`` and ``closes[k]`` is the close last applied for
    instrument ``ids[k]`` (``_Engine.last`` is brought up to date from it only before a
    transaction reads it): the loop over the closes then needs no dictionary access."""

    __slots__ = ("currency", "ids", "quantities", "closes", "rows")

    def __init__(self, currency: str):
        self.currency = currency
        self.ids: list[object] = []
        self.quantities: list[Decimal | None] = []
        self.closes: Sequence[Decimal] = ()
        self.rows: Iterator[tuple[Decimal, ...]] = iter(())


# One day of one portfolio by currency: {currency: (securities in local, cash in local, FX rate to base)}.
CurrencyDay = dict[str, tuple[Decimal, Decimal, Decimal]]


def _run(data: PortfolioData, first: date, last: date, *, by_currency: list[CurrencyDay] | None = None) -> ValueSeries:
    """Value the portfolio at the close of every day in ``[first, last]`` in one pass.

    ``by_currency``: when a list, each day appends ``{currency: (securities, cash, rate)}``
    (local amounts and the day's rate to base) for the currencies with a non-zero amount."""
    engine = _Engine(data)
    txns = data.sorted_txns
    n = len(txns)
    i = 0
    # State at the close of the day before ``first``: replay earlier transactions, then
    # set the last market prices and rates known on that day.
    while i < n and txns[i].date < first:
        engine.apply(txns[i], with_flow=False)
        i += 1
    # Only instruments in the ledger can be held; the selector may pass more prices.
    held_ids = {t.instrument_id for t in txns if t.instrument_id is not None}
    last_px, qty, sec, ccy_of = engine.last, engine.qty, engine.sec, {}
    # Closes in the range. Instruments quoted on the same days (the usual case) share one
    # date grid and are read column-wise, one group per currency; the rest go through a
    # per-date dict.
    price_events: dict[date, list[tuple[object, Decimal, str]]] = defaultdict(list)
    grid: Sequence[date] | None = None
    groups: dict[str, _GridGroup] = {}
    columns: dict[str, list[Sequence[Decimal]]] = defaultdict(list)
    on_grid: dict[object, tuple[_GridGroup, int]] = {}
    for iid in held_ids:
        ccy_of[iid] = ccy = engine.currency(iid)
        series = data.prices.get(iid)
        if not series:
            continue
        lo = _bisect_day(series, first, right=False)
        if lo:
            engine.set_price(iid, series[lo - 1][1])
        hi = _bisect_day(series, last, right=True)
        last_px.setdefault(iid, ZERO)
        days, closes = _columns(series, lo, hi)
        if not days:
            continue
        if grid is None:
            grid = days
        if days == grid:
            group = groups.get(ccy) or groups.setdefault(ccy, _GridGroup(ccy))
            on_grid[iid] = (group, len(group.ids))
            group.ids.append(iid)
            columns[ccy].append(closes)
        else:
            for d, px in zip(days, closes, strict=True):
                price_events[d].append((iid, px, ccy))
    for ccy, group in groups.items():
        group.rows = zip(*columns[ccy], strict=True)
    grid_groups = list(groups.values())
    grid_days = grid or ()
    grid_pos, grid_len = 0, len(grid_days)
    fx_events: dict[date, list[tuple[str, Decimal]]] = defaultdict(list)
    for c, series in data.fx.items():
        if c == data.base_currency:
            continue
        lo = _bisect_day(series, first, right=False)
        if lo:
            engine.fx[c] = series[lo - 1][1]
        hi = _bisect_day(series, last, right=True)
        for d, rate in zip(*_columns(series, lo, hi), strict=True):
            fx_events[d].append((c, rate))
    currencies = {t.currency for t in txns} | {t.counter_currency for t in txns if t.counter_currency}
    currencies |= set(ccy_of.values())
    for c in currencies:
        sec[c] += ZERO
        engine.cash[c] += ZERO

    dates, values, flows, market = [], [], [], []
    fx, apply, qty_get, cash = engine.fx, engine.apply, qty.get, engine.cash
    # The day's value: securities and cash per currency at the day's rate. Every currency has
    # its key in ``sec`` and ``cash`` by now, so the order of the sum is fixed once.
    value_order = list(sec.keys() | cash.keys())
    day = first
    while day <= last:
        rates = fx_events.get(day)
        if rates:
            for c, rate in rates:
                fx[c] = rate
        # inlined _Engine.set_price: these loops run once per close in the range
        moved = False
        if grid_pos < grid_len and grid_days[grid_pos] == day:
            if not grid_pos:  # the closes carried into the grid: known only now
                for group in grid_groups:
                    group.quantities = [qty_get(iid) for iid in group.ids]
                    group.closes = [last_px[iid] for iid in group.ids]
            grid_pos += 1
            moved = True
            for group in grid_groups:
                row = next(group.rows)
                total = sec[group.currency]
                for q, px, old in zip(group.quantities, row, group.closes, strict=True):
                    if q:
                        total += q * (px - old)
                sec[group.currency] = total
                group.closes = row
        moves = price_events.get(day)
        if moves:
            moved = True
            for iid, px, ccy in moves:
                q = qty_get(iid)
                if q:
                    sec[ccy] += q * (px - last_px[iid])
                last_px[iid] = px
        flow = ZERO
        while i < n and txns[i].date == day:
            t = txns[i]
            slot = on_grid.get(t.instrument_id)
            if slot is None:
                flow += apply(t, with_flow=True)
            else:
                group, k = slot
                if grid_pos:
                    last_px[t.instrument_id] = group.closes[k]
                flow += apply(t, with_flow=True)
                if grid_pos:
                    group.quantities[k] = qty_get(t.instrument_id)
            i += 1
        total = ZERO
        for c in value_order:
            amount = sec[c] + cash[c]
            if amount:
                day_rate = fx.get(c)
                if day_rate is None:
                    engine.fx_of(c, day)  # raises MissingFxRate
                total += amount * day_rate  # type: ignore[operator]  # not None: fx_of raised above
        dates.append(day)
        values.append(total)
        flows.append(flow)
        market.append(moved or bool(rates))
        if by_currency is not None:
            by_currency.append({c: (sec[c], cash[c], fx[c]) for c in value_order if sec[c] or cash[c]})
        day += _ONE_DAY
    return ValueSeries(
        base_currency=data.base_currency,
        opening_date=first - _ONE_DAY,
        opening_value=ZERO,
        dates=dates,
        values=values,
        flows=flows,
        market_days=market,
    )


def value_series(data: PortfolioData, start: date, end: date) -> ValueSeries:
    """Daily end-of-day values in base currency for every calendar day in ``[start, end]``."""
    if end < start:
        raise ValueError("end is before start")
    raw = _run(data, start - _ONE_DAY, end)
    return ValueSeries(
        base_currency=raw.base_currency,
        opening_date=raw.dates[0],
        opening_value=raw.values[0],
        dates=raw.dates[1:],
        values=raw.values[1:],
        flows=raw.flows[1:],
        market_days=raw.market_days[1:],
    )


def value_series_by_currency(data: PortfolioData, start: date, end: date) -> tuple[ValueSeries, list[CurrencyDay]]:
    """``value_series`` plus, per day, ``{currency: (securities, cash, rate to base)}`` in local
    amounts: the same pass, so the parts add up to the day's value."""
    if end < start:
        raise ValueError("end is before start")
    per_day: list[CurrencyDay] = []
    raw = _run(data, start - _ONE_DAY, end, by_currency=per_day)
    series = ValueSeries(
        base_currency=raw.base_currency,
        opening_date=raw.dates[0],
        opening_value=raw.values[0],
        dates=raw.dates[1:],
        values=raw.values[1:],
        flows=raw.flows[1:],
        market_days=raw.market_days[1:],
    )
    return series, per_day[1:]


def value_on(data: PortfolioData, day: date) -> Decimal:
    """Value in base currency at the close of ``day`` (positions + cash, converted)."""
    return _run(data, day, day).values[0]


def price_on(series: PriceSeries, day: date) -> Decimal | None:
    """Last observation on or before ``day`` (carry forward), or None."""
    if type(series) is DatedValues:
        pos = bisect_right(series.dates, day)
        return series.values[pos - 1] if pos else None
    pos = bisect_right(series, day, key=_DAY_KEY)
    return series[pos - 1][1] if pos else None
