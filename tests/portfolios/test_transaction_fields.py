"""The transaction's ledger fields are spelled once (``portfolios.models.TRANSACTION_FIELDS``):
the API's output and input, the page's form and the services all follow that list."""

from portfolios.api import TransactionInputSerializer, TransactionSerializer
from portfolios.forms import TransactionForm
from portfolios.imports import COLUMNS, CSV_COLUMNS
from portfolios.models import TRANSACTION_FIELDS, Transaction


def test_the_list_names_real_model_fields():
    model_fields = {f.name for f in Transaction._meta.get_fields()}
    assert set(TRANSACTION_FIELDS) <= model_fields
    assert len(set(TRANSACTION_FIELDS)) == len(TRANSACTION_FIELDS)


def test_the_api_shows_the_ledger_fields_in_order_with_the_symbol_beside_the_instrument():
    fields = list(TransactionSerializer.Meta.fields)
    assert fields[:2] == ["id", "portfolio"]
    assert fields[-3:] == ["fingerprint", "created_at", "updated_at"]
    assert fields[2:-3] == [
        "kind",
        "trade_date",
        "instrument",
        "instrument_symbol",
        "quantity",
        "price",
        "fees",
        "amount",
        "currency",
        "fx_rate",
        "note",
        "lots",
        "acquired_on",
        "counter_currency",
        "counter_amount",
    ]


def test_the_api_input_and_the_form_take_exactly_the_ledger_fields():
    assert set(TransactionInputSerializer().fields) == set(TRANSACTION_FIELDS)
    assert set(TransactionForm.base_fields) == set(TRANSACTION_FIELDS)


def test_the_csv_columns_export_what_they_import():
    assert list(CSV_COLUMNS) == COLUMNS
    assert COLUMNS[:2] == ["date", "kind"]
    extra = {"instrument__symbol", "instrument__exchange", "external_id"}  # external_id: set by imports only
    assert set(CSV_COLUMNS.values()) - extra <= set(TRANSACTION_FIELDS)
