"""Portfolio pages: content, forms, roles, isolation, query counts."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portfolios import services
from portfolios.market.services import prices_import
from portfolios.models import Holding, Portfolio, Transaction, Valuation

from .factories import ContactFactory, InstrumentFactory, PortfolioFactory, daily_prices, in_public

pytestmark = pytest.mark.django_db


@pytest.fixture
def live(portfolio, aapl):
    """A portfolio with a ledger and prices up to today, benchmarked."""
    today = timezone.localdate()
    start = today - timedelta(days=400)
    daily_prices(aapl, start, [100 + (i % 7) for i in range(401)])
    bench = InstrumentFactory(symbol="BNCH", sector="Index")
    daily_prices(bench, start, [50 + (i % 5) for i in range(401)])
    portfolio.benchmark = bench
    portfolio.save()
    services.transaction_record(portfolio=portfolio, kind="deposit", trade_date=start, amount="10000")
    services.transaction_record(
        portfolio=portfolio, kind="buy", trade_date=start, instrument=aapl, quantity="50", price="100", fees="1"
    )
    return portfolio


def test_list_shows_value_and_returns(advisor_client, live):
    r = advisor_client.get("/portfolios/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "Ada growth" in html and "Ada Lovelace" in html
    assert "Return YTD" in html and "\u00a0%" in html  # a no-break space before "%" (decision 1050)


def test_detail_page_has_holdings_charts_returns_and_ledger(advisor_client, live):
    r = advisor_client.get(f"/portfolios/{live.pk}/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "<svg" in html and "polyline" in html  # value-over-time chart
    assert "Benchmark BNCH" in html and "series-2" in html
    for preset in ("MTD", "QTD", "YTD", "1Y", "3Y", "SI"):
        assert f'<th scope="row">{preset}</th>' in html
    assert "AAPLT" in html and "Add a transaction" in html
    # the charts are inline SVG: no script of their own, nothing fetched from another host
    scripts = re.findall(r"<script[^>]*>", html)
    assert all('src="/static/' in tag for tag in scripts) and "cdn" not in html.lower()
    r = advisor_client.get(f"/portfolios/{live.pk}/?by=currency")
    assert "Allocation by currency (%)" in r.content.decode()


def test_empty_portfolio_page(advisor_client, portfolio):
    r = advisor_client.get(f"/portfolios/{portfolio.pk}/")
    assert r.status_code == 200 and b"No transactions yet" in r.content


def test_create_portfolio_page(advisor_client, advisor, client_contact):
    r = advisor_client.post(
        "/portfolios/new/",
        {
            "name": "Fresh",
            "client": client_contact.pk,
            "advisor": advisor.pk,
            "base_currency": "USD",
            "lot_method": "fifo",
        },
    )
    assert r.status_code == 302
    assert Portfolio.objects.filter(name="Fresh", advisor=advisor).exists()


def test_create_portfolio_errors_stay_on_the_form(advisor_client, advisor):
    r = advisor_client.post(
        "/portfolios/new/", {"name": "Bad", "advisor": advisor.pk, "base_currency": "X1", "lot_method": "fifo"}
    )
    assert r.status_code == 200 and b"three-letter ISO" in r.content
    assert not Portfolio.objects.filter(name="Bad").exists()


def test_add_edit_delete_transaction_pages(advisor_client, portfolio, aapl):
    today = timezone.localdate()
    r = advisor_client.post(
        f"/portfolios/{portfolio.pk}/transactions/new/",
        {"kind": "buy", "trade_date": today.isoformat(), "instrument": aapl.pk, "quantity": "5", "price": "10"},
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    txn = Transaction.objects.get(portfolio=portfolio)
    r = advisor_client.post(
        f"/portfolios/{portfolio.pk}/transactions/{txn.pk}/edit/",
        {
            "kind": "buy",
            "trade_date": today.isoformat(),
            "instrument": aapl.pk,
            "quantity": "7",
            "price": "10",
            "fees": "0",
            "currency": "USD",
            "fx_rate": "1",
        },
    )
    assert r.status_code == 302
    assert Holding.objects.get(portfolio=portfolio).quantity == 7
    r = advisor_client.post(f"/portfolios/{portfolio.pk}/transactions/{txn.pk}/delete/", {"confirmed": "yes"})
    assert r.status_code == 302
    assert not Transaction.objects.filter(portfolio=portfolio).exists()


def test_ledger_rows_delete_through_one_shared_form(advisor_client, live):
    """Each row's Delete is a button of one form (its formaction names the row): no form and
    token per row (decision 1311). Without JavaScript the post shows the confirmation page;
    confirmed, it deletes that row and no other."""
    html = advisor_client.get(f"/portfolios/{live.pk}/").content.decode()
    rows = Transaction.objects.filter(portfolio=live).count()
    assert rows > 1
    assert html.count('<form id="ledger-delete"') == 1
    targets = re.findall(r'form="ledger-delete" formaction="([^"]+)"', html)
    assert len(targets) == rows
    assert not re.search(r"<form[^>]*/delete/", html)  # no form per row
    first = Transaction.objects.filter(portfolio=live).order_by("-trade_date", "-id").first()
    target = f"/portfolios/{live.pk}/transactions/{first.pk}/delete/"
    assert target in targets
    asked = advisor_client.post(target)
    assert asked.status_code == 200 and b"Delete this transaction?" in asked.content
    assert Transaction.objects.filter(pk=first.pk).exists()
    done = advisor_client.post(target, {"confirmed": "yes"})
    assert done.status_code == 302
    assert not Transaction.objects.filter(pk=first.pk).exists()
    assert Transaction.objects.filter(portfolio=live).count() == rows - 1


def test_ledger_shows_25_rows_a_page_and_more_on_request(advisor_client, live, aapl):
    today = timezone.localdate()
    for i in range(30):
        services.transaction_record(
            portfolio=live, kind="interest", trade_date=today - timedelta(days=i), instrument=aapl, amount="1"
        )
    html = advisor_client.get(f"/portfolios/{live.pk}/").content.decode()
    assert len(re.findall(r'form="ledger-delete"', html)) == 25
    more = advisor_client.get(f"/portfolios/{live.pk}/?per_page=50").content.decode()
    assert len(re.findall(r'form="ledger-delete"', more)) == min(50, Transaction.objects.filter(portfolio=live).count())


def test_outsider_cannot_delete_through_the_ledger_form(outsider_client, live):
    txn = Transaction.objects.filter(portfolio=live).first()
    r = outsider_client.post(f"/portfolios/{live.pk}/transactions/{txn.pk}/delete/", {"confirmed": "yes"})
    assert r.status_code in (403, 404)
    assert Transaction.objects.filter(pk=txn.pk).exists()


def test_sell_more_than_held_shows_a_form_error(advisor_client, live, aapl):
    r = advisor_client.post(
        f"/portfolios/{live.pk}/transactions/new/",
        {
            "kind": "sell",
            "trade_date": timezone.localdate().isoformat(),
            "instrument": aapl.pk,
            "quantity": "51",
            "price": "10",
        },
    )
    assert r.status_code == 200
    assert "only 50 held" in r.content.decode()
    assert Transaction.objects.filter(portfolio=live).count() == 2


def test_future_date_shows_a_form_error(advisor_client, portfolio):
    r = advisor_client.post(
        f"/portfolios/{portfolio.pk}/transactions/new/",
        {"kind": "deposit", "trade_date": (timezone.localdate() + timedelta(days=2)).isoformat(), "amount": "5"},
    )
    assert r.status_code == 200 and b"in the future" in r.content


def test_exposure_page(owner_client, live):
    r = owner_client.get("/portfolios/exposure/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "Assets under management" in html and "Ada Lovelace" in html and "Technology" in html


# --- roles and isolation ---------------------------------------------------------------------------


def test_advisor_sees_only_their_book(advisor_client, portfolio, advisor2):
    other = PortfolioFactory(advisor=advisor2, name="Someone else's")
    html = advisor_client.get("/portfolios/").content.decode()
    assert "Ada growth" in html and "Someone else" not in html
    assert advisor_client.get(f"/portfolios/{other.pk}/").status_code == 404
    assert advisor_client.get(f"/portfolios/{portfolio.pk}/").status_code == 200


def test_viewer_reads_but_cannot_write(viewer_client, portfolio):
    assert viewer_client.get(f"/portfolios/{portfolio.pk}/").status_code == 200
    assert b"Add a transaction" not in viewer_client.get(f"/portfolios/{portfolio.pk}/").content
    assert viewer_client.get("/portfolios/new/").status_code == 403
    r = viewer_client.post(
        f"/portfolios/{portfolio.pk}/transactions/new/",
        {"kind": "deposit", "trade_date": "2025-01-02", "amount": "5"},
    )
    assert r.status_code == 403
    assert not Transaction.objects.filter(portfolio=portfolio).exists()


def test_other_firm_sees_nothing(outsider_client, owner_client, portfolio):
    assert owner_client.get(f"/portfolios/{portfolio.pk}/").status_code == 200
    assert outsider_client.get(f"/portfolios/{portfolio.pk}/").status_code == 404
    assert b"Ada growth" not in outsider_client.get("/portfolios/").content
    assert outsider_client.get(f"/portfolios/{portfolio.pk}/export/transactions.csv").status_code == 404


def test_anonymous_is_sent_to_sign_in(anon_client, portfolio):
    r = anon_client.get(f"/portfolios/{portfolio.pk}/")
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]


def _count(client, url) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx)


def test_list_page_query_count_is_constant(owner_client, advisor, aapl):
    today = timezone.localdate()
    daily_prices(aapl, today - timedelta(days=10), [100] * 11)

    def add():
        p = PortfolioFactory(advisor=advisor, client=ContactFactory(owner=advisor))
        services.transaction_record(portfolio=p, kind="deposit", trade_date=today - timedelta(days=5), amount="100")
        services.transaction_record(
            portfolio=p, kind="buy", trade_date=today - timedelta(days=5), instrument=aapl, quantity="1", price="100"
        )

    add()
    few = _count(owner_client, "/portfolios/")
    for _ in range(5):
        add()
    assert _count(owner_client, "/portfolios/") == few


def test_detail_page_query_count_does_not_grow_with_the_ledger(advisor_client, live, aapl):
    url = f"/portfolios/{live.pk}/"
    few = _count(advisor_client, url)
    start = timezone.localdate() - timedelta(days=300)
    for i in range(10):
        services.transaction_record(
            portfolio=live, kind="buy", trade_date=start + timedelta(days=i), instrument=aapl, quantity="1", price="100"
        )
    assert _count(advisor_client, url) == few


def test_exposure_page_query_count_is_constant(owner_client, live, advisor, aapl):
    few = _count(owner_client, "/portfolios/exposure/")
    other = InstrumentFactory(symbol="OTHR")
    daily_prices(other, timezone.localdate() - timedelta(days=3), [10, 11, 12, 13])
    for _ in range(3):
        p = PortfolioFactory(advisor=advisor, client=ContactFactory(owner=advisor))
        day = timezone.localdate() - timedelta(days=3)
        services.transaction_record(portfolio=p, kind="buy", trade_date=day, instrument=other, quantity="1", price="10")
    assert _count(owner_client, "/portfolios/exposure/") == few


def _change_currency_by_import(instrument, currency: str) -> None:
    """The operator's way to change an instrument: an instruments import with overwrite."""
    csv = (
        "symbol,exchange,name,asset_class,currency,sector,country\n"
        f"{instrument.symbol},{instrument.exchange},{instrument.name},{instrument.asset_class},{currency},"
        f"{instrument.sector},{instrument.country}\n"
    )
    in_public(prices_import, file=csv.encode(), kind="instruments", overwrite=True)


def test_figures_that_cannot_be_computed_are_explained_not_a_500(
    advisor_client, live, aapl, django_capture_on_commit_callbacks
):
    # The instrument's currency is changed after the trades and no GBP rate exists: the
    # background revaluation fails, the previous figures stay, and both the page and the API say so.
    before = advisor_client.get(f"/api/v1/portfolios/{live.pk}/performance/").json()
    assert before["valuation"]["failed"] is False
    with django_capture_on_commit_callbacks(execute=True):
        _change_currency_by_import(aapl, "GBP")
    r = advisor_client.get(f"/portfolios/{live.pk}/")
    assert r.status_code == 200 and b"cannot be computed" in r.content
    assert b"Figures could not be updated" in r.content and b"GBP" in r.content
    api = advisor_client.get(f"/api/v1/portfolios/{live.pk}/performance/")
    assert api.status_code == 200
    body = api.json()
    assert body["valuation"]["failed"] is True and "GBP" in body["valuation"]["error"]
    assert body["end_value"] == before["end_value"]  # the previous figures, not half-updated ones


def test_figures_with_nothing_stored_that_cannot_be_computed_are_a_409(advisor_client, live, aapl):
    # Nothing stored to fall back on (e.g. valued before the store existed): computed from the
    # ledger, and a figure that cannot be computed is a 409 naming the reason.
    Valuation.objects.filter(portfolio=live).delete()
    aapl.currency = "GBP"
    aapl.save()
    api = advisor_client.get(f"/api/v1/portfolios/{live.pk}/performance/")
    assert api.status_code == 409 and api.json()["error"]["code"] == "cannot_compute"


def test_exposure_page_currency_errors_are_shown(owner_client, live):
    r = owner_client.get("/portfolios/exposure/?currency=1$")
    assert r.status_code == 200 and b"three-letter ISO" in r.content
    r = owner_client.get("/portfolios/exposure/?currency=JPY")
    assert "No rate to JPY is known yet for USD" in r.content.decode()


def test_list_search_finds_client_first_names(advisor_client, live):
    assert b"Ada growth" in advisor_client.get("/portfolios/?q=ada").content
    assert b"Ada growth" not in advisor_client.get("/portfolios/?q=zzz").content


def test_advisor_edits_a_portfolio_shared_with_them(advisor_client, advisor, advisor2):
    shared = PortfolioFactory(advisor=advisor2, name="Shared one")
    shared.shared_with.add(advisor)
    r = advisor_client.post(
        f"/portfolios/{shared.pk}/edit/",
        {
            "name": "Shared, renamed",
            "advisor": advisor2.pk,
            "base_currency": "USD",
            "lot_method": "fifo",
            "shared_with": [advisor.pk],
        },
    )
    assert r.status_code == 302, r.content.decode()[-3000:]
    shared.refresh_from_db()
    assert shared.name == "Shared, renamed" and shared.advisor == advisor2
    r = advisor_client.post(
        f"/portfolios/{shared.pk}/edit/",
        {
            "name": "Mine now",
            "advisor": advisor.pk,
            "base_currency": "USD",
            "lot_method": "fifo",
            "shared_with": [advisor.pk],
        },
    )
    assert r.status_code == 200 and b"Only owners and admins move" in r.content
