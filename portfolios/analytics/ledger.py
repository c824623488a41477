"""The analytics' inputs: transaction kinds and limits, errors, ``Txn``, instruments and dated series."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
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
CONVERSION = "conversion"

KINDS = frozenset(
    {BUY, SELL, DIVIDEND, INTEREST, FEE, TAX, DEPOSIT, WITHDRAWAL, SPLIT, TRANSFER_IN, TRANSFER_OUT, CONVERSION}
)
SECURITY_KINDS = frozenset({BUY, SELL, SPLIT, TRANSFER_IN, TRANSFER_OUT})
CASH_KINDS = frozenset({DIVIDEND, INTEREST, FEE, TAX, DEPOSIT, WITHDRAWAL, CONVERSION})
#: Kinds whose cash may settle in another currency than the trade's (``counter_currency``).
SETTLED_KINDS = frozenset({BUY, SELL})
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
    * ``counter_currency``, ``counter_amount``: for ``conversion``, the currency bought and how
      much of it (``amount`` of ``currency`` is sold, ``fees`` are in ``currency``); for a buy or
      sell settled from another currency's cash, that currency and the amount it pays or receives
      (fees included), instead of the trade currency's cash.
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
    counter_currency: str | None = None
    counter_amount: Decimal | None = None

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
        if self.kind == CONVERSION:
            if not self.counter_currency or self.counter_currency == self.currency:
                raise InvalidTransaction(f"transaction {self.id}: a conversion buys another currency")
            if not self.amount or not self.counter_amount or self.counter_amount <= 0:
                raise InvalidTransaction(f"transaction {self.id}: a conversion needs both amounts, positive")
        elif self.counter_currency is not None:
            if self.kind not in SETTLED_KINDS:
                raise InvalidTransaction(f"transaction {self.id}: only buys and sells settle in another currency")
            if self.counter_currency == self.currency or self.counter_amount is None or self.counter_amount < 0:
                raise InvalidTransaction(f"transaction {self.id}: settlement needs another currency and its amount")

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
        if kind == CONVERSION:
            return -(self.gross + self.fees)
        return ZERO

    @property
    def cash_moves(self) -> tuple[tuple[str, Decimal], ...]:
        """Every signed change of cash, per currency: one for most kinds, two for a conversion
        (sold and bought); a buy or sell settled from another currency moves that one only."""
        if self.counter_currency is None or self.counter_amount is None:
            return ((self.currency, self.cash_effect),)
        if self.kind == CONVERSION:
            return ((self.currency, self.cash_effect), (self.counter_currency, self.counter_amount))
        sign = -1 if self.kind == BUY else 1
        return ((self.counter_currency, sign * self.counter_amount),)

    @property
    def counter_fx_rate(self) -> Decimal:
        """Value of one unit of ``counter_currency`` in base, implied by the trade (its own rate)."""
        if not self.counter_amount:
            return self.fx_rate
        return (
            self.fx_rate * (self.gross if self.kind == CONVERSION else self.quantity * self.price) / self.counter_amount
        )


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


def _txn_date(t: Txn) -> date:
    return t.date
