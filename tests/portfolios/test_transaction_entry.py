"""Transaction entry per kind (issue 25, point 5): fields that follow the kind, the instrument
picker with names, the lot table for specific lots, errors in place with the input kept, the
result shown in the ledger card, confirm and undo for delete."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from portfolios import services
from portfolios.forms import KIND_FIELDS
from portfolios.market.models import Instrument
from portfolios.models import Kind, Lot, Transaction

from .factories import InstrumentFactory, PortfolioFactory, daily_prices

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(portfolio, aapl):
    """Two lots of AAPLT: 10 bought 60 days ago at 100, 5 bought 30 days ago at 120."""
    today = timezone.localdate()
    daily_prices(aapl, today - timedelta(days=70), [str(100 + i) for i in range(71)])
    services.transaction_record(
        portfolio=portfolio, kind="deposit", trade_date=today - timedelta(days=60), amount="5000"
    )
    first = services.transaction_record(
        portfolio=portfolio,
        kind="buy",
        trade_date=today - timedelta(days=60),
        instrument=aapl,
        quantity="10",
        price="100",
    )
    second = services.transaction_record(
        portfolio=portfolio,
        kind="buy",
        trade_date=today - timedelta(days=30),
        instrument=aapl,
        quantity="5",
        price="120",
    )
    return portfolio, first, second


def _new(portfolio) -> str:
    return f"/portfolios/{portfolio.pk}/transactions/new/"


def _sell(aapl, **extra) -> dict:
    return {
        "kind": "sell",
        "trade_date": timezone.localdate().isoformat(),
        "instrument": aapl.pk,
        "quantity": "4",
        "price": "130",
        **extra,
    }


def _kinds_of(html: str, field: str) -> set[str]:
    match = re.search(rf'data-field="{field}"(?: data-kinds="([^"]*)")?', html)
    assert match, field
    return set((match.group(1) or "").split())


def test_every_kind_has_its_fields_and_the_page_marks_them(advisor_client, portfolio):
    assert set(KIND_FIELDS) == set(Kind.values)
    html = advisor_client.get(_new(portfolio)).content.decode()
    assert _kinds_of(html, "kind") == set() and _kinds_of(html, "trade_date") == set()  # every kind
    assert _kinds_of(html, "quantity") == {"buy", "sell", "split", "transfer_in", "transfer_out"}
    assert _kinds_of(html, "amount") == {"dividend", "interest", "fee", "tax", "deposit", "withdrawal", "conversion"}
    assert _kinds_of(html, "acquired_on") == {"transfer_in"}
    assert _kinds_of(html, "lots") == {"sell", "transfer_out"}
    assert "transaction-form.js" in html  # the script that shows the kind's fields; without it all show


def test_instrument_picker_names_shared_and_own_instruments_but_no_other_firms(
    advisor_client, portfolio, firm, other_firm
):
    InstrumentFactory(symbol="SHRD", name="Shared Widgets", currency="USD", exchange="XNAS")
    Instrument.all_objects.create(symbol="OWNX", name="Our Private Fund", currency="EUR", owner=firm.schema_name)
    Instrument.all_objects.create(
        symbol="GLBX", name="Globex Secret Fund", currency="USD", owner=other_firm.schema_name
    )
    html = advisor_client.get(_new(portfolio)).content.decode()
    assert "SHRD · Shared Widgets (USD, XNAS)" in html
    assert "OWNX · Our Private Fund (EUR)" in html
    assert "GLBX" not in html and "Globex Secret" not in html


def test_specific_lots_come_from_the_lot_table(advisor_client, held, aapl):
    portfolio, first, second = held
    html = advisor_client.get(_new(portfolio)).content.decode()
    assert f'name="lot_{first.pk}"' in html and f'name="lot_{second.pk}"' in html
    r = advisor_client.post(_new(portfolio), _sell(aapl, **{f"lot_{second.pk}": "4", f"lot_{first.pk}": ""}))
    assert r.status_code == 302, r.content.decode()[:3000]
    sell = Transaction.objects.get(portfolio=portfolio, kind="sell")
    assert sell.lots == [{"lot": second.pk, "quantity": "4"}]
    assert Lot.objects.get(opened_by=second).quantity == 1 and Lot.objects.get(opened_by=first).quantity == 10


def test_a_bad_lot_figure_is_shown_at_the_table_and_the_input_is_kept(advisor_client, held, aapl):
    portfolio, _first, second = held
    r = advisor_client.post(_new(portfolio), _sell(aapl, note="keep me", **{f"lot_{second.pk}": "four"}))
    html = r.content.decode()
    assert r.status_code == 200
    table = html[html.index('class="field lot-table') :]
    assert "Enter a number of units for each lot" in table
    assert f'name="lot_{second.pk}" value="four"' in html and 'value="keep me"' in html and 'value="130"' in html
    assert not Transaction.objects.filter(portfolio=portfolio, kind="sell").exists()


def test_lots_that_do_not_add_up_are_refused_next_to_the_table(advisor_client, held, aapl):
    portfolio, first, _second = held
    r = advisor_client.post(_new(portfolio), _sell(aapl, **{f"lot_{first.pk}": "3"}))
    html = r.content.decode()
    assert r.status_code == 200
    assert "must add up to the quantity" in html[html.index('class="field lot-table') :]
    assert not Transaction.objects.filter(portfolio=portfolio, kind="sell").exists()


def test_editing_a_sell_shows_its_lots_and_can_clear_them(advisor_client, held, aapl):
    portfolio, first, second = held
    sell = services.transaction_record(
        portfolio=portfolio, **{**_sell(aapl), "instrument": aapl, "lots": [{"lot": second.pk, "quantity": "4"}]}
    )
    url = f"/portfolios/{portfolio.pk}/transactions/{sell.pk}/edit/"
    html = advisor_client.get(url).content.decode()
    assert f'name="lot_{second.pk}" value="4"' in html
    data = {**_sell(aapl), "fees": "0", "currency": "USD", "fx_rate": "1", f"lot_{second.pk}": ""}
    assert advisor_client.post(url, data).status_code == 302
    sell.refresh_from_db()
    assert sell.lots is None  # back to the portfolio's method
    assert Lot.objects.get(opened_by=first).quantity == 6  # FIFO took the oldest


def test_the_result_shows_in_the_ledger_card_where_the_page_lands(advisor_client, portfolio):
    r = advisor_client.post(
        _new(portfolio), {"kind": "deposit", "trade_date": timezone.localdate().isoformat(), "amount": "250"}
    )
    assert r.status_code == 302 and r["Location"].endswith(f"/portfolios/{portfolio.pk}/#ledger")
    html = advisor_client.get(r["Location"]).content.decode()
    ledger = html[html.index('id="ledger"') :]
    assert "Recorded the deposit of 250.00 USD" in ledger
    assert "Recorded the deposit" not in html[: html.index('id="ledger"')]  # not at the top, out of view


def test_delete_asks_first_without_javascript(advisor_client, held):
    portfolio, _first, second = held
    url = f"/portfolios/{portfolio.pk}/transactions/{second.pk}/delete/"
    r = advisor_client.post(url)
    assert r.status_code == 200 and "Delete this transaction?" in r.content.decode()
    assert "buy of 5 AAPLT" in r.content.decode()
    assert Transaction.objects.filter(pk=second.pk).exists()
    assert advisor_client.post(url, {"confirmed": "yes"}).status_code == 302
    assert not Transaction.objects.filter(pk=second.pk).exists()


def test_undo_brings_a_deleted_transaction_back(advisor_client, held, aapl):
    portfolio, _first, second = held
    before = {f: getattr(second, f) for f in ("kind", "trade_date", "instrument_id", "quantity", "price", "currency")}
    r = advisor_client.post(f"/portfolios/{portfolio.pk}/transactions/{second.pk}/delete/", {"confirmed": "yes"})
    html = advisor_client.get(r["Location"]).content.decode()
    ledger = html[html.index('id="ledger"') :]
    assert "Deleted the buy of 5 AAPLT" in ledger and f"/portfolios/{portfolio.pk}/transactions/restore/" in ledger
    r = advisor_client.post(f"/portfolios/{portfolio.pk}/transactions/restore/")
    assert r.status_code == 302
    (back,) = Transaction.objects.filter(portfolio=portfolio, kind="buy", quantity=5)
    assert {f: getattr(back, f) for f in before} == before
    assert Lot.objects.filter(opened_by=back, quantity=5).exists()
    assert "Restored the buy of 5 AAPLT" in advisor_client.get(r["Location"]).content.decode()
    # once only
    advisor_client.post(f"/portfolios/{portfolio.pk}/transactions/restore/")
    assert Transaction.objects.filter(portfolio=portfolio, kind="buy", quantity=5).count() == 1


def test_undo_belongs_to_its_portfolio(advisor_client, advisor, held):
    portfolio, _first, second = held
    other = PortfolioFactory(advisor=advisor, base_currency="USD")
    advisor_client.post(f"/portfolios/{portfolio.pk}/transactions/{second.pk}/delete/", {"confirmed": "yes"})
    r = advisor_client.post(f"/portfolios/{other.pk}/transactions/restore/")
    assert "no deletion to undo" in advisor_client.get(r["Location"]).content.decode()
    assert not Transaction.objects.filter(portfolio=other).exists()


def test_another_firm_cannot_undo_or_see_the_form(held, outsider_client):
    portfolio, _first, _second = held
    assert outsider_client.get(_new(portfolio)).status_code == 404
    assert outsider_client.post(f"/portfolios/{portfolio.pk}/transactions/restore/").status_code == 404


def test_an_advisor_outside_the_book_cannot_undo(held, advisor2, client_for):
    portfolio, _first, _second = held
    r = client_for(advisor2).post(f"/portfolios/{portfolio.pk}/transactions/restore/")
    assert r.status_code in (403, 404)


def test_portfolio_page_quick_form_links_to_the_lot_table_instead_of_listing_lots(advisor_client, held):
    # decision 1210: the page's quick form leaves the (possibly long) lot table to the full form
    portfolio, first, second = held
    html = advisor_client.get(f"/portfolios/{portfolio.pk}/").content.decode()
    fieldset = html[html.index('class="field lot-table') :]
    assert f'href="{_new(portfolio)}"' in fieldset[: fieldset.index("</fieldset>")]
    assert f'name="lot_{first.pk}"' not in html and f'name="lot_{second.pk}"' not in html
    full = advisor_client.get(_new(portfolio)).content.decode()
    assert f'name="lot_{first.pk}"' in full and f'name="lot_{second.pk}"' in full
