"""A custodian transactions file with an account column books each row into the portfolio linked to
its account; an account not linked is an error on its row; all or nothing over every portfolio."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from codex import imports as engine
from portfolios import custodian, services
from portfolios.models import CustodianAccount, CustodianImport, Transaction
from tenants.models import AuditEvent

from .factories import InstrumentFactory, PortfolioFactory

pytestmark = pytest.mark.django_db
IB = "interactive-brokers"
HEADER = (
    "ClientAccountID,TradeID,TradeDate,Buy/Sell,Symbol,ListingExchange,"
    "Quantity,TradePrice,IBCommission,CurrencyPrimary\n"
)


def upload(text: str):
    return SimpleUploadedFile("trades.csv", text.encode(), content_type="text/csv")


@pytest.fixture
def two_accounts(firm, owner):
    instrument = InstrumentFactory(symbol="ROUT", exchange="XTST", currency="USD")
    alpha = PortfolioFactory(name="Alpha", advisor=owner, base_currency="USD")
    beta = PortfolioFactory(name="Beta", advisor=owner, base_currency="USD")
    for p in (alpha, beta):
        services.transaction_record(portfolio=p, kind="deposit", trade_date=date(2025, 3, 3), amount="1000")
    CustodianAccount.objects.create(custodian=IB, account="U1", portfolio=alpha)
    CustodianAccount.objects.create(custodian=IB, account="U2", portfolio=beta)
    return alpha, beta, instrument


def rows(*lines):
    return HEADER + "".join(line + "\n" for line in lines)


def test_each_row_goes_to_its_accounts_portfolio_and_the_same_file_twice_adds_nothing(two_accounts, owner):
    alpha, beta, instrument = two_accounts
    text = rows(
        "U1,T1,20250304,BUY,ROUT,XTST,2,100,1,USD",
        "U2,T2,20250304,BUY,ROUT,XTST,3,100,1,USD",
        "U1,T3,20250305,SELL,ROUT,XTST,1,110,1,USD",
    )
    job = custodian.transactions_import_by_account(custodian=IB, upload=upload(text), created_by=owner)
    preview = job.preview()
    assert preview.ok and (preview.new, preview.duplicates) == (3, 0)
    assert [(p.name, n) for p, n in preview.portfolios] == [("Alpha", 2), ("Beta", 1)]
    assert not Transaction.objects.filter(external_id__in=["T1", "T2", "T3"]).exists()
    result = job.commit(actor=owner.email, filename="trades.csv")
    assert result.new == 3
    assert set(Transaction.objects.filter(portfolio=alpha).values_list("external_id", flat=True)) >= {"T1", "T3"}
    assert Transaction.objects.get(portfolio=beta, external_id="T2").quantity == D(3)
    history = CustodianImport.objects.get()
    assert (history.portfolios, history.created, history.rows) == (2, 3, 3)
    assert AuditEvent.objects.get(action="custodian.transactions_imported").details["by_account"] is True
    again = custodian.transactions_import_by_account(custodian=IB, upload=upload(text), created_by=owner)
    repeat = again.commit(actor=owner.email)
    assert (repeat.new, repeat.duplicates) == (0, 3)
    assert Transaction.objects.filter(external_id__in=["T1", "T2", "T3"]).count() == 3


def test_an_unknown_account_is_a_row_error_and_nothing_is_written(two_accounts, owner):
    text = rows(
        "U1,T1,20250304,BUY,ROUT,XTST,2,100,1,USD",
        "U9,T2,20250304,BUY,ROUT,XTST,3,100,1,USD",
        ",T4,20250304,BUY,ROUT,XTST,3,100,1,USD",
    )
    job = custodian.transactions_import_by_account(custodian=IB, upload=upload(text), created_by=owner)
    preview = job.preview()
    assert [(e.row, e.field) for e in preview.errors] == [(3, "account"), (4, "account")]
    assert "Account “U9” is not linked" in preview.errors[0].message
    with pytest.raises(engine.ImportRejected):
        job.commit(actor=owner.email)
    assert not Transaction.objects.filter(external_id="T1").exists()
    assert not CustodianImport.objects.exists()


def test_a_ledger_error_in_one_portfolio_rejects_the_whole_file_with_the_files_row_number(two_accounts, owner):
    alpha, beta, _instrument = two_accounts
    text = rows(
        "U2,T2,20250304,BUY,ROUT,XTST,3,100,1,USD",
        "U1,T1,20250304,BUY,ROUT,XTST,2,100,1,USD",
        "U2,T3,20250305,SELL,ROUT,XTST,9,100,1,USD",  # beta holds 3
        "U1,T1,20250304,BUY,ROUT,XTST,2,100,1,USD",  # the same custodian id twice in the file
    )
    job = custodian.transactions_import_by_account(custodian=IB, upload=upload(text), created_by=owner)
    errors = job.preview().errors
    assert (4, "quantity") in [(e.row, e.field) for e in errors]
    duplicate = next(e for e in errors if e.row == 5)
    assert "row 3" in duplicate.message  # numbered as in the file, not within the portfolio's rows
    with pytest.raises(engine.ImportRejected) as rejected:
        job.commit(actor=owner.email)
    assert {e.row for e in rejected.value.errors} == {4, 5}
    assert not Transaction.objects.filter(external_id__in=["T1", "T2", "T3"]).exists()


def test_a_file_without_an_account_column_is_an_unknown_layout(two_accounts, owner):
    text = "TradeID,TradeDate,Buy/Sell,Symbol,Quantity,TradePrice,CurrencyPrimary\nT1,20250304,BUY,ROUT,1,100,USD\n"
    with pytest.raises(engine.ImportFileError, match="no account column"):
        custodian.transactions_import_by_account(custodian=IB, upload=upload(text), created_by=owner)


def test_routed_import_api_previews_and_commits(two_accounts, owner_client, outsider_client):
    alpha, _beta, _instrument = two_accounts
    text = rows("U1,T1,20250304,BUY,ROUT,XTST,2,100,1,USD", "U2,T2,20250304,BUY,ROUT,XTST,3,100,1,USD")
    preview = owner_client.post("/api/v1/custodian/transactions/import/", {"custodian": IB, "file": upload(text)})
    assert preview.status_code == 200 and preview.json()["counts"] == {"new": 2, "duplicates": 0, "errors": 0}
    done = owner_client.post(
        "/api/v1/custodian/transactions/import/", {"custodian": IB, "file": upload(text), "commit": "true"}
    )
    assert done.status_code == 201, done.content
    assert Transaction.objects.filter(external_id__in=["T1", "T2"]).count() == 2
    # another firm has no such accounts: every row is an error there, nothing written
    other = outsider_client.post(
        "/api/v1/custodian/transactions/import/", {"custodian": IB, "file": upload(text), "commit": "true"}
    )
    assert other.status_code == 400
    assert [r["field"] for r in other.json()["error"]["details"]["rows"]] == ["account", "account"]
