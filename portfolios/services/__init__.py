"""Writes of the portfolios app: portfolios and the transaction ledger.

Every ledger write (record, update, delete, import) runs in one database transaction that
1. locks the portfolio row (``select_for_update``), so concurrent writers to one portfolio queue up;
2. writes the ledger row(s);
3. replays the whole ledger of that portfolio through ``analytics.build_lots`` and rewrites the
   derived ``Holding``, ``Lot`` and ``CashBalance`` rows;
4. recomputes the stored valuations from the earliest day the write touched (a single write, in
   the same transaction), or marks them stale from there for a background job (a bulk import);
   see ``portfolios.valuation_services``.
If the replay fails (a sell of more than is held, a named lot that is not open...) a
``ValidationError`` with a field dict is raised and the transaction is rolled back: nothing is
written. Validation of a single row happens before any write, with one message per field.

Modules, in the order they build on each other: ``common``, ``portfolio`` (create, update,
delete), ``validation`` (one ledger row checked and normalised, FX rate look-up), ``rebuild`` (the
replay that rewrites the derived tables), ``transactions`` (the ledger writes). The public names
are re-exported here, so ``from portfolios import services; services.transaction_record(...)``
keeps working (as for ``billing.services``); a test that replaces a function patches the module
that reads it (``portfolios.services.portfolio``...)."""

from .common import CASH_KINDS_WITH_INSTRUMENT, KIND_VALUES, ONE, ZERO
from .ledger_settings import ledger_settings_update
from .portfolio import LedgerStateConflict, portfolio_create, portfolio_delete, portfolio_update
from .rebuild import CASH_COLUMNS, HOLDING_COLUMNS, LOT_COLUMNS, ledger_rebuild, negative_cash_reason
from .transactions import (
    TXN_COPY_COLUMNS,
    transaction_delete,
    transaction_record,
    transaction_update,
    transactions_bulk_record,
)
from .validation import CleanTxn, date_range_error, fingerprint_of, fx_rate_lookup, transaction_clean

__all__ = [
    "CASH_COLUMNS",
    "CASH_KINDS_WITH_INSTRUMENT",
    "CleanTxn",
    "HOLDING_COLUMNS",
    "KIND_VALUES",
    "LOT_COLUMNS",
    "LedgerStateConflict",
    "ONE",
    "TXN_COPY_COLUMNS",
    "ZERO",
    "date_range_error",
    "fingerprint_of",
    "fx_rate_lookup",
    "ledger_rebuild",
    "ledger_settings_update",
    "negative_cash_reason",
    "portfolio_create",
    "portfolio_delete",
    "portfolio_update",
    "transaction_clean",
    "transaction_delete",
    "transaction_record",
    "transaction_update",
    "transactions_bulk_record",
]
