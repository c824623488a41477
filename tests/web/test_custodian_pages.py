"""Staff pages for data that comes in without hand work (issue 24): pending corporate actions,
custodian set-up (column mappings, account links), custodian imports (upload, preview with per-row
errors, commit, history), reconciliation runs and the firm's ledger rules. Owners and admins
write; another firm gets a 404."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal as D

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from portfolios import services
from portfolios.market.models import CorporateAction, Price
from portfolios.models import (
    CorporateActionDecision,
    CustodianAccount,
    CustodianImport,
    CustodianMapping,
    CustodianPosition,
    LedgerSettings,
    ReconciliationBreak,
    Transaction,
)
from tenants.models import AuditEvent
from tests.portfolios.factories import InstrumentFactory, PortfolioFactory

pytestmark = pytest.mark.django_db
IB = "interactive-brokers"
DAY = date(2025, 3, 5)
POSITIONS = "ClientAccountID,ReportDate,Symbol,ListingExchange,Quantity,CurrencyPrimary,AssetClass\n"


def csv_file(text: str, name: str = "file.csv"):
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


@pytest.fixture
def book(firm, owner):
    instrument = InstrumentFactory(symbol="RECO", exchange="XTST", currency="USD")
    Price.objects.create(instrument=instrument, date=DAY, close=D("100"))
    portfolio = PortfolioFactory(advisor=owner, base_currency="USD", name="Alpha")
    services.transaction_record(portfolio=portfolio, kind="deposit", trade_date=date(2025, 3, 3), amount="2000")
    services.transaction_record(
        portfolio=portfolio, kind="buy", trade_date=date(2025, 3, 4), instrument=instrument, quantity="10", price="100"
    )
    CustodianAccount.objects.create(custodian=IB, account="U123", portfolio=portfolio)
    return portfolio, instrument


# --- corporate actions -------------------------------------------------------------------------------------
@pytest.fixture
def dividend(book):
    portfolio, instrument = book
    return CorporateAction.objects.create(
        instrument=instrument, kind="dividend", date=date(2025, 3, 10), value=D("0.5"), source="alphavantage"
    )


def test_owner_accepts_a_pending_corporate_action_on_its_page(book, dividend, owner_client):
    portfolio, _instrument = book
    html = owner_client.get("/portfolios/corporate-actions/").content.decode()
    assert "Dividend" in html and "a dividend of 5.00 USD" in html and 'value="accept"' in html
    response = owner_client.post(
        "/portfolios/corporate-actions/", {"action": dividend.pk, "portfolio": portfolio.pk, "decision": "accept"}
    )
    assert response.status_code == 302
    txn = Transaction.objects.get(portfolio=portfolio, kind="dividend")
    assert txn.amount == D(5) and txn.trade_date == date(2025, 3, 10)
    assert "No corporate action is pending" in owner_client.get("/portfolios/corporate-actions/").content.decode()


def test_owner_dismisses_and_a_second_decision_is_refused(book, dividend, owner_client):
    portfolio, _instrument = book
    body = {"action": dividend.pk, "portfolio": portfolio.pk, "decision": "dismiss"}
    owner_client.post("/portfolios/corporate-actions/", body)
    assert CorporateActionDecision.objects.get().decision == "dismissed"
    again = owner_client.post("/portfolios/corporate-actions/", body, follow=True)
    assert "not pending for this portfolio" in again.content.decode()
    assert not Transaction.objects.filter(kind="dividend").exists()


def test_advisor_reads_corporate_actions_but_cannot_decide(book, dividend, advisor_client, advisor):
    portfolio, _instrument = book
    portfolio.advisor = advisor
    portfolio.save()
    html = advisor_client.get("/portfolios/corporate-actions/").content.decode()
    assert "Dividend" in html and 'value="accept"' not in html
    body = {"action": dividend.pk, "portfolio": portfolio.pk, "decision": "accept"}
    assert advisor_client.post("/portfolios/corporate-actions/", body).status_code == 403
    assert not Transaction.objects.filter(kind="dividend").exists()


def test_another_firm_neither_sees_nor_decides_corporate_actions(book, dividend, outsider_client):
    portfolio, _instrument = book
    assert "No corporate action is pending" in outsider_client.get("/portfolios/corporate-actions/").content.decode()
    body = {"action": dividend.pk, "portfolio": portfolio.pk, "decision": "accept"}
    assert outsider_client.post("/portfolios/corporate-actions/", body).status_code == 404


# --- custodian set-up ----------------------------------------------------------------------------------------
MAPPING = {
    "custodian": "saxo",
    "kind": "positions",
    "date_format": "%d.%m.%Y",
    "columns": "account = Account\ndate = Date\nsymbol = Ticker\nquantity = Units\ncurrency = Ccy",
}


def test_owner_creates_and_edits_a_column_mapping(owner_client):
    response = owner_client.post("/portfolios/custodian/mappings/new/", MAPPING)
    assert response.status_code == 302
    mapping = CustodianMapping.objects.get(custodian="saxo", kind="positions")
    assert mapping.columns["quantity"] == "Units" and mapping.date_format == "%d.%m.%Y"
    page = owner_client.get("/portfolios/custodian/").content.decode()
    assert "saxo" in page and "quantity = Units" in page and "ClientAccountID" in page  # the shipped example too
    edit = owner_client.post(
        f"/portfolios/custodian/mappings/{mapping.pk}/edit/",
        {**MAPPING, "custodian": "ignored", "columns": MAPPING["columns"].replace("Units", "Qty")},
    )
    assert edit.status_code == 302
    mapping.refresh_from_db()
    assert mapping.columns["quantity"] == "Qty" and mapping.custodian == "saxo"  # identity is locked


def test_a_bad_mapping_names_the_field_and_keeps_the_input(owner_client):
    bad = {**MAPPING, "columns": "account = Account\nshoe_size = Size"}
    response = owner_client.post("/portfolios/custodian/mappings/new/", bad)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Unknown field(s): shoe_size" in html and "shoe_size = Size" in html and 'value="saxo"' in html
    missing = owner_client.post("/portfolios/custodian/mappings/new/", {**MAPPING, "columns": "account = Account"})
    assert missing.status_code == 400 and "Map the column(s) for: date, quantity, currency" in missing.content.decode()
    assert not CustodianMapping.objects.exists()


def test_advisor_cannot_change_mappings_and_another_firm_gets_404(owner_client, advisor_client, outsider_client):
    owner_client.post("/portfolios/custodian/mappings/new/", MAPPING)
    mapping = CustodianMapping.objects.get()
    assert advisor_client.get("/portfolios/custodian/").status_code == 403  # links name every book's portfolios
    assert advisor_client.post("/portfolios/custodian/mappings/new/", {**MAPPING, "custodian": "x"}).status_code == 403
    assert outsider_client.get(f"/portfolios/custodian/mappings/{mapping.pk}/edit/").status_code == 404
    assert "saxo" not in outsider_client.get("/portfolios/custodian/").content.decode()


def test_owner_links_an_account_and_a_taken_account_keeps_the_input(book, owner_client, owner):
    portfolio, _instrument = book
    other = PortfolioFactory(name="Beta", advisor=owner, base_currency="USD")
    response = owner_client.post(
        "/portfolios/custodian/accounts/new/", {"custodian": IB, "account": "U777", "portfolio": other.pk}
    )
    assert response.status_code == 302
    link = CustodianAccount.objects.get(account="U777")
    assert link.portfolio == other
    taken = owner_client.post(
        "/portfolios/custodian/accounts/new/", {"custodian": IB, "account": "U123", "portfolio": other.pk}
    )
    assert taken.status_code == 400
    assert "already linked" in taken.content.decode() and 'value="U123"' in taken.content.decode()
    moved = owner_client.post(
        f"/portfolios/custodian/accounts/{link.pk}/edit/",
        {"custodian": IB, "account": "U777", "portfolio": portfolio.pk},
    )
    assert moved.status_code == 302
    link.refresh_from_db()
    assert link.portfolio == portfolio
    assert AuditEvent.objects.filter(action="custodian.account_linked").count() == 2


def test_another_firm_cannot_reach_an_account_link(book, outsider_client):
    link = CustodianAccount.objects.get(account="U123")
    assert outsider_client.get(f"/portfolios/custodian/accounts/{link.pk}/edit/").status_code == 404
    assert "U123" not in outsider_client.get("/portfolios/custodian/").content.decode()


# --- custodian imports ---------------------------------------------------------------------------------------
def test_positions_upload_previews_commits_and_lands_in_the_history(book, owner_client):
    text = POSITIONS + "U123,20250305,RECO,XTST,12,USD,STK\nU123,20250305,,,1000,USD,CASH\n"
    preview = owner_client.post(
        "/portfolios/custodian/imports/",
        {"custodian": IB, "kind": "positions", "file": csv_file(text, "pos.csv")},
    )
    assert preview.status_code == 200
    assert "2 line(s) for 1 portfolio-day(s)" in preview.content.decode()
    assert not CustodianPosition.objects.exists()
    committed = owner_client.post("/portfolios/custodian/imports/", {"commit": "1"}, follow=True)
    assert "1 snapshot(s) created" in committed.content.decode()
    assert CustodianPosition.objects.count() == 2
    record = CustodianImport.objects.get()
    assert (record.kind, record.filename, record.rows, record.actor) == ("positions", "pos.csv", 2, "owner@acme.test")
    assert "pos.csv" in owner_client.get("/portfolios/custodian/imports/").content.decode()


def test_a_bad_positions_file_shows_each_row_error_and_writes_nothing(book, owner_client):
    text = POSITIONS + "U999,20250305,RECO,XTST,1,USD,STK\nU123,20250305,RECO,XTST,-3,USD,STK\n"
    response = owner_client.post(
        "/portfolios/custodian/imports/", {"custodian": IB, "kind": "positions", "file": csv_file(text)}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Account “U999” is not linked" in html and "A negative position (a short) is not allowed." in html
    assert 'value="interactive-brokers"' in html  # the form keeps what was chosen
    assert owner_client.post("/portfolios/custodian/imports/", {"commit": "1"}, follow=True).status_code == 200
    assert not CustodianPosition.objects.exists() and not CustodianImport.objects.exists()


TRADES = (
    "ClientAccountID,TradeID,TradeDate,Buy/Sell,Symbol,ListingExchange,"
    "Quantity,TradePrice,IBCommission,CurrencyPrimary\n"
)


def test_a_transactions_file_is_booked_by_account_from_the_page(book, owner_client, owner):
    portfolio, _instrument = book
    beta = PortfolioFactory(name="Beta", advisor=owner, base_currency="USD")
    services.transaction_record(portfolio=beta, kind="deposit", trade_date=date(2025, 3, 3), amount="5000")
    CustodianAccount.objects.create(custodian=IB, account="U456", portfolio=beta)
    text = TRADES + "U123,T1,20250306,BUY,RECO,XTST,2,100,1,USD\nU456,T2,20250306,BUY,RECO,XTST,5,100,1,USD\n"
    preview = owner_client.post(
        "/portfolios/custodian/imports/", {"custodian": IB, "kind": "transactions", "file": csv_file(text, "t.csv")}
    )
    assert preview.status_code == 200
    assert "2 new, 0 duplicate(s) skipped (Alpha: 1, Beta: 1)" in preview.content.decode()
    owner_client.post("/portfolios/custodian/imports/", {"commit": "1"})
    assert Transaction.objects.get(portfolio=portfolio, external_id="T1").quantity == D(2)
    assert Transaction.objects.get(portfolio=beta, external_id="T2").quantity == D(5)
    assert CustodianImport.objects.get().portfolios == 2


def test_advisor_cannot_import_and_another_firm_does_not_see_the_history(
    book, owner_client, advisor_client, outsider_client
):
    CustodianImport.objects.create(custodian=IB, kind="positions", filename="acme-secret.csv", actor="owner@acme.test")
    assert advisor_client.get("/portfolios/custodian/imports/").status_code == 403
    text = POSITIONS + "U123,20250305,RECO,XTST,12,USD,STK\n"
    refused = advisor_client.post(
        "/portfolios/custodian/imports/", {"custodian": IB, "kind": "positions", "file": csv_file(text)}
    )
    assert refused.status_code == 403
    assert "acme-secret.csv" not in outsider_client.get("/portfolios/custodian/imports/").content.decode()


# --- reconciliation run from the page ------------------------------------------------------------------------
def test_owner_reconciles_a_day_from_the_page_and_a_bad_day_keeps_the_form(book, owner_client, advisor_client):
    portfolio, instrument = book
    CustodianPosition.objects.create(
        portfolio=portfolio, custodian=IB, as_of=DAY, instrument=instrument, currency="USD", quantity=D(12)
    )
    bad = owner_client.post("/portfolios/reconciliation/", {"run": "1", "as_of": "yesterday", "tolerance": "0.5"})
    assert bad.status_code == 400 and 'value="0.5"' in bad.content.decode()
    done = owner_client.post("/portfolios/reconciliation/", {"run": "1", "as_of": "2025-03-05"}, follow=True)
    assert "Reconciled 1 portfolio(s) on 2025-03-05" in done.content.decode()
    assert ReconciliationBreak.objects.filter(instrument=instrument).exists()
    assert advisor_client.post("/portfolios/reconciliation/", {"run": "1", "as_of": "2025-03-05"}).status_code == 403


# --- the firm's ledger rules: settings page and API ----------------------------------------------------------
def test_owner_sets_the_negative_cash_rule_on_the_settings_page(owner_client):
    html = owner_client.get("/settings/").content.decode()
    assert "Ledger rules" in html and 'value="refuse"' in html
    response = owner_client.post(
        "/settings/", {"form": "ledger", "negative_cash": "refuse", "reconciliation_tolerance": "0.01"}
    )
    assert response.status_code == 302
    row = LedgerSettings.current()
    assert (row.negative_cash, row.reconciliation_tolerance) == ("refuse", D("0.01"))
    assert AuditEvent.objects.filter(action="portfolios.ledger_settings_changed").exists()


def test_a_bad_ledger_setting_names_the_field_and_keeps_the_input(owner_client):
    response = owner_client.post(
        "/settings/", {"form": "ledger", "negative_cash": "refuse", "reconciliation_tolerance": "-1"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="-1"' in html and 'aria-invalid="true"' in html
    assert LedgerSettings.current().negative_cash == "warn"


def test_advisor_reads_the_ledger_rules_but_cannot_change_them(advisor_client):
    html = advisor_client.get("/settings/").content.decode()
    assert "Allow it and show a warning" in html
    refused = advisor_client.post(
        "/settings/", {"form": "ledger", "negative_cash": "refuse", "reconciliation_tolerance": "0"}
    )
    assert refused.status_code == 403
    assert LedgerSettings.current().negative_cash == "warn"


def test_ledger_settings_api_reads_and_changes_the_rule_per_firm(
    owner_client, advisor_client, outsider_client, other_firm
):
    assert owner_client.get("/api/v1/firm/ledger-settings/").json() == {
        "negative_cash": "warn",
        "reconciliation_tolerance": "0.0000000000",
    }
    changed = owner_client.patch(
        "/api/v1/firm/ledger-settings/", json.dumps({"negative_cash": "refuse"}), content_type="application/json"
    )
    assert changed.status_code == 200 and changed.json()["negative_cash"] == "refuse"
    bad = owner_client.patch(
        "/api/v1/firm/ledger-settings/", json.dumps({"negative_cash": "maybe"}), content_type="application/json"
    )
    assert bad.status_code == 400 and "negative_cash" in bad.json()["error"]["details"]
    refused = advisor_client.patch(
        "/api/v1/firm/ledger-settings/", json.dumps({"negative_cash": "warn"}), content_type="application/json"
    )
    assert refused.status_code == 403
    assert advisor_client.get("/api/v1/firm/ledger-settings/").json()["negative_cash"] == "refuse"
    # another firm has its own rule, untouched
    assert outsider_client.get("/api/v1/firm/ledger-settings/").json()["negative_cash"] == "warn"


# --- query counts do not grow with rows ----------------------------------------------------------------------
def _count(client, url, django_assert_max_num_queries) -> int:
    with django_assert_max_num_queries(60) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("url", ["/portfolios/custodian/", "/portfolios/custodian/imports/", "/portfolios/feeds/"])
def test_list_pages_make_as_many_queries_for_many_rows_as_for_one(
    book, owner_client, url, django_assert_max_num_queries
):
    portfolio, _instrument = book

    def add(n):
        for i in range(n):
            CustodianAccount.objects.create(custodian=IB, account=f"Q{n}-{i}", portfolio=portfolio)
            CustodianMapping.objects.create(custodian=f"bank{n}-{i}", kind="positions", columns={"account": "A"})
            CustodianImport.objects.create(custodian=IB, kind="positions", filename=f"f{n}-{i}.csv")
            InstrumentFactory(symbol=f"STALE{n}{i}")

    add(1)
    _count(owner_client, url, django_assert_max_num_queries)  # warm caches (session, firm)
    few = _count(owner_client, url, django_assert_max_num_queries)
    add(6)
    assert _count(owner_client, url, django_assert_max_num_queries) == few
