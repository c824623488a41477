"""Each portfolio's stored headline figures (``PortfolioFigures``, decision 1000): written with the
stored days they come from, equal to the summary computed from the store, checked by
``valuations_verify``, and read by the dashboard's performance panel in a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from portfolios import services, valuation_services
from portfolios.book import book_performance
from portfolios.models import PortfolioFigures, Valuation

from .factories import PortfolioFactory, daily_prices

pytestmark = pytest.mark.django_db

CLOSE = Decimal("1e-20")


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def books(portfolio, advisor, advisor2, aapl, today):
    """Two priced books over more than a year (so YTD reads the index at the close before
    1 January and since inception is annualised): the fixture's portfolio (``advisor``) and one
    of ``advisor2``."""
    start = today - timedelta(days=420)
    daily_prices(aapl, start, [Decimal(100) + Decimal(i % 17) / 3 + Decimal(i) / 40 for i in range(421)])
    other = PortfolioFactory(name="Second book", advisor=advisor2, base_currency="USD")
    rec = services.transaction_record
    rec(portfolio=portfolio, kind="deposit", trade_date=start, amount="20000", today=today)
    rec(portfolio=portfolio, kind="buy", trade_date=start, instrument=aapl, quantity="50", price="100", today=today)
    rec(portfolio=other, kind="deposit", trade_date=start + timedelta(days=30), amount="9000", today=today)
    rec(
        portfolio=other,
        kind="buy",
        trade_date=start + timedelta(days=31),
        instrument=aapl,
        quantity="30",
        price="101",
        today=today,
    )
    return portfolio, other


def summary_of(portfolio, today):
    """The summary computed from the store now, the shared cache out of the way."""
    from portfolios.selectors.summaries import _portfolio_summaries

    return _portfolio_summaries([portfolio], today=today)[portfolio.pk]


def assert_figures_are_the_summary(portfolio, today) -> None:
    figures = PortfolioFigures.objects.get(portfolio=portfolio)
    summary = summary_of(portfolio, today)
    assert figures.as_of == today
    assert figures.value == summary.value
    assert abs(figures.ytd - summary.ytd.value) < CLOSE
    assert abs(figures.since_inception - summary.since_inception.value) < CLOSE


def test_figures_are_the_summary_of_the_last_stored_day(books, today):
    first, other = books
    for p in (first, other):
        assert_figures_are_the_summary(p, today)
    figures = PortfolioFigures.objects.get(portfolio=first)
    # More than a year since inception: annualised; the year to date is its own, shorter chain.
    summary = summary_of(first, today)
    assert summary.since_inception.annualised is not None and summary.ytd.annualised is None
    assert figures.since_inception != figures.ytd
    assert figures.value == Valuation.objects.get(portfolio=first, date=today).value


def test_every_kind_of_write_keeps_the_figures_equal_to_the_summary(books, aapl, today):
    first, other = books
    txn = services.transaction_record(
        portfolio=other, kind="buy", trade_date=today - timedelta(days=3), instrument=aapl, quantity="4", price="105"
    )
    assert_figures_are_the_summary(other, today)
    services.transaction_update(txn=txn, trade_date=today - timedelta(days=200))  # backdated, before 1 January
    assert_figures_are_the_summary(other, today)
    valuation_services.valuations_rebuild(portfolio=first, since=today - timedelta(days=10))
    assert_figures_are_the_summary(first, today)
    for t in list(other.transactions.order_by("-trade_date", "-id")):
        services.transaction_delete(txn=t)  # the whole ledger: no day stored, no figures
    assert not PortfolioFigures.objects.filter(portfolio=other).exists()
    assert valuation_services.figures_differences(portfolio=other) == []


def test_verify_reports_figures_off_and_missing_and_the_rebuild_repairs_them(books, capsys):
    first, other = books
    call_command("valuations_verify", "--firm", "acme")
    assert "2 portfolio(s) in 1 firm(s) checked, 0 differ" in capsys.readouterr().out

    PortfolioFigures.objects.filter(portfolio=first).update(ytd=Decimal("0.5"))
    PortfolioFigures.objects.filter(portfolio=other).delete()
    with pytest.raises(CommandError, match="2 portfolio"):
        call_command("valuations_verify", "--firm", "acme")
    out = capsys.readouterr().out
    assert "figures ytd: stored 0.5" in out and "missing" in out

    assert valuation_services.portfolio_figures_rebuild() == 2
    assert valuation_services.figures_differences(portfolio=first) == []
    assert valuation_services.figures_differences(portfolio=other) == []


def test_book_performance_weights_each_return_by_value(books, owner, advisor, advisor2, today):
    first, other = books
    f1, f2 = (PortfolioFigures.objects.get(portfolio=p) for p in (first, other))
    book = book_performance(user=owner)
    assert book.as_of == today and book.behind == 0
    by_value = sorted([(f1.value, first.pk), (f2.value, other.pk)], reverse=True)
    assert [f.portfolio.pk for f in book.largest] == [pk for _v, pk in by_value]
    want_ytd = (f1.value * f1.ytd + f2.value * f2.ytd) / (f1.value + f2.value)
    want_si = (f1.value * f1.since_inception + f2.value * f2.since_inception) / (f1.value + f2.value)
    assert abs(book.ytd - want_ytd) < CLOSE and abs(book.since_inception - want_si) < CLOSE

    mine = book_performance(user=advisor)  # the advisor's book: their portfolio only
    assert [f.portfolio.pk for f in mine.largest] == [first.pk]
    assert abs(mine.ytd - f1.ytd) < CLOSE
    assert [f.portfolio.pk for f in book_performance(user=advisor2).largest] == [other.pk]


def test_archived_portfolios_and_old_figures_are_said_or_left_out(books, owner, today):
    first, other = books
    services.portfolio_update(portfolio=other, actor=owner, archived=True)
    book = book_performance(user=owner)
    assert [f.portfolio.pk for f in book.largest] == [first.pk]
    services.portfolio_update(portfolio=other, actor=owner, archived=False)
    PortfolioFigures.objects.filter(portfolio=other).update(as_of=today - timedelta(days=1))
    assert book_performance(user=owner).behind == 1


def test_book_performance_costs_the_same_queries_for_any_number_of_portfolios(books, owner, aapl, today):
    with CaptureQueriesContext(connection) as few:
        book_performance(user=owner)
    for i in range(4):
        p = PortfolioFactory(name=f"More {i}", advisor=owner, base_currency="USD")
        services.transaction_record(portfolio=p, kind="deposit", trade_date=today - timedelta(days=5), amount="100")
    with CaptureQueriesContext(connection) as many:
        assert len(book_performance(user=owner).largest) == 6

    def reads(ctx) -> list[str]:  # statements proper; ``SET search_path`` is django-tenants' schema switch
        return [q["sql"] for q in ctx.captured_queries if not q["sql"].startswith("SET search_path")]

    assert len(reads(many)) == len(reads(few)) == 2  # the sums per currency, the largest
    assert not any("portfolios_valuation" in sql for sql in reads(many))


def test_the_figures_live_in_the_firms_own_schema(books, other_firm, outsider, owner_client):
    assert "Performance of the book" in owner_client.get("/").content.decode()
    with schema_context(other_firm.schema_name):
        assert not PortfolioFigures.objects.exists()
        assert book_performance(user=outsider).largest == []
