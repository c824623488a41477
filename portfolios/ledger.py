"""Reading the ledger: ``Transaction`` rows as ``analytics.Txn`` (used by services and selectors)."""

from __future__ import annotations

from decimal import Decimal

from django.db import connection

from . import analytics
from .models import Portfolio, Transaction


def txn_from_row(row: dict) -> analytics.Txn:
    """An ``analytics.Txn`` from a ``Transaction`` ``.values()`` row."""
    lots = row["lots"]
    return analytics.Txn(
        id=row["id"],
        date=row["trade_date"],
        kind=row["kind"],
        currency=row["currency"],
        instrument_id=row["instrument_id"],
        quantity=row["quantity"],
        price=row["price"],
        fees=row["fees"],
        fx_rate=row["fx_rate"],
        amount=row["amount"],
        lots=tuple((int(x["lot"]), Decimal(x["quantity"])) for x in lots) if lots else None,
        acquired_on=row["acquired_on"],
        counter_currency=row.get("counter_currency") or None,
        counter_amount=row.get("counter_amount"),
    )


def txn_from_tuple(row: tuple) -> analytics.Txn:
    """An ``analytics.Txn`` from a ``values_list(*TXN_VALUES)`` row (the fast path of the selectors)."""
    pk, day, kind, currency, iid, qty, price, fees, fx, amount, lots, acquired_on, counter, counter_amount = row
    return analytics.Txn(
        pk,
        day,
        kind,
        currency,
        iid,
        qty,
        price,
        fees,
        fx,
        amount,
        tuple((int(x["lot"]), Decimal(x["quantity"])) for x in lots) if lots else None,
        acquired_on,
        counter or None,
        counter_amount,
    )


TXN_VALUES = (
    "id",
    "trade_date",
    "kind",
    "currency",
    "instrument_id",
    "quantity",
    "price",
    "fees",
    "fx_rate",
    "amount",
    "lots",
    "acquired_on",
    "counter_currency",
    "counter_amount",
)


def ledger_currencies(txns) -> set[str]:
    """Every currency the ledger's cash moves in (a conversion's and a settlement's included)."""
    return {t.currency for t in txns} | {t.counter_currency for t in txns if t.counter_currency}


_LOTS_AT = TXN_VALUES.index("lots")


def ledgers_of(*, portfolio_ids) -> dict[int, list[analytics.Txn]]:
    """The ledgers of several portfolios (``ledger_of``'s rows, same order), keyed by portfolio id;
    a portfolio without a transaction has an empty list. One query whatever the number of portfolios."""
    ids = list(portfolio_ids)
    out: dict[int, list[analytics.Txn]] = {pk: [] for pk in ids}
    if not ids:
        return out
    qs = (
        Transaction.objects.filter(portfolio_id__in=ids)
        .order_by("portfolio_id", "trade_date", "id")
        .values_list(*TXN_VALUES, "portfolio_id")
    )
    sql, params = qs.query.get_compiler(using=qs.db).as_sql()
    lots_field = Transaction._meta.get_field("lots")
    with connection.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    for *values, portfolio_id in rows:
        row = tuple(values)
        if row[_LOTS_AT] is not None:
            lots = lots_field.from_db_value(row[_LOTS_AT], None, connection)  # type: ignore[arg-type]  # the expression is unused
            row = (*row[:_LOTS_AT], lots, *row[_LOTS_AT + 1 :])
        out[portfolio_id].append(txn_from_tuple(row))
    return out


def ledger_of(*, portfolio: Portfolio) -> list[analytics.Txn]:
    """The ledger of ``portfolio`` as ``analytics.Txn`` rows in ``(trade_date, id)`` order. One query.

    The query is the ORM's, read through a plain cursor: at 5,000 rows, Django's chunked row
    iteration and per-row converters cost more than the query (only ``lots``, JSON, needs one)."""
    qs = Transaction.objects.filter(portfolio=portfolio).order_by("trade_date", "id").values_list(*TXN_VALUES)
    sql, params = qs.query.get_compiler(using=qs.db).as_sql()
    lots_field = Transaction._meta.get_field("lots")
    with connection.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    out = []
    for row in rows:
        if row[_LOTS_AT] is not None:
            lots = lots_field.from_db_value(row[_LOTS_AT], None, connection)  # type: ignore[arg-type]  # the expression is unused
            row = (*row[:_LOTS_AT], lots, *row[_LOTS_AT + 1 :])
        out.append(txn_from_tuple(row))
    return out
