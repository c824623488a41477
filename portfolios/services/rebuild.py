"""Ledger: the replay that rewrites a portfolio's holdings, lots and cash balances (and its stored valuations)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection

from portfolios.market.models import Instrument

from .. import analytics
from ..ledger import TXN_VALUES, ledger_of, txn_from_row, txn_from_tuple  # noqa: F401 (their home was here)
from ..models import (
    CashBalance,
    Holding,
    Kind,
    LedgerSettings,
    Lot,
    NegativeCash,
    Portfolio,
)
from ..valuation_services import valuations_after_ledger_write
from .common import ZERO


def _ledger_error(exc: Exception, *, symbols: dict) -> ValidationError:
    """Turn a replay failure into field errors that say which row broke and why."""
    if isinstance(exc, analytics.InsufficientQuantity):
        sym = symbols.get(exc.instrument_id, exc.instrument_id)
        where = f" in lot {exc.lot_id}" if exc.lot_id is not None else ""
        msg = (
            f"Cannot take {exc.requested.normalize():f} {sym} on {exc.date.isoformat()}: "
            f"only {exc.held.normalize():f} held{where}."
        )
        field = "lots" if exc.lot_id is not None else "quantity"
        return ValidationError({field: msg})
    if isinstance(exc, analytics.UnknownLot):
        return ValidationError({"lots": str(exc)})
    return ValidationError({"non_field_errors": str(exc)})


def _closed_on(book: analytics.LotBook, opened: dict, ledger: list[analytics.Txn], method: str) -> dict:
    """Date each fully closed lot was closed: its last sale, or (after a transfer out) the first
    transfer-out date after which it is no longer open."""
    open_ids = {lot.lot_id for lot in book.open_lots}
    closed = {lot_id for lot_id in opened if lot_id not in open_ids}
    out: dict = {}
    last_sale: dict = {}
    for r in book.realised:
        last_sale[r.lot_id] = max(r.disposed, last_sale.get(r.lot_id, r.disposed))
    transfer_dates = defaultdict(set)
    for t in ledger:
        if t.kind == Kind.TRANSFER_OUT:
            transfer_dates[t.instrument_id].add(t.date)
    for lot_id in closed:
        iid = opened[lot_id]
        if not transfer_dates.get(iid):
            out[lot_id] = last_sale[lot_id]
    pending = closed - set(out)
    if pending:
        dates = sorted({d for lot_id in pending for d in transfer_dates[opened[lot_id]]} | set(last_sale.values()))
        for d in dates:
            still_open = {lot.lot_id for lot in analytics.build_lots(ledger, method=method, until=d).open_lots}
            for lot_id in list(pending):
                if lot_id not in still_open and d >= _acquired(ledger, lot_id):
                    out[lot_id] = d
                    pending.discard(lot_id)
            if not pending:
                break
    return out


def _acquired(ledger, lot_id) -> date:
    for t in ledger:
        if t.id == lot_id:
            return t.date
    raise KeyError(lot_id)


LOT_COLUMNS = (
    "portfolio_id",
    "instrument_id",
    "opened_by_id",
    "acquired_on",
    "original_quantity",
    "quantity",
    "currency",
    "cost_local",
    "cost_base",
    "closed_on",
)
HOLDING_COLUMNS = ("portfolio_id", "instrument_id", "quantity", "currency", "cost_local", "cost_base")
CASH_COLUMNS = ("portfolio_id", "currency", "amount")


def _replace_rows(model, portfolio_id: int, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Replace a portfolio's rows of a derived table: one DELETE and one COPY.

    The derived tables have no dependants and no model logic, so the ORM's per-object work (which
    was most of a rebuild's time at 5,000 rows) buys nothing here. Values are rounded to the
    columns' scale by PostgreSQL, and every check constraint still applies."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cur:
        cur.execute(f"DELETE FROM {table} WHERE portfolio_id = %s", [portfolio_id])  # noqa: S608
        if rows:
            cols = ", ".join(connection.ops.quote_name(c) for c in columns)
            with cur.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


def ledger_rebuild(*, portfolio: Portfolio, revalue_from: date | None = None) -> analytics.LotBook:
    """Replay the ledger of ``portfolio`` and rewrite its holdings, lots and cash balances; with
    ``revalue_from``, also its stored valuations from that day on (the earliest ledger date the
    write touched; ``valuation_services.valuations_after_ledger_write``).

    Must run inside ``transaction.atomic()`` with the portfolio row locked (the callers here do).
    Raises ``ValidationError`` when the ledger does not replay (selling more than held...)."""
    ledger = ledger_of(portfolio=portfolio)
    try:
        book = analytics.build_lots(ledger, method=portfolio.lot_method)
    except (analytics.InsufficientQuantity, analytics.UnknownLot) as exc:
        ids = {t.instrument_id for t in ledger if isinstance(t.instrument_id, int)}  # every one, from the database
        symbols = dict(Instrument.objects.filter(pk__in=ids).values_list("pk", "symbol"))
        raise _ledger_error(exc, symbols=symbols) from exc

    opened = {t.id: t.instrument_id for t in ledger if t.kind in (Kind.BUY, Kind.TRANSFER_IN)}
    open_by_id = {lot.lot_id: lot for lot in book.open_lots}
    closed_on = _closed_on(book, opened, ledger, portfolio.lot_method)
    pid = portfolio.pk
    lots = []
    for t in ledger:
        if t.id not in opened:
            continue
        lot = open_by_id.get(t.id)
        acquired = t.acquired_on if t.kind == Kind.TRANSFER_IN and t.acquired_on else t.date
        if lot is not None:
            lots.append(
                (
                    pid,
                    t.instrument_id,
                    t.id,
                    acquired,
                    t.quantity,
                    lot.quantity,
                    t.currency,
                    lot.cost_local,
                    lot.cost_base,
                    None,
                )
            )
        else:
            lots.append(
                (pid, t.instrument_id, t.id, acquired, t.quantity, ZERO, t.currency, ZERO, ZERO, closed_on[t.id])
            )
    per_instrument: dict = {}
    for lot in book.open_lots:
        q, cl, cb, ccy = per_instrument.get(lot.instrument_id, (ZERO, ZERO, ZERO, lot.currency))
        per_instrument[lot.instrument_id] = (q + lot.quantity, cl + lot.cost_local, cb + lot.cost_base, ccy)
    holdings = [(pid, iid, q, ccy, cl, cb) for iid, (q, cl, cb, ccy) in per_instrument.items() if q > 0]
    cash = [(pid, c, a) for c, a in sorted(book.cash.items()) if a]
    _check_negative_cash(portfolio=portfolio, cash=book.cash)
    _replace_rows(Lot, pid, LOT_COLUMNS, lots)
    _replace_rows(Holding, pid, HOLDING_COLUMNS, holdings)
    _replace_rows(CashBalance, pid, CASH_COLUMNS, cash)
    if revalue_from is not None:
        valuations_after_ledger_write(portfolio=portfolio, since=revalue_from, ledger=ledger)
    return book


def negative_cash_reason(currency: str, amount: Decimal) -> str:
    """Why a cash balance is shown in red (pages and API say the same)."""
    return (
        f"{currency} cash is overdrawn by {(-amount).normalize():f}: more {currency} was paid out than came in. "
        f"Record a deposit or a currency conversion into {currency}, or settle trades from another currency."
    )


def _check_negative_cash(*, portfolio: Portfolio, cash: dict) -> None:
    """Under the firm's "refuse" rule, a write that leaves a currency's cash below zero, and lower
    than it was, is refused (``ValidationError`` naming the amount); under "warn" it is kept and
    the balance is shown in red with ``negative_cash_reason``. Decision 0972."""
    if LedgerSettings.current().negative_cash != NegativeCash.REFUSE:
        return
    before = dict(CashBalance.objects.filter(portfolio=portfolio).values_list("currency", "amount"))
    for currency, amount in sorted(cash.items()):
        if amount < 0 and amount < before.get(currency, ZERO):
            raise ValidationError(
                {
                    "amount": f"Refused: {currency} cash would be {amount.normalize():f}. "
                    + negative_cash_reason(currency, amount)
                }
            )
