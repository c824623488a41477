"""The firm's stored daily totals (``FirmValuation``, decision 0920): kept equal, in the same
transaction, to the sum of the portfolios' stored days computed the slow way; read by the dashboard."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from portfolios import services, valuation_services, valuations
from portfolios.book import book_totals
from portfolios.models import FirmValuation, Portfolio, Valuation

from .factories import InstrumentFactory, PortfolioFactory, daily_prices

pytestmark = pytest.mark.django_db


def slow_sums() -> dict:
    """Per (day, base currency): value, net flows, cash and count of the portfolios not archived,
    summed in Python from every stored portfolio day."""
    archived = set(Portfolio.objects.filter(archived=True).values_list("pk", flat=True))
    base = dict(Portfolio.objects.values_list("pk", "base_currency"))
    out: dict = defaultdict(lambda: [Decimal(0), Decimal(0), Decimal(0), 0])
    for pid, day, value, flows, cash in Valuation.objects.values_list(
        "portfolio_id", "date", "value", "net_flows", "cash"
    ):
        if pid in archived:
            continue
        row = out[(day, base[pid])]
        row[0] += value
        row[1] += flows
        row[2] += cash
        row[3] += 1
    return {k: tuple(v) for k, v in out.items()}


def stored_sums() -> dict:
    return {
        (d, c): (v, f, cash, n)
        for d, c, v, f, cash, n in FirmValuation.objects.values_list(
            "date", "currency", "value", "net_flows", "cash", "portfolios"
        )
    }


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def msft(firm):
    return InstrumentFactory(symbol="MSFTT", name="Microsoft Test", currency="USD", sector="Technology")


@pytest.fixture
def two_books(portfolio, advisor, aapl, msft, today):
    start = today - timedelta(days=60)
    daily_prices(aapl, start, [Decimal(100) + Decimal(i % 9) / 4 for i in range(61)])
    daily_prices(msft, start, [Decimal(50) + Decimal(i % 5) / 8 for i in range(61)])
    other = PortfolioFactory(name="Second book", advisor=advisor, base_currency="USD")
    rec = services.transaction_record
    rec(portfolio=portfolio, kind="deposit", trade_date=start, amount="20000", today=today)
    rec(portfolio=portfolio, kind="buy", trade_date=start, instrument=aapl, quantity="50", price="100", today=today)
    rec(portfolio=other, kind="deposit", trade_date=start + timedelta(days=5), amount="9000", today=today)
    rec(
        portfolio=other,
        kind="buy",
        trade_date=start + timedelta(days=6),
        instrument=aapl,
        quantity="30",
        price="101",
        today=today,
    )
    return portfolio, other


def test_the_firm_rows_equal_the_sum_of_the_portfolios_computed_the_slow_way(two_books):
    first, other = two_books
    sums = slow_sums()
    assert sums and stored_sums() == sums
    inception = Valuation.objects.filter(portfolio=first).order_by("date").first().date
    # both portfolios on a day both are valued: the count says so
    assert stored_sums()[(timezone.localdate(), "USD")][3] == 2
    assert stored_sums()[(inception, "USD")][3] == 1
    assert valuation_services.firm_valuations_verify() == []


def test_every_kind_of_write_keeps_the_firm_rows_equal_to_the_slow_sum(two_books, aapl, msft, today, owner):
    first, other = two_books
    txn = services.transaction_record(
        portfolio=other, kind="buy", trade_date=today - timedelta(days=3), instrument=msft, quantity="4", price="50"
    )
    assert stored_sums() == slow_sums()
    services.transaction_update(txn=txn, trade_date=today - timedelta(days=40))  # backdated
    assert stored_sums() == slow_sums()
    early = services.transaction_record(
        portfolio=other, kind="deposit", trade_date=today - timedelta(days=59), amount="5"
    )  # before its inception: rebuilt from the new inception
    assert stored_sums() == slow_sums()
    services.transaction_delete(txn=early)
    assert stored_sums() == slow_sums()
    services.portfolio_update(portfolio=other, actor=owner, archived=True)
    assert stored_sums() == slow_sums()
    assert stored_sums()[(today, "USD")][3] == 1
    services.portfolio_update(portfolio=other, actor=owner, archived=False)
    assert stored_sums() == slow_sums()
    valuation_services.valuations_rebuild(portfolio=first, since=today - timedelta(days=10))
    assert stored_sums() == slow_sums()
    for t in list(first.transactions.order_by("-trade_date", "-id")):
        services.transaction_delete(txn=t)  # the whole ledger: the portfolio leaves the totals
    assert stored_sums() == slow_sums()
    assert all(n == 1 for _v, _f, _c, n in stored_sums().values())
    assert valuation_services.firm_valuations_verify() == []


def test_verify_reports_a_firm_total_off_by_a_cent_and_rebuild_repairs_it(two_books, capsys):
    call_command("valuations_verify", "--firm", "acme")
    assert "the firm totals differ in 0 firm(s)" in capsys.readouterr().out
    row = FirmValuation.objects.order_by("-date").first()
    FirmValuation.objects.filter(pk=row.pk).update(value=row.value + Decimal("0.01"))
    with pytest.raises(CommandError, match="the firm totals differ in 1 firm"):
        call_command("valuations_verify", "--firm", "acme")
    assert f"firm {row.date} USD value: stored" in capsys.readouterr().out
    valuation_services.firm_valuations_rebuild()
    assert valuation_services.firm_valuations_verify() == [] and stored_sums() == slow_sums()


def test_book_totals_read_the_firm_rows_for_the_owner_and_sum_the_book_for_an_advisor(
    two_books, owner, advisor, advisor2, today
):
    first, other = two_books
    other.advisor = advisor2
    other.save()
    values = dict(Valuation.objects.filter(date=today).values_list("portfolio_id", "value"))
    yesterday = dict(Valuation.objects.filter(date=today - timedelta(days=1)).values_list("portfolio_id", "value"))
    flows = dict(Valuation.objects.filter(date=today).values_list("portfolio_id", "net_flows"))
    with CaptureQueriesContext(connection) as ctx:
        mine = book_totals(user=owner, on=today)
    assert not any("portfolios_valuation" in q["sql"] for q in ctx.captured_queries)  # only the firm rows
    assert mine.on == today and mine.value == values[first.pk] + values[other.pk]
    assert mine.day_change == sum(values[p] - flows[p] - yesterday[p] for p in (first.pk, other.pk))
    assert mine.portfolio_count == 2
    later = book_totals(user=owner, on=today + timedelta(days=2))  # not valued that day yet: the last stored day
    assert (later.on, later.value, later.day_change) == (today, mine.value, mine.day_change)
    theirs = book_totals(user=advisor, on=today)
    assert theirs.value == values[first.pk] and theirs.portfolio_count == 1
    assert theirs.day_change == values[first.pk] - flows[first.pk] - yesterday[first.pk]
    assert book_totals(user=advisor2, on=today).value == values[other.pk]
    # An advisor's book not valued that day yet: its last stored day and the change against the
    # day before, as for the firm (read as those two days only, decision 1300).
    later_theirs = book_totals(user=advisor, on=today + timedelta(days=3))
    assert (later_theirs.on, later_theirs.value, later_theirs.day_change) == (today, theirs.value, theirs.day_change)
    assert book_totals(user=advisor, on=today + timedelta(days=30)).value == 0  # nothing stored in the week


def test_the_firm_rows_live_in_the_firms_own_schema(two_books, other_firm, owner_client):
    assert FirmValuation.objects.exists()
    assert "Assets under management" in owner_client.get("/").content.decode()
    with schema_context(other_firm.schema_name):
        assert not FirmValuation.objects.exists()
        assert (
            valuations.firm_valuations(start=timezone.localdate() - timedelta(days=9), end=timezone.localdate()) == []
        )
