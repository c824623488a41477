"""Ledger writes: record, update, delete one transaction, record many (an import); each locks the
portfolio and rebuilds."""

from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from codex.outbox.services import event_emit

from .. import events
from ..analytics import CASH_KINDS, SECURITY_KINDS
from ..ledger import TXN_VALUES, ledger_of, txn_from_row, txn_from_tuple  # noqa: F401 (their home was here)
from ..models import (
    TRANSACTION_FIELDS,
    Kind,
    Portfolio,
    Transaction,
)
from ..valuation_services import valuations_mark_stale
from .common import _user_or_none
from .rebuild import (
    ledger_rebuild,
)
from .validation import (
    CleanTxn,
    _fingerprint,
    transaction_clean,
)


def _lock(portfolio: Portfolio) -> Portfolio:
    locked = Portfolio.objects.select_for_update().get(pk=portfolio.pk)
    if locked.archived:
        raise ValidationError({"portfolio": "This portfolio is archived; restore it before changing its ledger."})
    return locked


def _check_lots_belong(clean: CleanTxn, portfolio: Portfolio, *, exclude_id=None) -> None:
    if not clean.lots:
        return
    ids = {x["lot"] for x in clean.lots}
    found = set(
        Transaction.objects.filter(
            portfolio=portfolio,
            pk__in=ids,
            instrument=clean.instrument,
            kind__in=(Kind.BUY, Kind.TRANSFER_IN),
        ).values_list("pk", flat=True)
    )
    missing = sorted(ids - found)
    if missing:
        raise ValidationError(
            {"lots": f"Lot(s) {', '.join(map(str, missing))} are not buys of {clean.instrument} in this portfolio."}
        )


def transaction_record(*, portfolio: Portfolio, created_by=None, today: date | None = None, **data) -> Transaction:
    """Record one ledger row and rebuild the portfolio's holdings and lots. Atomic.

    ``data`` holds the fields of ``Transaction`` (``instrument`` as object or id). Raises
    ``ValidationError`` (field dict) for bad input or when the ledger would not replay (e.g.
    selling more than held); then nothing is written."""
    clean = transaction_clean(portfolio=portfolio, data=data, today=today)
    with transaction.atomic():
        portfolio = _lock(portfolio)
        _check_lots_belong(clean, portfolio)
        txn = Transaction.objects.create(
            portfolio=portfolio,
            created_by=_user_or_none(created_by),
            fingerprint=_fingerprint(clean),
            **clean.as_fields(),
        )
        ledger_rebuild(portfolio=portfolio, revalue_from=txn.trade_date)
        event_emit(
            type="portfolio.transaction.created",
            data=events.transaction_data(txn),
            resource=f"portfolio:{portfolio.pk}",
        )
    return txn


def transaction_update(*, txn: Transaction, today: date | None = None, **changes) -> Transaction:
    """Edit a ledger row (any past date) and rebuild holdings and lots. Atomic; on a
    ``ValidationError`` (including a later sell that would no longer be covered) nothing changes."""
    unknown = set(changes) - set(TRANSACTION_FIELDS)
    if unknown:
        raise ValidationError({f: "This field cannot be changed." for f in unknown})
    data = {f: getattr(txn, f) for f in TRANSACTION_FIELDS}
    if txn.kind in CASH_KINDS and "kind" in changes and changes["kind"] in SECURITY_KINDS:
        data["amount"] = None
    data.update(changes)
    if "currency" not in changes and "instrument" in changes:
        data["currency"] = ""
    if "fx_rate" not in changes and ({"currency", "trade_date", "instrument"} & set(changes)):
        data["fx_rate"] = None  # look the rate up again for the new date or currency
    clean = transaction_clean(portfolio=txn.portfolio, data=data, today=today)
    with transaction.atomic():
        portfolio = _lock(txn.portfolio)
        txn = Transaction.objects.select_for_update().get(pk=txn.pk, portfolio=portfolio)
        _check_lots_belong(clean, portfolio)
        earliest = txn.trade_date
        for f, v in clean.as_fields().items():
            setattr(txn, f, v)
        txn.fingerprint = _fingerprint(clean)
        txn.save()
        ledger_rebuild(portfolio=portfolio, revalue_from=min(earliest, txn.trade_date))
    return txn


def transaction_delete(*, txn: Transaction) -> None:
    """Delete a ledger row and rebuild. Atomic; refused (``ValidationError``) if a later sell
    would then sell more than held or name a lot that no longer exists."""
    with transaction.atomic():
        portfolio = _lock(txn.portfolio)
        day = Transaction.objects.filter(pk=txn.pk, portfolio=portfolio).values_list("trade_date", flat=True).first()
        Transaction.objects.filter(pk=txn.pk, portfolio=portfolio).delete()
        try:
            ledger_rebuild(portfolio=portfolio, revalue_from=day)
        except ValidationError as exc:
            raise ValidationError(
                {"non_field_errors": ["Deleting this transaction would break a later one: " + " ".join(exc.messages)]}
            ) from exc
        event_emit(
            type="portfolio.transaction.deleted",
            data=events.transaction_data(txn),
            resource=f"portfolio:{portfolio.pk}",
        )


TXN_COPY_COLUMNS = (
    "portfolio_id",
    "kind",
    "trade_date",
    "instrument_id",
    "quantity",
    "price",
    "fees",
    "amount",
    "currency",
    "fx_rate",
    "note",
    "lots",
    "acquired_on",
    "fingerprint",
    "created_by_id",
    "created_at",
    "updated_at",
    "counter_currency",
    "counter_amount",
    "external_id",
)


def transactions_bulk_record(*, portfolio: Portfolio, rows: list[CleanTxn], created_by=None) -> int:
    """Write many validated rows at once (the CSV import, demo data) and rebuild once.

    All or nothing: raises ``ValidationError`` (nothing written) when the ledger with the new rows
    does not replay. Rows go in with one COPY (the ORM's per-object work dominated large imports);
    every check constraint of the table still applies. Returns the number of rows written."""
    with transaction.atomic():
        portfolio = _lock(portfolio)
        for clean in rows:
            _check_lots_belong(clean, portfolio)
        user = _user_or_none(created_by)
        user_id = user.pk if user else None
        now = timezone.now()
        table = connection.ops.quote_name(Transaction._meta.db_table)
        cols = ", ".join(connection.ops.quote_name(c) for c in TXN_COPY_COLUMNS)
        with connection.cursor() as cur, cur.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for c in rows:
                copy.write_row(
                    (
                        portfolio.pk,
                        c.kind,
                        c.trade_date,
                        c.instrument.pk if c.instrument else None,
                        c.quantity,
                        c.price,
                        c.fees,
                        c.amount,
                        c.currency,
                        c.fx_rate,
                        c.note,
                        Jsonb(c.lots) if c.lots else None,
                        c.acquired_on,
                        _fingerprint(c),
                        user_id,
                        now,
                        now,
                        c.counter_currency,
                        c.counter_amount,
                        c.external_id,
                    )
                )
        ledger_rebuild(portfolio=portfolio)
        if rows:
            # A bulk import is revalued by a background job from its earliest row: the page says
            # "figures updating" until it is done (valuation_services).
            valuations_mark_stale(
                portfolio_ids=[portfolio.pk], since=min(c.trade_date for c in rows), bump_version=True
            )
    return len(rows)
