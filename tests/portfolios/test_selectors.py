"""Selectors against numbers worked out by hand (see each test's comment)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portfolios import analytics, selectors, services
from portfolios.selectors.portfolio import _sub_series

from .factories import ContactFactory, InstrumentFactory, PortfolioFactory, add_fx, add_prices

D = date
pytestmark = pytest.mark.django_db


@pytest.fixture
def priced(aapl):
    # 100 -> 110 -> 99: +10 %, then -10 %.
    add_prices(aapl, {D(2025, 1, 2): "100", D(2025, 1, 3): "110", D(2025, 1, 4): "99"})
    return aapl


@pytest.fixture
def funded(record, priced):
    record("deposit", D(2025, 1, 2), amount="1000")
    record("buy", D(2025, 1, 2), instrument=priced, quantity="10", price="100")


def test_performance_matches_hand_numbers(portfolio, funded):
    # Values 1000, 1100, 990. TWR = 1.1 * 0.9 - 1 = -1 %. MWR: 1000 in, 990 out after 2 days
    # -> period rate -1 %. Drawdown from 1100 to 990 = 10 %.
    result = selectors.portfolio_performance(portfolio=portfolio, preset="SI", today=D(2025, 1, 4))
    p = result.performance
    assert p.series.values == [Decimal(1000), Decimal(1100), Decimal(990)]
    assert p.twr.cumulative == Decimal("-0.01")
    assert abs(p.mwr.cumulative - Decimal("-0.01")) < Decimal("1e-12")
    assert p.max_drawdown.depth == Decimal("0.1")
    assert p.end_value == Decimal(990)
    assert p.summary.deposits == Decimal(1000)


def test_explicit_range_starts_from_the_previous_close(portfolio, funded):
    # From the close of 01-03 (1100) to 01-04 (990): -10 %.
    result = selectors.portfolio_performance(
        portfolio=portfolio, start="2025-01-04", end="2025-01-04", today=D(2025, 1, 4)
    )
    assert result.performance.twr.cumulative == Decimal("-0.1")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"preset": "5Y"}, "preset"),
        ({"start": "2025-01-03", "end": "2025-01-02"}, "start"),
        ({"start": "nope"}, "start"),
        ({"end": "2030-01-01"}, "end"),
        ({"preset": "YTD", "start": "2025-01-02"}, "preset"),
    ],
)
def test_bad_ranges_are_field_errors(portfolio, funded, kwargs, field):
    with pytest.raises(ValidationError) as exc:
        selectors.portfolio_performance(portfolio=portfolio, today=D(2025, 1, 4), **kwargs)
    assert field in exc.value.message_dict


def test_presets_are_clamped_to_inception():
    assert selectors.resolve_range(inception=D(2025, 1, 2), preset="YTD", today=D(2025, 12, 31)) == (
        D(2025, 1, 2),
        D(2025, 12, 31),
    )
    assert selectors.resolve_range(inception=D(2020, 1, 2), preset="1Y", today=D(2025, 12, 31)) == (
        D(2025, 1, 1),
        D(2025, 12, 31),
    )
    assert selectors.resolve_range(inception=D(2020, 1, 2), preset="qtd", today=D(2025, 11, 5)) == (
        D(2025, 10, 1),
        D(2025, 11, 5),
    )


def test_empty_portfolio_has_no_performance(portfolio):
    with pytest.raises(ValidationError) as exc:
        selectors.portfolio_performance(portfolio=portfolio, today=D(2025, 1, 4))
    assert "portfolio" in exc.value.message_dict


def test_holdings_in_foreign_currency_include_the_fx_effect(record, portfolio, sap):
    # Bought 1 SAP at 100 EUR when 1 EUR = 1.10 USD: cost 110 USD. At 1.20 it is worth 120 USD.
    add_fx("EUR", "USD", {D(2025, 1, 1): "1.10", D(2025, 1, 3): "1.20"})
    add_prices(sap, {D(2025, 1, 2): "100"})
    record("deposit", D(2025, 1, 2), amount="110")
    record("buy", D(2025, 1, 2), instrument=sap, quantity="1", price="100")
    snap, infos = selectors.portfolio_holdings(portfolio=portfolio, on=D(2025, 1, 3))
    (h,) = snap.holdings
    assert (h.market_value_base, h.cost_base, h.unrealised_gain_base) == (Decimal(120), Decimal(110), Decimal(10))
    assert snap.cash == {"USD": Decimal(110), "EUR": Decimal(-100)}
    assert snap.total_value == Decimal(110)
    assert infos[sap.pk].symbol == "SAPT"


def test_allocation_by_sector_and_currency(record, portfolio, priced, sap):
    add_fx("EUR", "USD", {D(2025, 1, 1): "1.00"})
    add_prices(sap, {D(2025, 1, 2): "100"})
    sap.sector = "Software"
    sap.save()
    record("deposit", D(2025, 1, 2), amount="2000")
    record("buy", D(2025, 1, 2), instrument=priced, quantity="10", price="100")
    record("buy", D(2025, 1, 2), instrument=sap, quantity="5", price="100")
    # AAPL 1000 (Technology), SAP 500 EUR = 500 USD (Software), cash 1000 USD - 500 EUR = 500 USD.
    by_sector = selectors.portfolio_allocation(portfolio=portfolio, by="sector", on=D(2025, 1, 2))
    assert by_sector == {"Technology": Decimal("0.5"), "Software": Decimal("0.25"), "cash": Decimal("0.25")}
    by_ccy = selectors.portfolio_allocation(portfolio=portfolio, by="currency", on=D(2025, 1, 2))
    assert by_ccy == {"USD": Decimal("1")}  # +1000 AAPL +1000 cash USD, +500 SAP -500 cash EUR
    with pytest.raises(ValidationError):
        selectors.portfolio_allocation(portfolio=portfolio, by="colour")


def test_value_series_and_benchmark_index(portfolio, funded, priced):
    bench = InstrumentFactory(symbol="BENCH")
    add_prices(bench, {D(2025, 1, 1): "50", D(2025, 1, 4): "55"})
    portfolio.benchmark = bench
    portfolio.save()
    series, index, bench_index = selectors.portfolio_value_series(portfolio=portfolio, preset="SI", today=D(2025, 1, 4))
    assert series.values[-1] == Decimal(990)
    assert index[-1] == (D(2025, 1, 4), Decimal("0.99"))
    assert bench_index[0] == (D(2025, 1, 1), Decimal(1))
    assert bench_index[-1] == (D(2025, 1, 4), Decimal("1.1"))


def test_dashboard_returns_table_has_every_preset(portfolio, funded):
    dash = selectors.portfolio_dashboard(portfolio=portfolio, today=D(2025, 1, 4))
    assert [r.preset for r in dash.returns] == ["MTD", "QTD", "YTD", "1Y", "3Y", "SI"]
    assert all(r.twr.cumulative == Decimal("-0.01") for r in dash.returns)
    assert set(dash.allocations) == {"asset_class", "sector", "country", "currency"}


def test_summaries_use_a_fixed_number_of_queries(firm, advisor, priced, today):
    def make(n):
        out = []
        for i in range(n):
            p = PortfolioFactory(advisor=advisor, name=f"S{n}-{i}")
            services.transaction_record(
                portfolio=p, today=today, kind="deposit", trade_date=D(2025, 1, 2), amount="1000"
            )
            services.transaction_record(
                portfolio=p,
                today=today,
                kind="buy",
                trade_date=D(2025, 1, 2),
                instrument=priced,
                quantity="10",
                price="100",
            )
            out.append(p)
        return out

    few, many = make(1), make(4)
    with CaptureQueriesContext(connection) as one:
        s1 = selectors.portfolio_summaries(few, today=D(2025, 1, 4))
    with CaptureQueriesContext(connection) as four:
        s4 = selectors.portfolio_summaries(many, today=D(2025, 1, 4))
    assert len(one) == len(four)
    assert s1[few[0].pk].value == Decimal(990)
    assert s4[many[3].pk].since_inception.cumulative == Decimal("-0.01")


# --- firm-wide ---------------------------------------------------------------------------------


@pytest.fixture
def two_books(firm, advisor, advisor2, priced, today):
    mine = PortfolioFactory(advisor=advisor, client=ContactFactory(owner=advisor, first_name="Ada", last_name="L"))
    theirs = PortfolioFactory(advisor=advisor2, client=ContactFactory(owner=advisor2, first_name="Bob", last_name="B"))
    for p, q in ((mine, "10"), (theirs, "5")):
        services.transaction_record(portfolio=p, today=today, kind="deposit", trade_date=D(2025, 1, 2), amount="1000")
        services.transaction_record(
            portfolio=p, today=today, kind="buy", trade_date=D(2025, 1, 2), instrument=priced, quantity=q, price="100"
        )
    return mine, theirs


def test_firm_exposure_for_the_owner_covers_every_book(owner, two_books, priced):
    # 15 AAPL at 99 = 1485; cash 0 + 500 = 500; AUM 1985. Day move 99 / 110 - 1.
    exp = selectors.firm_exposure(user=owner, on=D(2025, 1, 4))
    assert exp.total_value == Decimal(1985)
    assert exp.cash_value == Decimal(500)
    (row,) = exp.by_instrument
    assert row.value == Decimal(1485)
    assert row.clients == ["Ada L", "Bob B"]
    assert exp.by_sector[0].label == "Technology"
    assert exp.movers[0].day_change == Decimal(99) / Decimal(110) - 1
    assert exp.portfolio_count == 2


def test_firm_exposure_of_an_advisor_is_their_book(advisor, two_books):
    exp = selectors.firm_exposure(user=advisor, on=D(2025, 1, 4))
    assert exp.total_value == Decimal(990)
    assert exp.by_instrument[0].clients == ["Ada L"]


def test_firm_exposure_in_another_currency(owner, two_books):
    add_fx("EUR", "USD", {D(2025, 1, 1): "1.25"})
    exp = selectors.firm_exposure(user=owner, currency="EUR", on=D(2025, 1, 4))
    assert exp.total_value == Decimal(1985) / Decimal("1.25")


def test_firm_exposure_names_the_currencies_it_cannot_convert(owner, two_books, sap, today):
    # 1 SAP at 100 EUR, no EUR/USD rate at all: left out of the USD figures, and said so.
    services.transaction_record(
        portfolio=two_books[0],
        today=today,
        kind="buy",
        trade_date=D(2025, 1, 2),
        instrument=sap,
        quantity="1",
        price="100",
        fx_rate="1.1",
    )
    add_prices(sap, {D(2025, 1, 2): "100"})
    exp = selectors.firm_exposure(user=owner, on=D(2025, 1, 4))
    assert exp.missing_rates == ["EUR"]
    assert exp.securities_value == Decimal(1485)
    assert [r.label.split(" ")[0] for r in exp.by_instrument] == ["AAPLT"]


def test_returns_table_read_from_the_index_equals_each_period_linked_day_by_day(portfolio, record, aapl):
    # Two years of moving closes with money in and out: every row of the returns table (read
    # from the since-inception index, decision 1210) equals its period linked day by day, the
    # former computation, to 20 digits, with the same dates and annualisation.
    start = D(2023, 1, 2)
    add_prices(aapl, {start + timedelta(days=i): str(100 + (i * 37) % 23 + i // 10) for i in range(0, 760, 3)})
    record("deposit", start, amount="10000")
    record("buy", start, instrument=aapl, quantity="50", price="100")
    record("deposit", D(2024, 3, 1), amount="5000")
    record("withdrawal", D(2024, 11, 5), amount="2000")
    today = D(2025, 1, 20)
    dash = selectors.portfolio_dashboard(portfolio=portfolio, today=today)
    assert dash.twr_index == analytics.twr_index(dash.performance.series)
    for row in dash.returns:
        expected = analytics.twr_of(_sub_series(dash.performance.series, row.start))
        assert (row.twr.base_date, row.twr.end) == (expected.base_date, expected.end), row.preset
        assert abs(row.twr.cumulative - expected.cumulative) < Decimal("1e-20"), row.preset
        assert (row.twr.annualised is None) == (expected.annualised is None), row.preset
        if expected.annualised is not None:
            assert abs(row.twr.annualised - expected.annualised) < Decimal("1e-20"), row.preset
    assert dash.returns[-1].twr == dash.performance.twr and dash.returns[-1].mwr == dash.performance.mwr
    assert dash.returns[3].twr.cumulative != dash.returns[-1].twr.cumulative  # 1Y is not the whole history


def test_returns_rows_longer_than_the_history_are_marked(portfolio, funded):
    dash = selectors.portfolio_dashboard(portfolio=portfolio, today=D(2025, 1, 4))
    marks = {r.preset: r.clamped for r in dash.returns}
    assert marks == {"MTD": True, "QTD": True, "YTD": True, "1Y": True, "3Y": True, "SI": False}
    later = selectors.portfolio_dashboard(portfolio=portfolio, today=D(2025, 2, 10))
    assert {r.preset: r.clamped for r in later.returns}["MTD"] is False


@pytest.mark.django_db
def test_fx_series_reads_direct_inverse_and_cross_pairs():
    add_fx("EUR", "USD", {D(2025, 1, 1): "1.25", D(2025, 1, 3): "1.60"})
    add_fx("USD", "GBP", {D(2025, 1, 2): "0.80"})
    add_fx("CHF", "EUR", {D(2024, 12, 1): "1.05", D(2025, 1, 2): "1.06"})
    series = selectors.fx_series({"USD", "GBP", "CHF", "EUR"}, base="EUR", since=None, end=D(2025, 1, 3))
    # USD -> EUR: the inverse of EUR/USD, 1 / 1.25 and 1 / 1.6
    assert series["USD"] == [(D(2025, 1, 1), Decimal("0.8")), (D(2025, 1, 3), Decimal("0.625"))]
    # GBP -> EUR through USD on the union of the dates, carried forward:
    # GBP -> USD = 1 / 0.8 = 1.25 (from Jan 2), USD -> EUR = 0.8 then 0.625
    assert series["GBP"] == [(D(2025, 1, 2), Decimal("1.000")), (D(2025, 1, 3), Decimal("0.78125"))]
    assert series["CHF"] == [(D(2024, 12, 1), Decimal("1.05")), (D(2025, 1, 2), Decimal("1.06"))]
    assert "EUR" not in series
    # ``since`` keeps a 14-day margin before it, enough to carry the last rate forward
    recent = selectors.fx_series({"CHF"}, base="EUR", since=D(2025, 1, 3), end=D(2025, 1, 3))
    assert recent["CHF"] == [(D(2025, 1, 2), Decimal("1.06"))]


def test_price_series_are_per_instrument_in_date_order_with_the_close_before_since(priced, sap):
    add_prices(sap, {D(2024, 12, 30): "50", D(2025, 1, 3): "52", D(2025, 1, 2): "51", D(2025, 1, 6): "53"})
    whole = selectors.loading._price_series({priced.pk, sap.pk, None}, since=None, end=D(2025, 1, 3))
    assert whole == {
        priced.pk: [(D(2025, 1, 2), Decimal("100")), (D(2025, 1, 3), Decimal("110"))],
        sap.pk: [(D(2024, 12, 30), Decimal("50")), (D(2025, 1, 2), Decimal("51")), (D(2025, 1, 3), Decimal("52"))],
    }
    # From Jan 3 on: the last close before it (carried forward), then the closes up to the end.
    part = selectors.loading._price_series({priced.pk, sap.pk}, since=D(2025, 1, 3), end=D(2025, 1, 6))
    assert part == {
        priced.pk: [(D(2025, 1, 2), Decimal("100")), (D(2025, 1, 3), Decimal("110")), (D(2025, 1, 4), Decimal("99"))],
        sap.pk: [(D(2025, 1, 2), Decimal("51")), (D(2025, 1, 3), Decimal("52")), (D(2025, 1, 6), Decimal("53"))],
    }
    assert selectors.loading._price_series({None}, since=None, end=D(2025, 1, 6)) == {}
