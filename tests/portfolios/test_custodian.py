"""Custodian files (positions, transactions) with the shipped Interactive Brokers mapping, and
reconciliation: breaks, tolerance, resolving, API scope (docs/custodian.md)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal as D

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from portfolios import custodian, services
from portfolios.market.models import Price
from portfolios.models import CustodianAccount, CustodianPosition, ReconciliationBreak, Transaction
from tenants.models import AuditEvent

from .factories import InstrumentFactory, PortfolioFactory

pytestmark = pytest.mark.django_db
IB = "interactive-brokers"
DAY = date(2025, 3, 5)
HEADER = "ClientAccountID,ReportDate,Symbol,ListingExchange,Quantity,CurrencyPrimary,AssetClass\n"


def upload(text: str, name: str = "positions.csv"):
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


@pytest.fixture
def book(firm, owner):
    instrument = InstrumentFactory(symbol="RECO", exchange="XTST", currency="USD")
    Price.objects.create(instrument=instrument, date=DAY, close=D("100"))
    portfolio = PortfolioFactory(advisor=owner, base_currency="USD")
    services.transaction_record(portfolio=portfolio, kind="deposit", trade_date=date(2025, 3, 3), amount="2000")
    services.transaction_record(
        portfolio=portfolio, kind="buy", trade_date=date(2025, 3, 4), instrument=instrument, quantity="10", price="100"
    )
    CustodianAccount.objects.create(custodian=IB, account="U123", portfolio=portfolio)
    return portfolio, instrument


def positions(qty="12", cash="1000"):
    return HEADER + f"U123,20250305,RECO,XTST,{qty},USD,STK\nU123,20250305,,,{cash},USD,CASH\n"


def test_positions_file_previews_commits_and_the_same_file_twice_changes_nothing(book, owner_client):
    portfolio, instrument = book
    preview = owner_client.post("/api/v1/custodian/positions/import/", {"custodian": IB, "file": upload(positions())})
    assert preview.status_code == 200 and preview.json()["errors"] == []
    assert not CustodianPosition.objects.exists()
    first = custodian.positions_import(custodian=IB, upload=upload(positions()))
    assert (first.created, first.unchanged) == (1, 0)
    lines = set(CustodianPosition.objects.values_list("instrument_id", "currency", "quantity"))
    assert lines == {(instrument.pk, "USD", D(12)), (None, "USD", D(1000))}
    again = custodian.positions_import(custodian=IB, upload=upload(positions()))
    assert (again.created, again.replaced, again.unchanged) == (0, 0, 1)
    assert CustodianPosition.objects.count() == 2
    assert AuditEvent.objects.filter(action="custodian.positions_imported").count() == 2


def test_bad_positions_file_gets_row_errors_and_writes_nothing(book, owner_client):
    rows = (
        HEADER
        + "U999,20250305,RECO,XTST,1,USD,STK\n"  # unknown account
        + "U123,20250305,RECO,XTST,-3,USD,STK\n"  # negative position
        + "U123,20250305,RECO,XTST,3,EUR,STK\n"  # currency mismatch
        + "U123,20250305,RECO,XTST,3,USD,STK\n"
        + "U123,20250305,RECO,XTST,3,USD,STK\n"  # duplicate
    )
    response = owner_client.post(
        "/api/v1/custodian/positions/import/", {"custodian": IB, "file": upload(rows), "commit": "true"}
    )
    assert response.status_code == 400
    fields = [(r["row"], r["field"]) for r in response.json()["error"]["details"]["rows"]]
    assert fields == [(2, "account"), (3, "quantity"), (4, "currency"), (6, "symbol")]
    assert not CustodianPosition.objects.exists()
    unknown = owner_client.post(
        "/api/v1/custodian/positions/import/", {"custodian": IB, "file": upload("a,b\n1,2\n"), "commit": "true"}
    )
    assert unknown.status_code == 400 and "Unknown layout" in unknown.json()["error"]["message"]


def test_reconciliation_reports_breaks_within_tolerance_and_resolves_them(book, owner):
    portfolio, instrument = book
    custodian.positions_import(custodian=IB, upload=upload(positions(qty="12", cash="999")))
    run = custodian.reconcile(as_of=DAY)
    assert (run.portfolios, run.breaks) == (1, 2)
    position = ReconciliationBreak.objects.get(instrument=instrument)
    assert (position.ledger_quantity, position.custodian_quantity, position.difference, position.value) == (
        D(10), D(12), D(2), D(200),
    )  # fmt: skip
    cash = ReconciliationBreak.objects.get(instrument=None)
    assert (cash.ledger_quantity, cash.custodian_quantity, cash.difference) == (D(1000), D(999), D(-1))
    # a tolerance of 1.5 units closes the cash break, not the position's
    assert custodian.reconcile(as_of=DAY, tolerance=D("1.5")).breaks == 1
    assert not ReconciliationBreak.objects.filter(instrument=None).exists()
    # idempotent: the same run again changes nothing
    assert custodian.reconcile(as_of=DAY, tolerance=D("1.5")).breaks == 1
    assert ReconciliationBreak.objects.count() == 1
    with pytest.raises(Exception, match="Say why"):
        custodian.break_resolve(brk=position, action="explain", note="", user=owner)
    resolved = custodian.break_resolve(brk=position, action="adjust", user=owner)
    txn = Transaction.objects.get(pk=resolved.adjustment_id)
    assert (txn.kind, txn.quantity, txn.price) == ("transfer_in", D(2), D(100))
    assert custodian.reconcile(as_of=DAY, tolerance=D("1.5")).breaks == 0
    assert AuditEvent.objects.filter(action="custodian.break_adjusted").exists()


def test_breaks_api_scope_run_and_explain(book, owner_client, advisor_client, outsider_client):
    custodian.positions_import(custodian=IB, upload=upload(positions(qty="12", cash="1000")))
    body = json.dumps({"as_of": "2025-03-05"})
    assert advisor_client.post("/api/v1/reconciliation/runs/", body, content_type="application/json").status_code == 403
    run = owner_client.post("/api/v1/reconciliation/runs/", body, content_type="application/json")
    assert run.status_code == 200 and run.json()["open_breaks"] == 1
    listing = owner_client.get("/api/v1/reconciliation/breaks/?status=open").json()
    (row,) = listing["results"]
    assert row["symbol"] == "RECO" and row["proposed_adjustment"]["kind"] == "transfer_in"
    assert outsider_client.get("/api/v1/reconciliation/breaks/").json()["results"] == []
    assert outsider_client.get(f"/api/v1/reconciliation/breaks/{row['id']}/").status_code == 404
    explained = owner_client.post(
        f"/api/v1/reconciliation/breaks/{row['id']}/resolve/",
        json.dumps({"action": "explain", "note": "Pending settlement T+2"}),
        content_type="application/json",
    )
    assert explained.status_code == 200 and explained.json()["status"] == "explained"


@pytest.mark.parametrize("garbage", ["abc", "1.5", "%C3%A9", "-1"])
def test_resolving_a_break_whose_id_is_not_a_number_is_a_404(owner_client, garbage):
    # It was a 500: the id went to the database unparsed (found by the API fuzz test).
    response = owner_client.post(
        f"/api/v1/reconciliation/breaks/{garbage}/resolve/",
        json.dumps({"action": "adjust"}),
        content_type="application/json",
    )
    assert response.status_code == 404


def test_custodian_transactions_twice_adds_nothing(book, owner_client):
    portfolio, _ = book
    trades = (
        "TradeID,TradeDate,Buy/Sell,Symbol,ListingExchange,Quantity,TradePrice,IBCommission,CurrencyPrimary,Description\n"
        "9001,20250305,BUY,RECO,XTST,2,100,1,USD,Bought RECO\n"
        "9002,20250305,SELL,RECO,XTST,1,101,1,USD,Sold RECO\n"
    )
    path = f"/api/v1/portfolios/{portfolio.pk}/custodian-import/"
    first = owner_client.post(path, {"custodian": IB, "file": upload(trades, "t.csv"), "commit": "true"})
    assert first.status_code == 201, first.content
    assert first.json()["counts"]["new"] == 2
    assert set(Transaction.objects.filter(portfolio=portfolio).values_list("external_id", flat=True)) >= {
        "9001",
        "9002",
    }
    second = owner_client.post(path, {"custodian": IB, "file": upload(trades, "t.csv"), "commit": "true"})
    assert second.json()["counts"] == {"new": 0, "duplicates": 2, "errors": 0}
    assert AuditEvent.objects.filter(action="custodian.transactions_imported", target=IB).count() == 2
    assert Transaction.objects.filter(portfolio=portfolio).count() == 4


def test_dashboard_counts_open_breaks_and_the_page_resolves_one(book, owner_client, viewer_client):
    custodian.positions_import(custodian=IB, upload=upload(positions(qty="12", cash="1000")))
    custodian.reconcile(as_of=DAY)
    home = owner_client.get("/").content.decode()
    assert "1 open break" in home
    page = owner_client.get("/portfolios/reconciliation/").content.decode()
    assert "RECO" in page and "transfer_in" in page
    brk = ReconciliationBreak.objects.get()
    refused = viewer_client.post("/portfolios/reconciliation/", {"break": brk.pk, "action": "explain", "note": "x"})
    assert refused.status_code == 403
    done = owner_client.post("/portfolios/reconciliation/", {"break": brk.pk, "action": "explain", "note": "T+2"})
    assert done.status_code == 302
    brk.refresh_from_db()
    assert (brk.status, brk.note) == ("explained", "T+2")
    assert "open break" not in owner_client.get("/").content.decode()


# --- the import history's table (issue 25 point 2) ----------------------------------------------------


def _history(n: int, *, kind: str = "transactions", custodian: str = "Pershing") -> None:
    from portfolios.models import CustodianImport

    CustodianImport.objects.create(custodian=custodian, kind=kind, filename=f"hist-{n:02d}.csv", rows=n)


def test_import_history_sorts_pages_and_filters(owner_client):
    for n in range(12):
        _history(n, kind="positions" if n == 3 else "transactions", custodian="Schwab" if n == 5 else "Pershing")
    url = "/portfolios/custodian/imports/"
    up = owner_client.get(url + "?sort=rows&per_page=10").content.decode()
    assert up.index("hist-00") < up.index("hist-01") < up.index("hist-09") and "hist-10" not in up
    down = owner_client.get(url + "?sort=-rows&per_page=10").content.decode()
    assert down.index("hist-11") < down.index("hist-10") < down.index("hist-02") and "hist-01" not in down
    second = owner_client.get(url + "?sort=rows&per_page=10&page=2").content.decode()
    assert "hist-10" in second and "hist-11" in second and "hist-00" not in second
    positions = owner_client.get(url + "?kind=positions").content.decode()
    assert "hist-03" in positions and "hist-04" not in positions
    schwab = owner_client.get(url + "?custodian=schw").content.decode()
    assert "hist-05" in schwab and "hist-04" not in schwab
    bad = owner_client.get(url + "?kind=spreadsheet").content.decode()
    assert 'id="filter_kind_error"' in bad and "hist-04" in bad


def test_import_history_query_count_flat_and_other_firm_never_sees_it(owner_client, outsider_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _history(0)
    url = "/portfolios/custodian/imports/?sort=custodian"
    owner_client.get(url)
    with CaptureQueriesContext(connection) as few:
        owner_client.get(url)
    for n in range(1, 10):
        _history(n)
    with CaptureQueriesContext(connection) as many:
        assert "hist-09" in owner_client.get(url).content.decode()
    assert len(many) == len(few)
    assert "hist-09" not in outsider_client.get(url).content.decode()
