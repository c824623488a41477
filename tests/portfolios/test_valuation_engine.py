"""The pure part of the valuation store: rows computed from a start date given the state before
it equal the rows of a computation from inception, and figures read back from rows equal those
of ``analytics.performance`` on the worked examples of test_analytics."""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest

from portfolios import analytics as a
from portfolios import valuation_engine as ve
from portfolios.analytics import InstrumentInfo, PortfolioData, Txn

from .test_analytics import D0, D1, D2, D3, THREE_DAY, buy, cash, sell


def _rich() -> PortfolioData:
    """Two instruments on different date grids, a split, transfers, FX moves, income, fees,
    realised gains (the ledger of test_incremental_series_matches_a_from_scratch_valuation_every_day)."""
    start = date(2024, 3, 1)
    days = [start + timedelta(days=k) for k in range(40)]
    return PortfolioData(
        "EUR",
        [
            cash("d1", days[0], "deposit", "10000", ccy="EUR"),
            cash("d2", days[0], "deposit", "5000", ccy="USD", fx="0.92"),
            buy("b1", days[0], 40, "50", fees="3", iid="A", ccy="EUR"),
            buy("b2", days[1], 20, "101", iid="B", ccy="USD", fx="0.92"),
            Txn("sp", days[5], "split", "EUR", "A", quantity=D(2)),
            sell("s1", days[8], 30, "27", fees="2", iid="A", ccy="EUR"),
            Txn("ti", days[9], "transfer_in", "USD", "B", D(5), D(90)),
            cash("div", days[12], "dividend", "11", ccy="USD", fx="0.9", iid="B"),
            cash("tax", days[12], "tax", "2", ccy="USD", fx="0.9"),
            cash("int", days[13], "interest", "4", ccy="EUR"),
            cash("fee", days[14], "fee", "9", ccy="EUR"),
            Txn("to", days[15], "transfer_out", "EUR", "A", D(10)),
            cash("w", days[18], "withdrawal", "700", ccy="EUR"),
            sell("s2", days[30], 10, "104", fees="1", iid="B", ccy="USD", fx="0.91"),
        ],
        instruments={
            "A": InstrumentInfo("A", "A", "EUR", asset_class="equity"),
            "B": InstrumentInfo("B", "B", "USD", asset_class="bond"),
        },
        prices={
            "A": [(d, D(50) + k if k < 5 else (D(50) + k) / 2) for k, d in enumerate(days) if k % 7 < 5],
            "B": [(d, D(100) + D(k) / 4) for k, d in enumerate(days) if k >= 3 and k % 3 == 0],
        },
        fx={"USD": [(d, D("0.92") - D(k) / 1000) for k, d in enumerate(days) if k % 2 == 0]},
    )


def _from_inception(data: PortfolioData, end: date) -> list[ve.DayValuation]:
    return ve.compute_valuations(data, data.inception, end, opening=ve.inception_opening(data.inception))


def _rows(days: list[ve.DayValuation]) -> list[tuple]:
    return [(d.date, d.value, d.net_flows, d.market_day) for d in days]


def test_stored_rows_of_the_three_day_example():
    days = _from_inception(THREE_DAY, D3)
    assert [d.value for d in days] == [D(1000), D(1100), D(1490), D(1589)]
    assert [d.net_flows for d in days] == [D(1000), 0, D(500), 0]
    assert [d.deposits for d in days] == [D(1000), 0, D(500), 0]
    # cash: 1000 - 10 x 100 = 0, then the 500 deposit
    assert [d.cash for d in days] == [0, 0, D(500), D(500)]
    # index: 1 (inception, no capital before), 1.1, 1.1 x 0.9, then x 1589/1490
    assert [d.twr_index for d in days] == [D(1), D("1.1"), D("0.99"), D("0.99") * D(1589) / D(1490)]
    assert days[-1].currencies == (ve.CurrencyClose("USD", D("1089.0"), D(500), D(1)),)


@pytest.mark.parametrize(("start", "end"), [(D0, D3), (D1, D3), (D1, D2), (D2, D3), (D3, D3)])
def test_performance_read_back_from_rows_equals_analytics_on_the_three_day_example(start, end):
    days = _from_inception(THREE_DAY, D3)
    series = ve.series_from_rows(
        [r for r in _rows(days) if start - timedelta(days=1) <= r[0] <= end], start=start, end=end, base_currency="USD"
    )
    summary = ve.summary_of_days(d for d in days if start <= d.date <= end)
    bench = [(D0, D(50)), (D3, D(55))]
    assert ve.performance_of(series, summary, start, end, benchmark_prices=bench) == a.performance(
        THREE_DAY, start, end, benchmark_prices=bench
    )


def test_recomputing_from_any_day_given_the_state_before_equals_recomputing_from_inception():
    data = _rich()
    end = data.inception + timedelta(days=39)
    full = _from_inception(data, end)
    for k in range(1, len(full)):
        opening = ve.Opening(full[k - 1].date, full[k - 1].twr_index)
        tail = ve.compute_valuations(data, full[k].date, end, opening=opening)
        assert tail == full[k:], full[k].date


def test_every_range_read_back_from_rows_equals_analytics_on_a_rich_ledger():
    data = _rich()
    end = data.inception + timedelta(days=39)
    days = _from_inception(data, end)
    rows = _rows(days)
    for start, stop in [(data.inception, end), (data.inception + timedelta(days=7), end), (end, end)]:
        series = ve.series_from_rows(
            [r for r in rows if start - timedelta(days=1) <= r[0] <= stop], start=start, end=stop, base_currency="EUR"
        )
        summary = ve.summary_of_days(d for d in days if start <= d.date <= stop)
        assert ve.performance_of(series, summary, start, stop) == a.performance(data, start, stop)


def test_the_stored_index_gives_the_since_inception_twr():
    data = _rich()
    end = data.inception + timedelta(days=39)
    days = _from_inception(data, end)
    first_capital = next(d.date for d in days if d.value > 0)
    assert ve.return_from_index(first_capital, end, days[-1].twr_index) == a.twr(data, data.inception, end)


def test_the_currency_parts_add_up_to_the_value():
    data = _rich()
    for d in _from_inception(data, data.inception + timedelta(days=39)):
        assert abs(sum((c.value_base for c in d.currencies), D(0)) - d.value) < D("1e-18"), d.date
        assert abs(sum((c.cash_local * c.fx_rate for c in d.currencies), D(0)) - d.cash) < D("1e-18")


def test_a_range_before_inception_is_padded_with_empty_days():
    days = _from_inception(THREE_DAY, D3)
    start = D0 - timedelta(days=3)
    series = ve.series_from_rows(_rows(days), start=start, end=D3, base_currency="USD")
    assert series.values == [0, 0, 0, D(1000), D(1100), D(1490), D(1589)]
    assert series.values == a.value_series(THREE_DAY, start, D3).values


@pytest.mark.parametrize(
    ("rows_filter", "end"),
    [
        (lambda r: r[0] <= D2, D3),  # the last stored day is before the end
        (lambda r: r[0] != D1, D3),  # a gap
        (lambda r: False, D3),  # nothing stored
    ],
)
def test_rows_that_do_not_cover_the_range_give_none(rows_filter, end):
    rows = [r for r in _rows(_from_inception(THREE_DAY, D3)) if rows_filter(r)]
    assert ve.series_from_rows(rows, start=D0, end=end, base_currency="USD") is None


def test_differences_are_reported_to_the_cent():
    days = _from_inception(THREE_DAY, D3)
    stored = [d.row() for d in days]
    assert ve.differences(stored, days) == []
    assert ve.differences([*stored[:2], (stored[2][0], stored[2][1] + D("0.004"), *stored[2][2:])], days[:3]) == []
    tampered = [*stored[:2], (stored[2][0], stored[2][1] + D("0.01"), *stored[2][2:]), stored[3]]
    assert ve.differences(tampered, days) == [f"{D2} value: stored 1490.01, recomputed 1490.00"]
    assert ve.differences(stored[:3], days) == [f"{D3}: missing"]
