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
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property
from operator import itemgetter
from typing import overload

ZERO = Decimal(0)
ONE = Decimal(1)
DAYS_PER_YEAR = 365
TRADING_DAYS_PER_YEAR = 252
_ONE_DAY = timedelta(days=1)
# The first day a ledger, a valuation or a range may name (firm-wide, every door: API, form, CSV
# import). The analytics step a day before a range's start, so any date from here on is safe;
# ``date.min`` (0001-01-01) was not (issue 27: OverflowError, the firm's dashboard down).
EARLIEST_DATE = date(1900, 1, 1)
_DAY_KEY = itemgetter(0)

BUY = "buy"
SELL = "sell"
DIVIDEND = "dividend"
INTEREST = "interest"
FEE = "fee"
TAX = "tax"
DEPOSIT = "deposit"
WITHDRAWAL = "withdrawal"
SPLIT = "split"
TRANSFER_IN = "transfer_in"
TRANSFER_OUT = "transfer_out"

KINDS = frozenset({BUY, SELL, DIVIDEND, INTEREST, FEE, TAX, DEPOSIT, WITHDRAWAL, SPLIT, TRANSFER_IN, TRANSFER_OUT})
SECURITY_KINDS = frozenset({BUY, SELL, SPLIT, TRANSFER_IN, TRANSFER_OUT})
CASH_KINDS = frozenset({DIVIDEND, INTEREST, FEE, TAX, DEPOSIT, WITHDRAWAL})
LOT_METHODS = ("fifo", "lifo", "hifo")
ALLOCATION_DIMENSIONS = ("asset_class", "sector", "country", "currency")
PRESETS = ("MTD", "QTD", "YTD", "1Y", "3Y", "SI")
CASH_BUCKET = "cash"
UNCLASSIFIED = "unclassified"


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class AnalyticsError(Exception):
    """Base class of every error raised by this module."""


class InvalidTransaction(AnalyticsError, ValueError):
    """A transaction is malformed (unknown kind, negative quantity, missing instrument...)."""


class InsufficientQuantity(AnalyticsError):
    """A sell or transfer out takes more than is held (in total or in the chosen lot)."""

    def __init__(
        self, *, instrument_id: object, on: date, requested: Decimal, held: Decimal, lot_id: object = None
    ) -> None:
        self.instrument_id = instrument_id
        self.date = on
        self.requested = requested
        self.held = held
        self.lot_id = lot_id
        where = f" in lot {lot_id}" if lot_id is not None else ""
        super().__init__(
            f"cannot remove {requested} of instrument {instrument_id} on {on.isoformat()}: only {held} held{where}"
        )


class UnknownLot(AnalyticsError):
    """A specific-lot sell names a lot that is not open for that instrument."""


class MissingFxRate(AnalyticsError):
    """A value in a foreign currency has to be converted but no rate is known yet."""


class XirrNoSolution(AnalyticsError):
    """The cash flows have no internal rate of return (e.g. all flows of one sign)."""


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

_Date = date  # inside ``Txn`` the name ``date`` is the field


@dataclass(frozen=True, slots=True)
class Txn:
    """One ledger row, as the selector reads it.

    * ``quantity``: units for security kinds; the split ratio for ``split`` (2 = 2-for-1).
    * ``price``: per unit, in ``currency``. For ``transfer_in`` it is the cost basis per unit.
    * ``amount``: gross cash amount of a cash kind (dividend, interest, fee, tax, deposit,
      withdrawal), positive. When ``None``, ``quantity * price`` is used (e.g. dividend per
      share times shares).
    * ``fees``: charges on top, always positive, in ``currency``. They reduce cash, are part of
      a buy's cost basis and reduce a sell's proceeds.
    * ``fx_rate``: value of one unit of ``currency`` in the portfolio's base currency on the
      transaction date (1 when ``currency`` is the base currency). It fixes the historic cost
      of lots and the base value of income, fees and taxes.
    * ``lots``: for ``sell`` / ``transfer_out``, optional ``(lot_id, quantity)`` pairs for a
      specific-lot disposal. A lot's id is the id of the buy / transfer in that opened it.
    * ``acquired_on``: for ``transfer_in``, the original acquisition date if known (drives the
      long/short holding period); defaults to the transfer date.
    """

    id: object
    date: date
    kind: str
    currency: str
    instrument_id: object = None
    quantity: Decimal = ZERO
    price: Decimal = ZERO
    fees: Decimal = ZERO
    fx_rate: Decimal = ONE
    amount: Decimal | None = None
    lots: tuple[tuple[object, Decimal], ...] | None = None
    acquired_on: _Date | None = None

    def __init__(
        self,
        id: object,
        date: _Date,
        kind: str,
        currency: str,
        instrument_id: object = None,
        quantity: Decimal = ZERO,
        price: Decimal = ZERO,
        fees: Decimal = ZERO,
        fx_rate: Decimal = ONE,
        amount: Decimal | None = None,
        lots: tuple[tuple[object, Decimal], ...] | None = None,
        acquired_on: _Date | None = None,
    ) -> None:
        # The __init__ dataclass would write, but faster: a frozen dataclass's own sets each
        # field through object.__setattr__, about 3.5 us a row on the development machine and
        # 5,000 rows per analytics load; the slots' setters do the same in 2 us. A test checks
        # that this signature is the fields' (names, order, defaults).
        put = _TXN_SETTERS
        put[0](self, id)
        put[1](self, date)
        put[2](self, kind)
        put[3](self, currency)
        put[4](self, instrument_id)
        put[5](self, quantity)
        put[6](self, price)
        put[7](self, fees)
        put[8](self, fx_rate)
        put[9](self, amount)
        put[10](self, lots)
        put[11](self, acquired_on)
        self.__post_init__()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidTransaction(f"transaction {self.id}: unknown kind {self.kind!r}")
        if not self.currency:
            raise InvalidTransaction(f"transaction {self.id}: currency is required")
        if self.fees < 0 or self.quantity < 0 or self.price < 0:
            raise InvalidTransaction(f"transaction {self.id}: quantity, price and fees must not be negative")
        if self.fx_rate <= 0:
            raise InvalidTransaction(f"transaction {self.id}: fx_rate must be positive")
        if self.kind in SECURITY_KINDS:
            if self.instrument_id is None:
                raise InvalidTransaction(f"transaction {self.id}: {self.kind} needs an instrument")
            if self.quantity <= 0:
                raise InvalidTransaction(f"transaction {self.id}: quantity must be positive")
            if self.kind in (TRANSFER_IN, TRANSFER_OUT, SPLIT) and self.fees:
                raise InvalidTransaction(
                    f"transaction {self.id}: a {self.kind} does not touch cash; "
                    "record its charges as a separate fee transaction"
                )
        if self.lots is not None:
            if self.kind not in (SELL, TRANSFER_OUT):
                raise InvalidTransaction(f"transaction {self.id}: lots only apply to disposals")
            if sum((q for _, q in self.lots), ZERO) != self.quantity:
                raise InvalidTransaction(f"transaction {self.id}: lot quantities must add up to the quantity")
        if self.amount is not None and self.amount < 0:
            raise InvalidTransaction(f"transaction {self.id}: amount must not be negative")

    @property
    def gross(self) -> Decimal:
        """Cash amount before fees: ``amount`` if given, else ``quantity * price``."""
        return self.amount if self.amount is not None else self.quantity * self.price

    @property
    def cash_effect(self) -> Decimal:
        """Signed change of cash in ``currency`` (securities transfers and splits: zero)."""
        kind = self.kind
        if kind == BUY:
            return -(self.quantity * self.price + self.fees)
        if kind == SELL:
            return self.quantity * self.price - self.fees
        if kind in (DIVIDEND, INTEREST, DEPOSIT):
            return self.gross - self.fees
        if kind in (FEE, TAX, WITHDRAWAL):
            return -(self.gross + self.fees)
        return ZERO


_TXN_SETTERS = tuple(Txn.__dict__[f.name].__set__ for f in fields(Txn))


@dataclass(frozen=True, slots=True)
class InstrumentInfo:
    id: object
    symbol: str
    currency: str
    asset_class: str | None = None
    sector: str | None = None
    country: str | None = None
    name: str = ""


PriceSeries = Sequence[tuple[date, Decimal]]


class DatedValues(Sequence[tuple[date, Decimal]]):
    """A price series held as two parallel lists, ``dates`` (sorted) and ``values``, that reads
    as the sequence of ``(date, value)`` pairs any ``PriceSeries`` is.

    The selectors load closes this way: ten years of closes for 50 instruments then need no
    tuple per close, instruments quoted on the same days share one list of dates, and the
    valuation reads the two columns directly."""

    __slots__ = ("dates", "values")

    def __init__(self, dates: list[date], values: list[Decimal]):
        if len(dates) != len(values):
            raise ValueError("dates and values differ in length")
        self.dates = dates
        self.values = values

    def __len__(self) -> int:
        return len(self.dates)

    @overload
    def __getitem__(self, i: int) -> tuple[date, Decimal]: ...
    @overload
    def __getitem__(self, i: slice) -> DatedValues: ...
    def __getitem__(self, i: int | slice) -> tuple[date, Decimal] | DatedValues:
        if isinstance(i, slice):
            return DatedValues(self.dates[i], self.values[i])
        return self.dates[i], self.values[i]

    def __iter__(self) -> Iterator[tuple[date, Decimal]]:
        return zip(self.dates, self.values, strict=True)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DatedValues):
            return self.dates == other.dates and self.values == other.values
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable lists inside, like a list (the documented idiom)

    def __repr__(self) -> str:
        return f"DatedValues({list(self)!r})"


def _columns(series: PriceSeries, lo: int, hi: int) -> tuple[list[date], list[Decimal]]:
    """Dates and values of ``series[lo:hi]``."""
    if type(series) is DatedValues:
        return series.dates[lo:hi], series.values[lo:hi]
    part = series[lo:hi]
    return [d for d, _ in part], [v for _, v in part]


def _bisect_day(series: PriceSeries, day: date, *, right: bool) -> int:
    if type(series) is DatedValues:
        return (bisect_right if right else bisect_left)(series.dates, day)
    return (bisect_right if right else bisect_left)(series, day, key=_DAY_KEY)


@dataclass(frozen=True)
class PortfolioData:
    """Everything the analytics need about one portfolio.

    ``prices`` maps instrument id to its daily closes in the instrument's currency, sorted by
    date, one row per date, *unadjusted* for splits (the ledger's split rows adjust the
    quantities). ``fx`` maps currency to ``(date, value of one unit in base currency)``, sorted.
    Transactions may come in any order; same-day rows keep the order given (sort by
    ``(date, id)`` in the selector).
    """

    base_currency: str
    txns: Sequence[Txn]
    instruments: Mapping[object, InstrumentInfo] = field(default_factory=dict)
    prices: Mapping[object, PriceSeries] = field(default_factory=dict)
    fx: Mapping[str, PriceSeries] = field(default_factory=dict)
    lot_method: str = "fifo"

    @cached_property
    def sorted_txns(self) -> list[Txn]:
        return sorted(self.txns, key=_txn_date)

    @cached_property
    def inception(self) -> date | None:
        return self.sorted_txns[0].date if self.txns else None

    @cached_property
    def lot_book(self) -> LotBook:
        return build_lots(self.sorted_txns, method=self.lot_method)

    def currency_of(self, instrument_id: object) -> str:
        info = self.instruments.get(instrument_id)
        if info is not None:
            return info.currency
        return self._trade_currency.get(instrument_id, self.base_currency)

    @cached_property
    def _trade_currency(self) -> dict[object, str]:
        out: dict[object, str] = {}
        for t in self.sorted_txns:
            if t.instrument_id is not None:
                out.setdefault(t.instrument_id, t.currency)
        return out


def _txn_date(t: Txn) -> date:
    return t.date


# --------------------------------------------------------------------------------------------
# Lots
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lot:
    lot_id: object
    instrument_id: object
    acquired: date
    quantity: Decimal
    currency: str
    cost_local: Decimal  # total cost incl. buy fees, in the trade currency
    cost_base: Decimal  # the same at the historic FX rate of the acquisition

    @property
    def cost_per_unit_local(self) -> Decimal:
        return self.cost_local / self.quantity

    @property
    def cost_per_unit_base(self) -> Decimal:
        return self.cost_base / self.quantity


@dataclass(frozen=True, slots=True)
class RealisedLot:
    txn_id: object
    lot_id: object
    instrument_id: object
    acquired: date
    disposed: date
    quantity: Decimal
    proceeds_base: Decimal  # net of the sell's fees (pro rata), at the sell's FX rate
    cost_base: Decimal
    proceeds_local: Decimal
    cost_local: Decimal
    same_currency: bool

    @property
    def gain_base(self) -> Decimal:
        return self.proceeds_base - self.cost_base

    @property
    def gain_local(self) -> Decimal | None:
        return self.proceeds_local - self.cost_local if self.same_currency else None

    @property
    def holding_days(self) -> int:
        return (self.disposed - self.acquired).days

    @property
    def term(self) -> str:
        """``long`` when held more than 365 days, else ``short``."""
        return "long" if self.holding_days > DAYS_PER_YEAR else "short"


@dataclass(frozen=True, slots=True)
class LotBook:
    open_lots: list[Lot]
    realised: list[RealisedLot]
    cash: dict[str, Decimal]

    def lots_of(self, instrument_id: object) -> list[Lot]:
        return [lot for lot in self.open_lots if lot.instrument_id == instrument_id]

    def quantity_of(self, instrument_id: object) -> Decimal:
        return sum((lot.quantity for lot in self.lots_of(instrument_id)), ZERO)


class _OpenLot:
    __slots__ = ("lot_id", "seq", "acquired", "quantity", "currency", "cost_local", "cost_base")

    def __init__(
        self,
        lot_id: object,
        seq: int,
        acquired: date,
        quantity: Decimal,
        currency: str,
        cost_local: Decimal,
        cost_base: Decimal,
    ) -> None:
        self.lot_id = lot_id
        self.seq = seq
        self.acquired = acquired
        self.quantity = quantity
        self.currency = currency
        self.cost_local = cost_local
        self.cost_base = cost_base

    def __lt__(self, other: _OpenLot) -> bool:  # FIFO order: acquisition date, then ledger order
        return (self.acquired, self.seq) < (other.acquired, other.seq)


def build_lots(txns: Iterable[Txn], method: str = "fifo", *, until: date | None = None) -> LotBook:
    """Replay the ledger into open tax lots, realised lots and cash per currency.

    Lots are opened by buys (cost = quantity * price + fees) and transfers in (cost = quantity
    * price). Sells close lots in ``method`` order (``fifo`` default, ``lifo``, ``hifo`` =
    highest base cost per unit first) unless the sell lists specific lots. Splits scale the
    quantity of open lots and keep their total cost. Transfers out remove lots without a gain.

    Raises ``InsufficientQuantity`` when a disposal takes more than is held, ``UnknownLot``
    when a specific lot is not open for that instrument.
    """
    if method not in LOT_METHODS:
        raise ValueError(f"unknown lot method {method!r}; use one of {LOT_METHODS}")
    open_by_instrument: dict[object, list[_OpenLot]] = defaultdict(list)
    realised: list[RealisedLot] = []
    cash: dict[str, Decimal] = defaultdict(Decimal)
    for seq, t in enumerate(sorted(txns, key=_txn_date)):
        if until is not None and t.date > until:
            break
        kind = t.kind
        cash[t.currency] += t.cash_effect
        if kind in CASH_KINDS:
            continue
        lots = open_by_instrument[t.instrument_id]
        if kind in (BUY, TRANSFER_IN):
            cost_local = t.quantity * t.price + t.fees
            acquired = t.acquired_on if kind == TRANSFER_IN and t.acquired_on else t.date
            insort(
                lots,
                _OpenLot(t.id, seq, acquired, t.quantity, t.currency, cost_local, cost_local * t.fx_rate),
            )
        elif kind == SPLIT:
            for lot in lots:
                lot.quantity *= t.quantity
        else:  # SELL or TRANSFER_OUT
            taken = _take_from_lots(lots, t, method)
            if kind == SELL:
                realised.extend(_realise(t, taken))
    open_lots = [
        Lot(lot.lot_id, iid, lot.acquired, lot.quantity, lot.currency, lot.cost_local, lot.cost_base)
        for iid, lots in open_by_instrument.items()
        for lot in lots
    ]
    return LotBook(open_lots=open_lots, realised=realised, cash=dict(cash))


_Taken = list[tuple[_OpenLot, Decimal, Decimal, Decimal]]  # (lot, quantity, cost local, cost base)


def _take_from_lots(lots: list[_OpenLot], t: Txn, method: str) -> _Taken:
    """Remove ``t.quantity`` from ``lots`` (in place); return (lot, qty, cost_local, cost_base)."""
    held = sum((lot.quantity for lot in lots), ZERO)
    if t.quantity > held:
        raise InsufficientQuantity(instrument_id=t.instrument_id, on=t.date, requested=t.quantity, held=held)
    if t.lots is not None:
        by_id = {lot.lot_id: lot for lot in lots}
        plan = []
        for lot_id, qty in t.lots:
            lot = by_id.get(lot_id)
            if lot is None:
                raise UnknownLot(
                    f"transaction {t.id}: lot {lot_id} is not open for instrument "
                    f"{t.instrument_id} on {t.date.isoformat()}"
                )
            plan.append((lot, qty))
    else:
        if method == "fifo":
            order = lots
        elif method == "lifo":
            order = lots[::-1]
        else:
            order = sorted(lots, key=lambda lot: -(lot.cost_base / lot.quantity))
        plan, remaining = [], t.quantity
        for lot in order:
            if remaining <= 0:
                break
            qty = min(lot.quantity, remaining)
            plan.append((lot, qty))
            remaining -= qty
    taken = []
    for lot, qty in plan:
        if qty > lot.quantity:
            raise InsufficientQuantity(
                instrument_id=t.instrument_id,
                on=t.date,
                requested=qty,
                held=lot.quantity,
                lot_id=lot.lot_id,
            )
        if qty == lot.quantity:
            cost_local, cost_base = lot.cost_local, lot.cost_base
        else:
            cost_local = lot.cost_local * qty / lot.quantity
            cost_base = lot.cost_base * qty / lot.quantity
        lot.quantity -= qty
        lot.cost_local -= cost_local
        lot.cost_base -= cost_base
        taken.append((lot, qty, cost_local, cost_base))
    lots[:] = [lot for lot in lots if lot.quantity > 0]
    return taken


def _realise(t: Txn, taken: _Taken) -> list[RealisedLot]:
    proceeds_total = t.quantity * t.price - t.fees
    out, allocated = [], ZERO
    for i, (lot, qty, cost_local, cost_base) in enumerate(taken):
        # The last piece takes the remainder so the pieces add up to the proceeds exactly.
        proceeds = proceeds_total - allocated if i == len(taken) - 1 else proceeds_total * qty / t.quantity
        allocated += proceeds
        out.append(  # positional: one per disposed lot, faster than keywords
            RealisedLot(
                t.id,  # txn_id
                lot.lot_id,
                t.instrument_id,
                lot.acquired,
                t.date,  # disposed
                qty,  # quantity
                proceeds * t.fx_rate,  # proceeds_base
                cost_base,
                proceeds,  # proceeds_local
                cost_local,
                lot.currency == t.currency,  # same_currency
            )
        )
    return out


def cash_balances(txns: Iterable[Txn], *, until: date | None = None) -> dict[str, Decimal]:
    """Cash per currency implied by the ledger (transactions up to and including ``until``)."""
    cash: dict[str, Decimal] = defaultdict(Decimal)
    for t in txns:
        if until is None or t.date <= until:
            cash[t.currency] += t.cash_effect
    return dict(cash)


@dataclass(frozen=True, slots=True)
class YearGains:
    short: Decimal
    long: Decimal

    @property
    def total(self) -> Decimal:
        return self.short + self.long


def realised_gains_by_year(realised: Iterable[RealisedLot]) -> dict[int, YearGains]:
    """Realised gain in base currency per calendar year of disposal, split short/long term."""
    short: dict[int, Decimal] = defaultdict(Decimal)
    long: dict[int, Decimal] = defaultdict(Decimal)
    for r in realised:
        (long if r.term == "long" else short)[r.disposed.year] += r.gain_base
    years = sorted(set(short) | set(long))
    return {y: YearGains(short=short.get(y, ZERO), long=long.get(y, ZERO)) for y in years}


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
        self.cash[c] += t.cash_effect
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


def _run(data: PortfolioData, first: date, last: date) -> ValueSeries:
    """Value the portfolio at the close of every day in ``[first, last]`` in one pass."""
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
    currencies = {t.currency for t in txns} | set(ccy_of.values())
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


# --------------------------------------------------------------------------------------------
# Holdings, allocation, period summary
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LotHolding:
    lot_id: object
    acquired: date
    quantity: Decimal
    cost_base: Decimal
    market_value_base: Decimal

    @property
    def unrealised_gain_base(self) -> Decimal:
        return self.market_value_base - self.cost_base


@dataclass(frozen=True, slots=True)
class Holding:
    instrument_id: object
    currency: str
    quantity: Decimal
    price: Decimal  # local close used (carried forward, or last trade price)
    fx_rate: Decimal  # local -> base on the valuation date
    market_value_local: Decimal
    market_value_base: Decimal
    cost_local: Decimal
    cost_base: Decimal  # at historic FX: unrealised gain in base includes the FX effect
    lots: tuple[LotHolding, ...]

    @property
    def unrealised_gain_base(self) -> Decimal:
        return self.market_value_base - self.cost_base


@dataclass(frozen=True, slots=True)
class HoldingsSnapshot:
    date: date
    base_currency: str
    holdings: tuple[Holding, ...]
    cash: dict[str, Decimal]  # local amounts
    cash_base: dict[str, Decimal]

    @property
    def securities_value(self) -> Decimal:
        return sum((h.market_value_base for h in self.holdings), ZERO)

    @property
    def total_value(self) -> Decimal:
        return self.securities_value + sum(self.cash_base.values(), ZERO)

    @property
    def unrealised_gain_base(self) -> Decimal:
        return sum((h.unrealised_gain_base for h in self.holdings), ZERO)


def holdings_on(data: PortfolioData, day: date) -> HoldingsSnapshot:
    """Positions per instrument and per lot at the close of ``day``, plus cash.

    Priced like the value series: last close on or before ``day``, else the last trade price;
    FX: last rate on or before ``day``, else the last transaction rate in that currency.
    """
    txns = data.sorted_txns
    # On or after the last trade (the usual "today"), the book is the whole ledger's, which the
    # data already holds (period summaries use it too): replay only for a day in the past.
    book = data.lot_book if txns and txns[-1].date <= day else build_lots(txns, method=data.lot_method, until=day)
    trade_price: dict[object, Decimal] = {}
    txn_fx: dict[str, Decimal] = {}
    for t in data.sorted_txns:
        if t.date > day:
            break
        txn_fx[t.currency] = t.fx_rate
        if t.kind == SPLIT and t.instrument_id in trade_price:
            trade_price[t.instrument_id] /= t.quantity
        elif t.kind in SECURITY_KINDS and t.price > 0:
            trade_price[t.instrument_id] = t.price

    def rate(c: str) -> Decimal:
        if c == data.base_currency:
            return ONE
        r = price_on(data.fx.get(c, ()), day)
        if r is None:
            r = txn_fx.get(c)
        if r is None:
            raise MissingFxRate(f"no {c}->{data.base_currency} rate known on or before {day.isoformat()}")
        return r

    by_instrument: dict[object, list[Lot]] = defaultdict(list)
    for lot in book.open_lots:
        by_instrument[lot.instrument_id].append(lot)
    holdings = []
    for iid, lots in by_instrument.items():
        c = data.currency_of(iid)
        px = price_on(data.prices.get(iid, ()), day)
        if px is None:
            px = trade_price.get(iid, ZERO)
        fx = rate(c)
        lot_rows = tuple(
            LotHolding(lot.lot_id, lot.acquired, lot.quantity, lot.cost_base, lot.quantity * px * fx) for lot in lots
        )
        qty = sum((lot.quantity for lot in lots), ZERO)
        holdings.append(
            Holding(
                instrument_id=iid,
                currency=c,
                quantity=qty,
                price=px,
                fx_rate=fx,
                market_value_local=qty * px,
                market_value_base=qty * px * fx,
                cost_local=sum((lot.cost_local for lot in lots), ZERO),
                cost_base=sum((lot.cost_base for lot in lots), ZERO),
                lots=lot_rows,
            )
        )
    cash = {c: amount for c, amount in book.cash.items() if amount}
    return HoldingsSnapshot(
        date=day,
        base_currency=data.base_currency,
        holdings=tuple(holdings),
        cash=cash,
        cash_base={c: amount * rate(c) for c, amount in cash.items()},
    )


def allocation(
    data: PortfolioData, day: date, by: str = "asset_class", *, snapshot: HoldingsSnapshot | None = None
) -> dict[str, Decimal]:
    """Weights of market value (base currency) per bucket at the close of ``day``.

    Cash is the bucket ``"cash"`` for asset class, sector and country, and counts in its own
    currency for ``by="currency"``. Missing classifications go to ``"unclassified"``. Weights
    add up to exactly 1 (the largest bucket absorbs the last digit of rounding); an empty or
    zero-value portfolio gives ``{}``. Negative cash (overdraft) gives a negative weight.
    """
    if by not in ALLOCATION_DIMENSIONS:
        raise ValueError(f"unknown allocation dimension {by!r}; use one of {ALLOCATION_DIMENSIONS}")
    snap = snapshot if snapshot is not None else holdings_on(data, day)
    buckets: dict[str, Decimal] = defaultdict(Decimal)
    for h in snap.holdings:
        key: str | None
        if by == "currency":
            key = h.currency
        else:
            info = data.instruments.get(h.instrument_id)
            key = getattr(info, by, None) if info is not None else None
        buckets[key or UNCLASSIFIED] += h.market_value_base
    for c, amount in snap.cash_base.items():
        buckets[c if by == "currency" else CASH_BUCKET] += amount
    total = sum(buckets.values(), ZERO)
    if not total:
        return {}
    weights = {k: v / total for k, v in buckets.items() if v}
    largest = max(weights, key=lambda k: abs(weights[k]))
    weights[largest] = ONE - sum((w for k, w in weights.items() if k != largest), ZERO)
    return dict(sorted(weights.items(), key=lambda kv: -kv[1]))


@dataclass(frozen=True, slots=True)
class PeriodSummary:
    """Ledger totals over a date range, in base currency at each transaction's FX rate."""

    realised_gain: Decimal
    realised_short: Decimal
    realised_long: Decimal
    dividends: Decimal
    interest: Decimal
    fees: Decimal  # the fees field of every row plus fee transactions
    taxes: Decimal
    deposits: Decimal
    withdrawals: Decimal

    @property
    def income(self) -> Decimal:
        return self.dividends + self.interest


def period_summary(data: PortfolioData, start: date, end: date) -> PeriodSummary:
    """Realised gain (by disposal date), income, fees, taxes and deposits over ``[start, end]``."""
    short = long = ZERO
    for r in data.lot_book.realised:
        if start <= r.disposed <= end:
            if r.term == "long":
                long += r.gain_base
            else:
                short += r.gain_base
    sums: dict[str, Decimal] = defaultdict(Decimal)
    fees = ZERO
    for t in data.sorted_txns:
        if t.date < start:
            continue
        if t.date > end:
            break
        fees += t.fees * t.fx_rate
        if t.kind in CASH_KINDS:
            sums[t.kind] += t.gross * t.fx_rate
    return PeriodSummary(
        realised_gain=short + long,
        realised_short=short,
        realised_long=long,
        dividends=sums[DIVIDEND],
        interest=sums[INTEREST],
        fees=fees + sums[FEE],
        taxes=sums[TAX],
        deposits=sums[DEPOSIT],
        withdrawals=sums[WITHDRAWAL],
    )


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
