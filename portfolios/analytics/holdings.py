"""Holdings on a day, allocation by asset class / sector / country / currency, the period summary."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .data import PortfolioData
from .ledger import (
    ALLOCATION_DIMENSIONS,
    CASH_BUCKET,
    CASH_KINDS,
    DEPOSIT,
    DIVIDEND,
    FEE,
    INTEREST,
    ONE,
    SECURITY_KINDS,
    SPLIT,
    TAX,
    UNCLASSIFIED,
    WITHDRAWAL,
    ZERO,
    MissingFxRate,
)
from .lots import Lot, build_lots
from .valuation import price_on

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


@dataclass(frozen=True, slots=True)
class ReturnSplit:
    """A holding's unrealised gain in base currency, split into what the price did and what the
    currency did (docs/analytics.md, "Price and currency return")."""

    price_effect: Decimal  # (value_local - cost_local) at the rate the cost was paid at
    currency_effect: Decimal  # value_local times the change of the rate since then
    price_return: Decimal | None  # value_local / cost_local - 1
    currency_return: Decimal | None  # fx_now / fx_cost - 1


def return_split(*, cost_local: Decimal, cost_base: Decimal, value_local: Decimal, fx_now: Decimal) -> ReturnSplit:
    """Split ``value_local * fx_now - cost_base`` exactly into a price and a currency effect.

    ``fx_cost = cost_base / cost_local`` is the average rate the open units were paid at. Then
    price effect = (value_local - cost_local) * fx_cost and currency effect = value_local *
    (fx_now - fx_cost); they add up to the gain with no cross term (the price effect is at the old
    rate, the currency effect on today's local value)."""
    if not cost_local:
        return ReturnSplit(ZERO, value_local * fx_now - cost_base, None, None)
    fx_cost = cost_base / cost_local
    return ReturnSplit(
        price_effect=(value_local - cost_local) * fx_cost,
        currency_effect=value_local * (fx_now - fx_cost),
        price_return=value_local / cost_local - 1,
        currency_return=fx_now / fx_cost - 1,
    )
