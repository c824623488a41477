"""Tax lots: FIFO / LIFO / HIFO lot books, realised gains by year, cash balances."""

from __future__ import annotations

from bisect import insort
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .ledger import (
    BUY,
    CASH_KINDS,
    DAYS_PER_YEAR,
    LOT_METHODS,
    SELL,
    SPLIT,
    TRANSFER_IN,
    ZERO,
    InsufficientQuantity,
    Txn,
    UnknownLot,
    _txn_date,
)

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
        for currency, delta in t.cash_moves:
            cash[currency] += delta
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
            for currency, delta in t.cash_moves:
                cash[currency] += delta
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
