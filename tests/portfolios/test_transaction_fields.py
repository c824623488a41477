"""The transaction's ledger fields are spelled once (``portfolios.models.TRANSACTION_FIELDS``):
the API's output and input, the page's form and the services all follow that list."""

import pytest

from portfolios.api import TransactionInputSerializer, TransactionSerializer
from portfolios.forms import TransactionForm
from portfolios.imports import COLUMNS, CSV_COLUMNS
from portfolios.models import TRANSACTION_FIELDS, Transaction
from tests.portfolios.factories import InstrumentFactory


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


@pytest.mark.django_db
def test_the_instrument_select_lists_each_instrument_with_its_label_escaped(firm, aapl):
    """The instrument select (Django's ``Select``): every instrument with its symbol, name and
    currency, the chosen one selected, text escaped, the help text referenced."""
    odd = InstrumentFactory(symbol="Q&A", name='Quotes "and" <answers>')
    form = TransactionForm({"kind": "buy", "instrument": str(odd.pk)})
    form.is_valid()
    ours = str(form["instrument"])
    assert f'<option value="{odd.pk}" selected>Q&amp;A · Quotes &quot;and&quot; &lt;answers&gt;' in ours
    assert f'<option value="{aapl.pk}">AAPL' in ours
    assert 'aria-describedby="id_instrument_helptext"' in ours
