"""Tests of the pure analytics module: hand-checked numbers, independent libraries, properties.

Every expected figure is worked out in the comment next to it; pyxirr and numpy-financial are
only used as independent checks of our own XIRR solver.
"""

import dataclasses
import inspect
from datetime import date, timedelta
from decimal import Decimal as D
from decimal import localcontext

import numpy_financial as npf
import pytest
import pyxirr
from hypothesis import given, settings
from hypothesis import strategies as st

from portfolios import analytics as a
from portfolios.analytics import InstrumentInfo, PortfolioData, Txn

D0 = date(2024, 1, 1)  # a Monday
D1, D2, D3, D4 = (D0 + timedelta(days=k) for k in range(1, 5))


def buy(id_, day, qty, price, fees="0", iid="X", ccy="USD", fx="1"):
    return Txn(id_, day, "buy", ccy, iid, D(qty), D(price), D(fees), D(fx))


def sell(id_, day, qty, price, fees="0", iid="X", ccy="USD", fx="1", lots=None):
    return Txn(id_, day, "sell", ccy, iid, D(qty), D(price), D(fees), D(fx), lots=lots)


def cash(id_, day, kind, amount, ccy="USD", fx="1", fees="0", iid=None):
    return Txn(id_, day, kind, ccy, iid, fees=D(fees), fx_rate=D(fx), amount=D(amount))


def close(a_, b, tol="1e-20"):
    return abs(D(a_) - D(b)) <= D(tol)


def test_txn_takes_its_fields_in_order_with_their_defaults_and_stays_frozen():
    # Positional construction (the selectors build Txn from rows) relies on the fields' order.
    params = list(inspect.signature(Txn).parameters.values())
    fields = dataclasses.fields(Txn)
    assert [p.name for p in params] == [f.name for f in fields]
    assert [p.default for p in params] == [
        inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default for f in fields
    ]
    t = Txn(1, D0, "buy", "USD", "X", D(2), D(3), fx_rate=D("1.1"))
    assert t == Txn(
        id=1, date=D0, kind="buy", currency="USD", instrument_id="X", quantity=D(2), price=D(3), fx_rate=D("1.1")
    )
    assert (t.fees, t.amount, t.lots, t.acquired_on) == (D(0), None, None, None)
    assert hash(t) == hash(dataclasses.replace(t))
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.price = D(4)
    with pytest.raises(a.InvalidTransaction, match="quantity must be positive"):
        Txn(2, D0, "buy", "USD", "X")


# ----------------------------------------------------------------------------------------
# Lots
# ----------------------------------------------------------------------------------------

# Lot A: 10 @ 100 + fee 10 -> cost 1010 (101/unit), acquired 2020-01-01
# Lot B: 10 @ 120          -> cost 1200 (120/unit), acquired 2020-06-01
# Lot C: 10 @ 90           -> cost  900 ( 90/unit), acquired 2020-09-01
THREE_LOTS = [
    buy("A", date(2020, 1, 1), 10, 100, fees=10),
    buy("B", date(2020, 6, 1), 10, 120),
    buy("C", date(2020, 9, 1), 10, 90),
]


@pytest.mark.parametrize(
    ("method", "closed_lot", "gain", "term"),
    [
        # sell 10 @ 130 on 2021-03-01: proceeds 1300
        ("fifo", "A", "290", "long"),  # 1300 - 1010, held 425 days
        ("lifo", "C", "400", "short"),  # 1300 -  900, held 181 days
        ("hifo", "B", "100", "short"),  # 1300 - 1200 (highest cost/unit first)
    ],
)
def test_lot_methods_pick_the_right_lot(method, closed_lot, gain, term):
    book = a.build_lots([*THREE_LOTS, sell("S", date(2021, 3, 1), 10, 130)], method=method)
    assert [(r.lot_id, r.quantity, r.gain_base, r.term) for r in book.realised] == [(closed_lot, D(10), D(gain), term)]
    assert sorted(lot.lot_id for lot in book.open_lots) == sorted({"A", "B", "C"} - {closed_lot})


def test_fifo_sell_across_two_lots_splits_proceeds_and_fees_pro_rata():
    txns = [
        cash("dep", date(2020, 1, 1), "deposit", "5000"),
        *THREE_LOTS[:2],
        sell("S", date(2021, 3, 1), 15, 130, fees=15),
    ]
    book = a.build_lots(txns)
    # proceeds 15*130 - 15 = 1935; lot A gets 10/15 = 1290, lot B the remaining 645
    # A: 1290 - 1010 = 280 (425 days: long); B: 645 - 5*120 = 45 (273 days: short)
    assert [(r.lot_id, r.quantity, r.proceeds_base, r.cost_base, r.gain_base, r.term)
            for r in book.realised] == [
        ("A", D(10), D(1290), D(1010), D(280), "long"),
        ("B", D(5), D(645), D(600), D(45), "short"),
    ]  # fmt: skip
    [lot] = book.open_lots
    assert (lot.lot_id, lot.quantity, lot.cost_base, lot.cost_per_unit_base) == ("B", 5, 600, 120)
    # cash: 5000 - 1010 - 1200 + 1935
    assert book.cash == {"USD": D(4725)}


def test_specific_lot_sell_takes_the_named_lots():
    txns = [*THREE_LOTS[:2], sell("S", date(2021, 3, 1), 15, 130, fees=15, lots=(("B", D(10)), ("A", D(5))))]
    book = a.build_lots(txns)
    # B: 1935*10/15 = 1290 - 1200 = 90 short; A: 645 - 1010*5/10 = 645 - 505 = 140 long
    assert [(r.lot_id, r.gain_base, r.term) for r in book.realised] == [
        ("B", D(90), "short"),
        ("A", D(140), "long"),
    ]
    [lot] = book.open_lots
    assert (lot.lot_id, lot.quantity, lot.cost_base) == ("A", D(5), D(505))


def test_sell_more_than_held_is_rejected_with_instrument_and_date():
    txns = [buy("A", D0, 10, 100), sell("S", D1, 11, 100)]
    with pytest.raises(a.InsufficientQuantity, match=r"instrument X on 2024-01-02: only 10 held"):
        a.build_lots(txns)
    data = PortfolioData("USD", txns, prices={"X": [(D0, D(100))]})
    with pytest.raises(a.InsufficientQuantity):  # the valuation pass checks as well
        a.value_series(data, D0, D2)


def test_specific_lot_sell_more_than_the_lot_holds_is_rejected():
    txns = [*THREE_LOTS[:2], sell("S", date(2021, 1, 1), 11, 130, lots=(("A", D(11)),))]
    with pytest.raises(a.InsufficientQuantity, match="in lot A"):
        a.build_lots(txns)


def test_specific_lot_sell_of_unknown_lot_is_rejected():
    txns = [*THREE_LOTS[:1], sell("S", date(2021, 1, 1), 1, 130, lots=(("nope", D(1)),))]
    with pytest.raises(a.UnknownLot, match="nope"):
        a.build_lots(txns)


def test_lot_quantities_must_add_up_to_the_sell_quantity():
    with pytest.raises(a.InvalidTransaction, match="add up"):
        sell("S", D0, 5, 1, lots=(("A", D(4)),))


@pytest.mark.parametrize(
    ("ratio", "qty_after", "cost_per_unit"),
    [
        ("2", "20", "50"),  # 2-for-1: 10 @ 100 becomes 20 @ 50, total cost 1000 unchanged
        ("1.5", "15", D(1000) / D(15)),  # 3-for-2
        ("0.1", "1", "1000"),  # 1-for-10 reverse split
    ],
)
def test_split_scales_quantity_and_keeps_total_cost(ratio, qty_after, cost_per_unit):
    txns = [buy("A", D0, 10, 100), Txn("sp", D1, "split", "USD", "X", quantity=D(ratio))]
    [lot] = a.build_lots(txns).open_lots
    assert lot.quantity == D(qty_after)
    assert lot.cost_base == D(1000)
    assert lot.cost_per_unit_base == D(cost_per_unit)


def test_sell_after_split_uses_split_adjusted_cost():
    txns = [
        buy("A", D0, 10, 100),
        Txn("sp", D1, "split", "USD", "X", quantity=D(2)),
        sell("S", D2, 5, 60),
    ]
    # 5 shares at 50 cost = 250; proceeds 300; gain 50
    [r] = a.build_lots(txns).realised
    assert (r.cost_base, r.proceeds_base, r.gain_base) == (D(250), D(300), D(50))


def test_transfers_move_lots_without_cash_or_realised_gain():
    txns = [
        Txn("ti", D0, "transfer_in", "USD", "X", D(10), D(80), acquired_on=date(2019, 1, 1)),
        buy("B", D1, 10, 100),
        Txn("to", D2, "transfer_out", "USD", "X", D(12)),
        sell("S", D3, 8, 150),
    ]
    book = a.build_lots(txns)
    # transfer out takes FIFO: all 10 of "ti" and 2 of "B"; the sell then takes B's last 8
    assert [(r.lot_id, r.quantity, r.gain_base) for r in book.realised] == [("B", D(8), D(400))]
    assert book.open_lots == []
    # only the buy and the sell touched cash: -1000 + 1200
    assert book.cash == {"USD": D(200)}


def test_transfer_in_keeps_original_acquisition_date_for_the_holding_period():
    txns = [
        Txn("ti", date(2021, 1, 1), "transfer_in", "USD", "X", D(1), D(80), acquired_on=date(2019, 1, 1)),
        sell("S", date(2021, 2, 1), 1, 100),
    ]
    [r] = a.build_lots(txns).realised
    assert (r.acquired, r.term, r.gain_base) == (date(2019, 1, 1), "long", D(20))


@pytest.mark.parametrize(
    ("txn", "effect"),
    [
        (buy("b", D0, 10, 100, fees=5), "-1005"),
        (sell("s", D0, 10, 100, fees=5), "995"),
        (cash("d", D0, "dividend", "30", fees="1"), "29"),
        (cash("i", D0, "interest", "4"), "4"),
        (cash("f", D0, "fee", "12"), "-12"),
        (cash("t", D0, "tax", "7"), "-7"),
        (cash("dep", D0, "deposit", "1000"), "1000"),
        (cash("w", D0, "withdrawal", "400"), "-400"),
        (Txn("sp", D0, "split", "USD", "X", quantity=D(2)), "0"),
        (Txn("ti", D0, "transfer_in", "USD", "X", D(1), D(5)), "0"),
        (Txn("to", D0, "transfer_out", "USD", "X", D(1)), "0"),
        # amount defaults to quantity * price: 100 shares * 0.25 dividend per share
        (Txn("dps", D0, "dividend", "USD", "X", D(100), D("0.25")), "25"),
    ],
)
def test_cash_effect_of_each_kind(txn, effect):
    assert txn.cash_effect == D(effect)
    assert a.cash_balances([txn]) == {"USD": D(effect)}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "gift"},
        {"kind": "buy", "instrument_id": None, "quantity": D(1)},
        {"kind": "buy", "instrument_id": "X", "quantity": D(0)},
        {"kind": "buy", "instrument_id": "X", "quantity": D(-1)},
        {"kind": "transfer_in", "instrument_id": "X", "quantity": D(1), "fees": D(1)},
        {"kind": "deposit", "amount": D(-5)},
        {"kind": "deposit", "amount": D(5), "fx_rate": D(0)},
    ],
)
def test_malformed_transactions_are_rejected(kwargs):
    with pytest.raises(a.InvalidTransaction):
        Txn(id="t", date=D0, currency="USD", **kwargs)


def test_realised_gains_by_year_splits_short_and_long():
    txns = [
        *THREE_LOTS,
        sell("S1", date(2020, 12, 1), 5, 110),  # FIFO lot A: 550 - 505 = 45, 335 days: short
        sell("S2", date(2021, 3, 1), 5, 130),  # lot A rest: 650 - 505 = 145, 425 days: long
        sell("S3", date(2021, 4, 1), 5, 100),  # lot B: 500 - 600 = -100, 304 days: short
    ]
    by_year = a.realised_gains_by_year(a.build_lots(txns).realised)
    assert by_year == {
        2020: a.YearGains(short=D(45), long=D(0)),
        2021: a.YearGains(short=D(-100), long=D(145)),
    }
    assert by_year[2021].total == D(45)


# ----------------------------------------------------------------------------------------
# Valuation and time-weighted return
# ----------------------------------------------------------------------------------------

# Three-day example (USD base, one instrument X):
#   D0 deposit 1000, buy 10 @ 100            -> V0 = 1000
#   D1 close 110                             -> V1 = 1100         r1 = 1100/1000 - 1 = +10 %
#   D2 close 99, deposit 500 at end of day   -> V2 = 990 + 500    r2 = (1490-500)/1100 - 1 = -10 %
#   D3 close 108.9                           -> V3 = 1089 + 500   r3 = 1589/1490 - 1
# TWR(D1..D3) = 1.1 * 0.9 * 1589/1490 - 1 = 1573.11/1490 - 1 = 0.05577852...
THREE_DAY = PortfolioData(
    "USD",
    [
        cash("dep1", D0, "deposit", "1000"),
        buy("b1", D0, 10, 100),
        cash("dep2", D2, "deposit", "500"),
    ],
    prices={"X": [(D0, D(100)), (D1, D(110)), (D2, D(99)), (D3, D("108.9"))]},
)


def test_value_series_of_the_three_day_example():
    s = a.value_series(THREE_DAY, D0, D3)
    assert (s.opening_date, s.opening_value) == (D0 - timedelta(days=1), D(0))
    assert s.dates == [D0, D1, D2, D3]
    assert s.values == [D(1000), D(1100), D(1490), D(1589)]
    assert s.flows == [D(1000), D(0), D(500), D(0)]
    assert a.value_on(THREE_DAY, D2) == D(1490)


@pytest.mark.parametrize(
    ("start", "end", "base_date", "expected"),
    [
        # the deposit on the first day (inception) is skipped: V(D0-1) = 0, chain starts at D0
        (D0, D3, D0, D("1.1") * D("0.9") * D(1589) / D(1490) - 1),
        (D1, D3, D0, D("1.1") * D("0.9") * D(1589) / D(1490) - 1),
        # flow on the last day: r2 = (1490 - 500)/1100 - 1, so 1.1 * 0.9 - 1 = -1 %
        (D1, D2, D0, D("-0.01")),
        # flow on the first day of a range that is not inception: opening value 1100 (D1)
        (D2, D3, D1, D("0.9") * D(1589) / D(1490) - 1),
        (D3, D3, D2, D(1589) / D(1490) - 1),
    ],
)
def test_twr_three_day_example(start, end, base_date, expected):
    r = a.twr(THREE_DAY, start, end)
    assert r.base_date == base_date
    assert r.annualised is None
    assert close(r.cumulative, expected)
    assert r.value == r.cumulative


def test_twr_daily_returns_of_the_three_day_example():
    s = a.value_series(THREE_DAY, D0, D3)
    returns = a.daily_returns(s)
    assert [d for d, _ in returns] == [D1, D2, D3]  # D0 skipped: nothing held the day before
    for (_, got), want in zip(returns, [D("0.1"), D("-0.1"), D(99) / D(1490)], strict=True):
        assert close(got, want, "1e-26")


def test_twr_is_none_without_capital():
    data = PortfolioData("USD", [cash("dep", D3, "deposit", "10")])
    assert a.twr(data, D0, D2) is None
    assert a.mwr(data, D0, D2) is None


def test_zero_value_days_are_skipped_and_the_chain_resumes():
    # D0 deposit 1000, buy 10 @ 100; D1 close 110, sell all, withdraw 1100 -> V1 = 0
    #   r1 = (0 - (-1100))/1000 - 1 = +10 %
    # D2 nothing held: V1 = 0, day skipped
    # D3 deposit 1000 (V2 = 0: skipped), buy 5 @ 108.9 -> cash 455.5, V3 = 1000
    # D4 close 120 -> V4 = 600 + 455.5 = 1055.5, r4 = +5.55 %
    # TWR = 1.1 * 1.0555 - 1 = 0.16105
    data = PortfolioData(
        "USD",
        [
            cash("dep1", D0, "deposit", "1000"),
            buy("b1", D0, 10, 100),
            sell("s1", D1, 10, 110),
            cash("w1", D1, "withdrawal", "1100"),
            cash("dep2", D3, "deposit", "1000"),
            buy("b2", D3, 5, "108.9"),
        ],
        prices={"X": [(D0, D(100)), (D1, D(110)), (D2, D(99)), (D3, D("108.9")), (D4, D(120))]},
    )
    s = a.value_series(data, D0, D4)
    assert s.values == [D(1000), D(0), D(0), D(1000), D("1055.5")]
    assert [d for d, _ in a.daily_returns(s)] == [D1, D4]
    assert a.twr(data, D0, D4).cumulative == D("0.16105")


def test_transfers_are_external_flows_at_market_value():
    # D0 transfer in 10 X (cost 50, market close 100): flow +1000, V0 = 1000
    # D1 close 110; transfer out 5 at end of day: flow -550, V1 = 550
    #   r1 = (550 + 550)/1000 - 1 = 10 %
    data = PortfolioData(
        "USD",
        [
            Txn("ti", D0, "transfer_in", "USD", "X", D(10), D(50)),
            Txn("to", D1, "transfer_out", "USD", "X", D(5)),
        ],
        prices={"X": [(D0, D(100)), (D1, D(110))]},
    )
    s = a.value_series(data, D0, D1)
    assert s.flows == [D(1000), D(-550)]
    assert s.values == [D(1000), D(550)]
    assert a.twr(data, D0, D1).cumulative == D("0.1")


def test_trade_price_values_a_position_until_the_first_market_price():
    # bought at 100 on D0, first close only on D2 (105): D0 and D1 are valued at 100
    data = PortfolioData(
        "USD",
        [cash("dep", D0, "deposit", "1000"), buy("b", D0, 10, 100)],
        prices={"X": [(D2, D(105))]},
    )
    assert a.value_series(data, D0, D3).values == [D(1000), D(1000), D(1050), D(1050)]
    assert a.holdings_on(data, D1).holdings[0].price == D(100)


# Multi-currency example, base EUR:
#   D0 deposit 1000 USD (txn rate 0.9), buy 10 US @ 100 USD; deposit 500 EUR;
#      deposit 100 GBP at txn rate 1.15 (no GBP series: the transaction rate is used)
#   USD rates: D0 0.9, D1 0.8; US closes: D0 100, D1 110 (nothing on D2: carried forward)
#   V0 = 10*100*0.9 + 500 + 100*1.15 = 900 + 500 + 115 = 1515
#   V1 = 10*110*0.8 + 500 + 115       = 880 + 615      = 1495 (= V2)
FX_DATA = PortfolioData(
    "EUR",
    [
        cash("dusd", D0, "deposit", "1000", ccy="USD", fx="0.9"),
        buy("b", D0, 10, 100, iid="US", ccy="USD", fx="0.9"),
        cash("deur", D0, "deposit", "500", ccy="EUR"),
        cash("dgbp", D0, "deposit", "100", ccy="GBP", fx="1.15"),
    ],
    instruments={
        "US": InstrumentInfo("US", "ACME", "USD", asset_class="equity", sector="tech", country="US"),
    },
    prices={"US": [(D0, D(100)), (D1, D(110))]},
    fx={"USD": [(D0, D("0.9")), (D1, D("0.8"))]},
)


def test_multi_currency_valuation_converts_at_the_days_rate():
    s = a.value_series(FX_DATA, D0, D2)
    assert s.values == [D(1515), D(1495), D(1495)]
    # deposits converted at the day's rate: 1000*0.9 + 500 + 100*1.15
    assert s.flows == [D(1515), D(0), D(0)]
    assert a.twr(FX_DATA, D1, D2).cumulative == D(1495) / D(1515) - 1


def test_holdings_on_agrees_with_the_value_series():
    snap = a.holdings_on(FX_DATA, D2)
    [h] = snap.holdings
    assert (h.quantity, h.price, h.fx_rate) == (D(10), D(110), D("0.8"))
    assert (h.market_value_local, h.market_value_base) == (D(1100), D(880))
    # cost 1000 USD at the historic 0.9 = 900 EUR; the fall of the dollar shows in the gain
    assert (h.cost_local, h.cost_base, h.unrealised_gain_base) == (D(1000), D(900), D(-20))
    assert [(lot.lot_id, lot.unrealised_gain_base) for lot in h.lots] == [("b", D(-20))]
    assert snap.cash == {"EUR": D(500), "GBP": D(100)}  # USD cash is exactly spent
    assert snap.cash_base == {"EUR": D(500), "GBP": D(115)}
    assert snap.total_value == a.value_on(FX_DATA, D2) == D(1495)


def test_foreign_cash_without_any_rate_is_an_error():
    data = PortfolioData(
        "EUR",
        [cash("d", D0, "deposit", "100", ccy="USD", fx="0.9")],
        instruments={"US": InstrumentInfo("US", "ACME", "CHF")},
        prices={"US": [(D0, D(1))]},
    )
    assert a.value_on(data, D0) == D(90)  # the deposit's own rate
    bad = PortfolioData(
        "EUR",
        [*data.txns, buy("b", D0, 1, 1, iid="US", ccy="USD", fx="0.9")],
        instruments=data.instruments,
        prices=data.prices,
    )
    with pytest.raises(a.MissingFxRate, match="CHF"):  # US is quoted in CHF: no rate known
        a.value_on(bad, D0)


# Instruments quoted on the same days are valued column by column (one group per currency);
# transactions on them in the range read the close of their day. Base USD, EUR at 1.1.
# X (id 1, USD) and Y (id 2, EUR) quoted D0..D4, Z (id 3, USD) only from D2 (off the grid).
#   D0 deposit 10000, buy 10 X @ 100          X 10*100=1000, cash 9000            -> 10000
#   D1 transfer in 5 Y (flow 5*52*1.1 = 286)  X 10*110=1100, Y 286, cash 9000     -> 10386
#   D2 transfer out 4 X (flow -4*120 = -480)  X 6*120=720, Y 5*54*1.1=297         -> 10017
#   D3 split X 2:1, buy 1 Z @ 20              X 12*130=1560, Y 308, Z 22, cash 8980 -> 10870
#   D4                                        X 12*140=1680, Y 319, Z 23, cash 8980 -> 11002
GRID_TXNS = [
    cash(1, D0, "deposit", "10000"),
    buy(2, D0, 10, 100, iid=1),
    Txn(3, D1, "transfer_in", "EUR", 2, D(5), D(50), fx_rate=D("1.1")),
    Txn(4, D2, "transfer_out", "USD", 1, D(4), D(0)),
    Txn(5, D3, "split", "USD", 1, D(2)),
    buy(6, D3, 1, 20, iid=3),
]
GRID_CLOSES = {
    1: [(D0 + timedelta(days=k), D(100 + 10 * k)) for k in range(5)],
    2: [(D0 + timedelta(days=k), D(50 + 2 * k)) for k in range(5)],
    3: [(D2, D(21)), (D3, D(22)), (D4, D(23))],
}


@pytest.mark.parametrize("columns", [False, True], ids=["pairs", "dated-values"])
def test_instruments_on_one_date_grid_are_valued_with_the_close_of_each_transaction_day(columns):
    prices = {
        iid: a.DatedValues([d for d, _ in s], [px for _, px in s]) if columns else s for iid, s in GRID_CLOSES.items()
    }
    data = PortfolioData(
        "USD",
        GRID_TXNS,
        instruments={
            1: InstrumentInfo(1, "X", "USD"),
            2: InstrumentInfo(2, "Y", "EUR"),
            3: InstrumentInfo(3, "Z", "USD"),
        },
        prices=prices,
        fx={"EUR": [(D0, D("1.1"))]},
    )
    series = a.value_series(data, D0, D4)
    assert series.values == [D(10000), D(10386), D(10017), D(10870), D(11002)]
    assert series.flows == [D(10000), D(286), D(-480), D(0), D(0)]
    assert a.value_on(data, D2) == D(10017)


def test_dated_values_read_as_a_list_of_pairs():
    pairs = [(D0, D("1.5")), (D2, D("2.5")), (D4, D("3.5"))]
    dv = a.DatedValues([d for d, _ in pairs], [v for _, v in pairs])
    assert dv == pairs
    assert pairs == dv
    assert list(dv) == pairs
    assert len(dv) == 3
    assert dv[1] == (D2, D("2.5"))
    assert dv[1:] == pairs[1:]
    assert dv != pairs[:2]
    # carry forward: the last value on or before the day, None before the first
    assert [a.price_on(dv, d) for d in (D0 - timedelta(days=1), D1, D2, D4 + timedelta(days=9))] == [
        None,
        D("1.5"),
        D("2.5"),
        D("3.5"),
    ]
    with pytest.raises(ValueError, match="differ in length"):
        a.DatedValues([D0], [])


# ----------------------------------------------------------------------------------------
# Allocation
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        # total 1495: equity 880, cash 500 + 115
        ("asset_class", {"equity": D(880) / D(1495), "cash": D(615) / D(1495)}),
        ("sector", {"tech": D(880) / D(1495), "cash": D(615) / D(1495)}),
        ("country", {"US": D(880) / D(1495), "cash": D(615) / D(1495)}),
        ("currency", {"USD": D(880) / D(1495), "EUR": D(500) / D(1495), "GBP": D(115) / D(1495)}),
    ],
)
def test_allocation_weights(by, expected):
    weights = a.allocation(FX_DATA, D1, by=by)
    assert weights.keys() == expected.keys()
    for k, w in expected.items():
        assert close(weights[k], w, "1e-26")
    assert sum(weights.values()) == 1


def test_allocation_in_thirds_still_sums_to_exactly_one():
    data = PortfolioData(
        "USD",
        [cash("d", D0, "deposit", "300"), buy("b1", D0, 1, 100, iid="A"), buy("b2", D0, 1, 100, iid="B")],
        instruments={
            "A": InstrumentInfo("A", "A", "USD", asset_class="equity"),
            "B": InstrumentInfo("B", "B", "USD", asset_class=None),
        },
    )
    weights = a.allocation(data, D0)
    assert set(weights) == {"equity", "unclassified", "cash"}
    assert all(close(w, D(1) / D(3), "1e-26") for w in weights.values())
    assert sum(weights.values()) == 1
    with pytest.raises(ValueError, match="dimension"):
        a.allocation(data, D0, by="colour")


def test_allocation_of_an_empty_portfolio_is_empty():
    assert a.allocation(PortfolioData("USD", []), D0) == {}


# ----------------------------------------------------------------------------------------
# XIRR and money-weighted return
# ----------------------------------------------------------------------------------------

XIRR_CASES = {
    # Microsoft's XIRR documentation example: 0.373362535
    "excel_doc": [
        (date(2008, 1, 1), -10000),
        (date(2008, 3, 1), 2750),
        (date(2008, 10, 30), 4250),
        (date(2009, 2, 15), 3250),
        (date(2009, 4, 1), 2750),
    ],
    "loss": [(date(2020, 1, 1), -1000), (date(2021, 1, 1), 500), (date(2022, 1, 1), 300)],
    "huge_short": [(date(2020, 1, 1), -100), (date(2020, 1, 31), 1000)],
    "near_total_loss": [(date(2020, 1, 1), -1000), (date(2023, 6, 1), 1)],
    "irregular": [
        (date(2015, 3, 3), -2500),
        (date(2015, 11, 20), -1000),
        (date(2016, 7, 1), 400),
        (date(2018, 2, 14), -300),
        (date(2019, 12, 31), 5200),
    ],
    "same_day_netting": [
        (date(2020, 1, 1), -600),
        (date(2020, 1, 1), -400),
        (date(2020, 7, 1), 100),
        (date(2021, 1, 1), 1000),
    ],
}


def _discounted_terms(flows, rate):
    """a_i * (1 + rate) ** -((d_i - d_0) / 365) in 50-digit arithmetic."""
    with localcontext() as ctx:
        ctx.prec = 50
        d0 = min(d for d, _ in flows)
        growth = 1 + D(rate)
        return [D(amt) * growth ** (-D((d - d0).days) / 365) for d, amt in flows]


def _npv_50_digits(flows, rate):
    with localcontext() as ctx:
        ctx.prec = 50
        return sum(_discounted_terms(flows, rate))


@pytest.mark.parametrize("name", XIRR_CASES)
def test_xirr_matches_pyxirr(name):
    flows = XIRR_CASES[name]
    ours = a.xirr(flows)
    theirs = pyxirr.xirr([d for d, _ in flows], [amt for _, amt in flows])
    assert isinstance(ours, D)
    # pyxirr stops at about 1e-9 on the rate; ours goes to the last bits, so we also check
    # that our root is at least as good as pyxirr's in 50-digit arithmetic
    assert float(ours) == pytest.approx(theirs, rel=1e-8, abs=1e-10)
    assert abs(_npv_50_digits(flows, ours)) <= abs(_npv_50_digits(flows, theirs)) + D("1e-9")


def test_xirr_of_the_excel_example_by_hand():
    # Excel's documentation shows 0.373362535 (9 digits)
    assert float(a.xirr(XIRR_CASES["excel_doc"])) == pytest.approx(0.373362535, abs=5e-9)


@pytest.mark.parametrize(
    ("flows", "expected"),
    [
        # doubling in one day: (1 + r) ** (1/365) = 2, r = 2 ** 365 - 1 (about 7.5e109)
        ([(D0, -1), (D1, 2)], 2.0**365 - 1),
        # x7 in one day: 7 ** 365 - 1 is about 3.4e308, beyond the largest float
        ([(D0, -1), (D1, 7)], D(7) ** 365 - 1),
        # a 99.9 % loss in 10 years: (1 + r) ** (3653/365) = 0.001
        ([(date(2000, 1, 1), -1000), (date(2010, 1, 1), 1)], 0.001 ** (365 / 3653) - 1),
        # nothing gained: 0 %
        ([(D0, -500), (D0 + timedelta(days=700), 500)], 0.0),
    ],
)
def test_xirr_extreme_rates(flows, expected):
    rate = a.xirr(flows)
    assert abs(rate - D(expected)) <= D("1e-12") * max(abs(D(expected)), D(1)) + D("1e-15")


@pytest.mark.parametrize(
    "amounts",
    [
        [-1000, 300, 400, 500],
        [-500, 100, 100, 100, 100, 100, 50],
        [-100, 0, 0, 150],
        [-1000, 2000, -900],  # two sign changes: roots at 0 % ... and the one found near 10 %
        [1000, -200, -300, -700],  # borrower's view: same equation, opposite signs
    ],
)
def test_xirr_matches_numpy_financial_irr_on_periodic_flows(amounts):
    # dates exactly 365 days apart make every exponent an integer: XIRR == periodic IRR
    flows = [(date(2001, 1, 1) + timedelta(days=365 * k), amt) for k, amt in enumerate(amounts)]
    expected = npf.irr(amounts)
    assert float(a.xirr(flows, guess=float(expected) + 0.01)) == pytest.approx(expected, abs=1e-9)


def test_xirr_needs_both_signs():
    with pytest.raises(a.XirrNoSolution):
        a.xirr([(D0, 100), (D1, 50)])
    with pytest.raises(a.XirrNoSolution):
        a.xirr([(D0, -100), (D0, 100), (D1, 0)])  # nets to nothing


@settings(max_examples=300, deadline=None)
@given(
    first=st.integers(min_value=1, max_value=10**7),
    middle=st.lists(
        st.tuples(st.integers(min_value=1, max_value=800), st.integers(-(10**6), 10**6)),
        max_size=8,
    ),
    last_gap=st.integers(min_value=1, max_value=3000),
    last=st.integers(min_value=1, max_value=10**7),
)
def test_xirr_npv_at_the_solution_is_zero(first, middle, last_gap, last):
    # first flow negative, last positive: a root always exists in (-100 %, inf)
    day = date(2000, 1, 1)
    flows = [(day, -first)]
    for gap, amount in middle:
        day += timedelta(days=gap)
        flows.append((day, amount))
    flows.append((day + timedelta(days=last_gap), last))
    rate = a.xirr(flows)
    assert rate >= -1
    if rate < -1 + D("1e-9"):
        # e.g. pay 1 and 2, get 1 back 23 days later: r = -1 + 1e-116, -1 to 28 digits
        return
    # judged against the size of the discounted terms that cancel (near -100 % they are huge)
    terms = _discounted_terms(flows, rate)
    assert abs(sum(terms)) <= D("1e-12") * sum(abs(t) for t in terms)


def test_mwr_equals_twr_without_intermediate_flows_and_annualises_over_a_year():
    # 1000 invested at the close of 2020-01-01, worth 1210 on 2022-01-01 (731 days later):
    # cumulative 21 %; annualised 1.21 ** (365/731) - 1 for both measures
    start, end = date(2020, 1, 2), date(2022, 1, 1)
    data = PortfolioData(
        "USD",
        [cash("d", date(2020, 1, 1), "deposit", "1000"), buy("b", date(2020, 1, 1), 10, 100)],
        prices={"X": [(date(2020, 1, 1), D(100)), (end, D(121))]},
    )
    expected_annual = 1.21 ** (365 / 731) - 1
    t, m = a.twr(data, start, end), a.mwr(data, start, end)
    assert t.base_date == m.base_date == date(2020, 1, 1)
    assert close(t.cumulative, "0.21") and close(m.cumulative, "0.21", "1e-12")
    assert float(t.annualised) == pytest.approx(expected_annual, rel=1e-12)
    assert float(m.annualised) == pytest.approx(expected_annual, rel=1e-12)
    assert m.value == m.annualised


def test_mwr_of_the_three_day_example_against_pyxirr():
    # portfolio's view: opening 1000 in at D0, 500 in at D2, 1589 out at D3
    m = a.mwr(THREE_DAY, D1, D3)
    assert (m.base_date, m.annualised) == (D0, None)
    dates, amounts = [D0, D2, D3], [1000, 500, -1589]
    annual = pyxirr.xirr(dates, amounts)
    # a period rate over 3 days: (1 + annual XIRR) ** (3/365) - 1
    assert float(m.cumulative) == pytest.approx((1 + annual) ** (3 / 365) - 1, rel=1e-9)
    # and it differs from the TWR because the 500 arrived just before a good day
    assert float(m.cumulative) != pytest.approx(float(a.twr(THREE_DAY, D1, D3).cumulative))
    # hand check of the defining equation in the period's own time unit (3 days)
    r = float(m.cumulative)
    assert 1000 + 500 * (1 + r) ** (-2 / 3) - 1589 * (1 + r) ** -1 == pytest.approx(0, abs=1e-7)


@pytest.mark.parametrize(
    ("base", "end", "annualised"),
    [
        (date(2023, 1, 1), date(2024, 1, 1), False),  # 365 days
        (date(2023, 3, 1), date(2024, 3, 1), False),  # 366 days but exactly one year: not annualised
        (date(2023, 3, 1), date(2024, 3, 2), True),
        (date(2020, 1, 1), date(2023, 1, 1), True),
    ],
)
def test_annualisation_only_beyond_one_calendar_year(base, end, annualised):
    prices = [(base, D(100)), (end, D(150))]
    r = a.benchmark_return(prices, base + timedelta(days=1), end)
    assert r.cumulative == D("0.5")
    assert (r.annualised is not None) is annualised
    if annualised:
        days = (end - base).days
        assert float(r.annualised) == pytest.approx(1.5 ** (365 / days) - 1, rel=1e-12)


def test_benchmark_return_uses_the_close_before_start_and_carries_forward():
    prices = [(D0, D(100)), (D2, D(110))]
    r = a.benchmark_return(prices, D1, D3)  # base: close of D0 (100); end: D2 carried to D3
    assert (r.base_date, r.cumulative) == (D0, D("0.1"))
    late = a.benchmark_return(prices, D0, D3)  # no close before D0: starts at the first close
    assert (late.base_date, late.cumulative) == (D0, D("0.1"))
    assert a.benchmark_return(prices, D3, D4) == a.PeriodReturn(D2, D4, D(0), None)
    assert a.benchmark_return([], D0, D1) is None


@pytest.mark.parametrize(
    ("preset", "today", "inception", "start"),
    [
        ("MTD", date(2024, 5, 15), date(2020, 3, 10), date(2024, 5, 1)),
        ("QTD", date(2024, 5, 15), date(2020, 3, 10), date(2024, 4, 1)),
        ("QTD", date(2024, 12, 31), date(2020, 3, 10), date(2024, 10, 1)),
        ("YTD", date(2024, 5, 15), date(2020, 3, 10), date(2024, 1, 1)),
        ("1Y", date(2024, 5, 15), date(2020, 3, 10), date(2023, 5, 16)),
        ("1Y", date(2024, 2, 29), date(2020, 3, 10), date(2023, 3, 1)),
        ("3Y", date(2024, 5, 15), date(2020, 3, 10), date(2021, 5, 16)),
        ("3Y", date(2024, 5, 15), date(2023, 1, 1), date(2023, 1, 1)),  # clamped to inception
        ("si", date(2024, 5, 15), date(2020, 3, 10), date(2020, 3, 10)),
    ],
)
def test_preset_ranges(preset, today, inception, start):
    assert a.preset_range(preset, today, inception) == (start, today)


def test_unknown_preset_is_rejected():
    with pytest.raises(ValueError, match="preset"):
        a.preset_range("5Y", D0, D0)


# ----------------------------------------------------------------------------------------
# Risk
# ----------------------------------------------------------------------------------------


def _days(levels):
    return [(D0 + timedelta(days=k), D(v)) for k, v in enumerate(levels)]


@pytest.mark.parametrize(
    ("levels", "depth", "peak", "trough", "recovery"),
    [
        # 120 -> 90 is -25 %, back above 120 on day 4; the later 130 -> 117 (-10 %) is smaller
        ([100, 120, 90, 110, 130, 117], "0.25", 1, 2, 4),
        # a deeper second fall replaces the first and has not recovered
        ([100, 90, 100, 50, 60], "0.5", 2, 3, None),
        ([100, 101, 102], "0", 0, 0, None),
        ([100, 80, 100], "0.2", 0, 1, 2),  # recovery when exactly back at the peak
    ],
)
def test_max_drawdown_examples(levels, depth, peak, trough, recovery):
    dd = a.max_drawdown(_days(levels))
    assert dd.depth == D(depth)
    assert dd.peak_date == D0 + timedelta(days=peak)
    assert dd.trough_date == D0 + timedelta(days=trough)
    assert dd.recovery_date == (None if recovery is None else D0 + timedelta(days=recovery))


def test_max_drawdown_of_nothing_is_none():
    assert a.max_drawdown([]) is None


def test_withdrawal_is_not_a_drawdown():
    # price flat at 100; half of the money is withdrawn on D1: value halves, the index does not
    data = PortfolioData(
        "USD",
        [
            cash("d", D0, "deposit", "2000"),
            buy("b", D0, 20, 100),
            sell("s", D1, 10, 100),
            cash("w", D1, "withdrawal", "1000"),
        ],
        prices={"X": [(D0, D(100)), (D1, D(100)), (D2, D(100))]},
    )
    perf = a.performance(data, D0, D2)
    assert perf.series.values == [D(2000), D(1000), D(1000)]
    assert perf.max_drawdown.depth == 0
    assert a.max_drawdown(perf.series.points()).depth == D("0.5")  # what raw values would say


def test_volatility_hand_example():
    # mean 0.005; squared deviations 25e-6 + 225e-6 + 225e-6 + 25e-6 = 500e-6; / (4 - 1)
    # annualised: sqrt(500e-6 / 3 * 252) = sqrt(0.042) = 0.20493901531919...
    vol = a.annualised_volatility([D("0.01"), D("-0.01"), D("0.02"), D("0")])
    assert close(vol, D("0.042").sqrt(), "1e-25")
    assert a.annualised_volatility([D("0.01")]) is None
    assert a.annualised_volatility([D("0.01"), D("0.01")]) == 0


def test_volatility_uses_trading_days_only():
    # closes Fri 100, Mon 110 (weekend carried forward), Tue 99
    fri = date(2024, 1, 5)
    sat, sun, mon, tue = (fri + timedelta(days=k) for k in range(1, 5))
    data = PortfolioData(
        "USD",
        [cash("d", fri, "deposit", "1000"), buy("b", fri, 10, 100)],
        prices={"X": [(fri, D(100)), (mon, D(110)), (tue, D(99))]},
    )
    s = a.value_series(data, sat, tue)
    assert s.market_days == [False, False, True, True]
    assert a.trading_day_returns(s) == [D("0.1"), D("-0.1")]  # not [0, 0, 0.1, -0.1]
    perf = a.performance(data, sat, tue)
    assert close(perf.volatility, a.annualised_volatility([D("0.1"), D("-0.1")]))


# ----------------------------------------------------------------------------------------
# Period summary and the one-call performance
# ----------------------------------------------------------------------------------------


def test_period_summary_totals_in_base_currency():
    data = PortfolioData(
        "EUR",
        [
            cash("d", D0, "deposit", "10000", ccy="EUR"),
            buy("b", D0, 10, 100, fees="5", iid="US", ccy="USD", fx="0.9"),
            cash("div", D1, "dividend", "20", ccy="USD", fx="0.9", iid="US"),
            cash("tax", D1, "tax", "3", ccy="USD", fx="0.9"),
            cash("int", D2, "interest", "7", ccy="EUR"),
            cash("fee", D2, "fee", "12", ccy="EUR"),
            sell("s", D3, 5, 120, fees="5", iid="US", ccy="USD", fx="0.8"),
            cash("w", D4, "withdrawal", "50", ccy="EUR"),
        ],
        fx={"USD": [(D0, D("0.9"))]},
    )
    s = a.period_summary(data, D0, D3)
    # realised: proceeds (600 - 5) * 0.8 = 476; cost (1005 / 2) * 0.9 = 452.25; gain 23.75
    assert (s.realised_gain, s.realised_short, s.realised_long) == (D("23.75"), D("23.75"), 0)
    assert (s.dividends, s.interest, s.income) == (D(18), D(7), D(25))  # 20 USD * 0.9
    assert s.fees == D("4.5") + D(12) + D(4)  # buy 5*0.9, fee 12, sell 5*0.8
    assert s.taxes == D("2.7")
    assert (s.deposits, s.withdrawals) == (D(10000), 0)  # withdrawal on D4 is outside
    assert a.period_summary(data, D4, D4).withdrawals == D(50)


def test_performance_bundles_consistent_figures():
    perf = a.performance(THREE_DAY, D1, D3, benchmark_prices=[(D0, D(50)), (D3, D(55))])
    assert perf.twr == a.twr(THREE_DAY, D1, D3)
    assert perf.mwr == a.mwr(THREE_DAY, D1, D3)
    assert perf.benchmark.cumulative == D("0.1")
    assert (perf.start_value, perf.end_value, perf.net_flows) == (D(1000), D(1589), D(500))
    # TWR index 1, 1.1, 0.99, ...: the fall from 1.1 to 0.99 is the max drawdown (10 %)
    assert perf.max_drawdown.depth == D("0.1")
    assert (perf.max_drawdown.peak_date, perf.max_drawdown.trough_date) == (D1, D2)


def test_incremental_series_matches_a_from_scratch_valuation_every_day():
    # Two instruments on different date grids (one of them only twice a week, one with a
    # gap before its first close), a split, a transfer, FX moves: the one-pass series must
    # equal holdings_on(), which rebuilds every lot from the ledger, on each day.
    start = date(2024, 3, 1)
    days = [start + timedelta(days=k) for k in range(21)]
    data = PortfolioData(
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
            Txn("to", days[15], "transfer_out", "EUR", "A", D(10)),
            cash("w", days[18], "withdrawal", "700", ccy="EUR"),
        ],
        instruments={
            "A": InstrumentInfo("A", "A", "EUR", asset_class="equity"),
            "B": InstrumentInfo("B", "B", "USD", asset_class="bond"),
            "Z": InstrumentInfo("Z", "Z", "USD"),  # priced but never traded: ignored
        },
        prices={
            "A": [(d, D(50) + k if k < 5 else (D(50) + k) / 2) for k, d in enumerate(days) if k % 7 < 5],
            "B": [(d, D(100) + D(k) / 4) for k, d in enumerate(days) if k >= 3 and k % 3 == 0],
            "Z": [(d, D(1)) for d in days],
        },
        fx={"USD": [(d, D("0.92") - D(k) / 1000) for k, d in enumerate(days) if k % 2 == 0]},
    )
    series = a.value_series(data, days[0], days[-1])
    for day, value in zip(series.dates, series.values, strict=True):
        assert value == a.holdings_on(data, day).total_value, day
    assert a.value_on(data, days[10]) == series.values[10]
    # the never-traded instrument Z changes nothing
    without_z = PortfolioData(
        "EUR", data.txns, data.instruments, {k: v for k, v in data.prices.items() if k != "Z"}, data.fx
    )
    assert a.value_series(without_z, days[0], days[-1]).values == series.values


def test_split_before_the_first_market_price_halves_the_trade_price():
    # bought 10 @ 100 on D0, 2-for-1 on D1, first close (52) only on D3:
    # D1 and D2 are 20 shares at the split-adjusted trade price 50 = 1000, not 2000.
    # Cash is -1000 (no deposit), so the values are 1000-1000, 1000-1000, 1000-1000, 1040-1000
    data = PortfolioData(
        "USD",
        [buy("b", D0, 10, 100), Txn("sp", D1, "split", "USD", "X", quantity=D(2))],
        prices={"X": [(D3, D(52))]},
    )
    assert a.value_series(data, D0, D3).values == [0, 0, 0, D(40)]
    assert a.holdings_on(data, D2).holdings[0].price == D(50)
