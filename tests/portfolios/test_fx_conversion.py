"""Currency conversion, trades settled from another currency's cash, the negative-cash rule, and
price vs currency return per holding (docs/analytics.md, "Currencies"): a worked example."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError

from portfolios import analytics as a
from portfolios import valuation_engine as ve
from portfolios.analytics import InstrumentInfo, PortfolioData, Txn
from portfolios.models import CashBalance, LedgerSettings, NegativeCash

from .factories import InstrumentFactory

DAY1, DAY2 = date(2025, 3, 3), date(2025, 3, 4)


def conversion(id_, day, sell_ccy, amount, buy_ccy, bought, fees="0", fx="1"):
    return Txn(
        id_, day, "conversion", sell_ccy, amount=D(amount), fees=D(fees), fx_rate=D(fx),
        counter_currency=buy_ccy, counter_amount=D(bought),
    )  # fmt: skip


# The worked example of docs/analytics.md. Base USD. Day 1: deposit 1,005 USD; convert 1,000 USD
# into 800 CHF (1 CHF = 1.25 USD) for a 5 USD fee; buy 10 CHFX at 80 CHF. Day 2: CHFX closes at 88
# (+10 % in CHF) and the franc at 1.30 USD (+4 %).
WORKED = PortfolioData(
    "USD",
    [
        Txn("d", DAY1, "deposit", "USD", amount=D(1005)),
        conversion("c", DAY1, "USD", "1000", "CHF", "800", fees="5"),
        Txn("b", DAY1, "buy", "CHF", "CHFX", D(10), D(80), fx_rate=D("1.25")),
    ],
    instruments={"CHFX": InstrumentInfo("CHFX", "CHFX", "CHF")},
    prices={"CHFX": [(DAY1, D(80)), (DAY2, D(88))]},
    fx={"CHF": [(DAY1, D("1.25")), (DAY2, D("1.30"))]},
)


def test_a_conversion_moves_cash_between_currencies_and_is_no_flow():
    assert a.cash_balances(WORKED.txns) == {"USD": D(0), "CHF": D(0)}
    days = ve.compute_valuations(WORKED, DAY1, DAY2, opening=ve.inception_opening(DAY1))
    assert [(d.date, d.value, d.net_flows) for d in days] == [(DAY1, D(1000), D(1005)), (DAY2, D(1144), D(0))]
    # day 1 lost the 5 USD fee on 1,005 in; day 2: 1.10 x 1.04 - 1 = 14.4 %
    assert days[1].twr_index / days[0].twr_index - 1 == D("0.144")


def test_worked_example_splits_the_gain_into_price_and_currency():
    split = a.return_split(cost_local=D(800), cost_base=D(1000), value_local=D(880), fx_now=D("1.30"))
    assert split.price_effect == D(100)  # (880 - 800) CHF at the 1.25 paid
    assert split.currency_effect == D(44)  # 880 CHF x (1.30 - 1.25)
    assert split.price_effect + split.currency_effect == D(1144) - D(1000)
    assert (split.price_return, split.currency_return) == (D("0.1"), D("0.04"))
    snap = a.holdings_on(WORKED, DAY2)
    (holding,) = snap.holdings
    assert (holding.cost_local, holding.cost_base, holding.market_value_local, holding.fx_rate) == (
        D(800), D(1000), D(880), D("1.30"),
    )  # fmt: skip


def test_a_buy_settled_from_usd_leaves_chf_cash_alone():
    # The case: a USD deposit, then a CHF-priced buy paid with USD.
    txns = [
        Txn("d", DAY1, "deposit", "USD", amount=D(1000)),
        Txn("b", DAY1, "buy", "CHF", "CHFX", D(10), D(80), fx_rate=D("1.25"), counter_currency="USD",
            counter_amount=D(1000)),
    ]  # fmt: skip
    assert a.cash_balances(txns) == {"USD": D(0)}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"counter_currency": "USD", "counter_amount": D(1)}, "buys another currency"),
        ({"counter_currency": "CHF", "counter_amount": None}, "needs both amounts"),
    ],
)
def test_a_malformed_conversion_is_refused(fields, message):
    with pytest.raises(a.InvalidTransaction, match=message):
        Txn("c", DAY1, "conversion", "USD", amount=D(10), **fields)


# --- the ledger service, the firm's rule and the page -----------------------------------------------
@pytest.fixture
def chfx(firm):
    return InstrumentFactory(symbol="CHFX", currency="CHF")


def test_conversion_recorded_through_the_service_updates_cash(record, portfolio, chfx):
    record("deposit", DAY1, amount="1005")
    record("conversion", DAY1, currency="USD", amount="1000", fees="5", counter_currency="chf", counter_amount="800")
    record("buy", DAY1, instrument=chfx, quantity="10", price="80", fx_rate="1.25")
    assert dict(CashBalance.objects.filter(portfolio=portfolio).values_list("currency", "amount")) == {}


def test_conversion_names_the_bad_field(record):
    with pytest.raises(ValidationError) as info:
        record("conversion", DAY1, currency="USD", amount="100", counter_currency="USD", counter_amount="90")
    assert "counter_currency" in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        record("conversion", DAY1, currency="USD", amount="100", counter_currency="CHF")
    assert "counter_amount" in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        record("deposit", DAY1, amount="100", counter_currency="CHF", counter_amount="90")
    assert "counter_currency" in info.value.message_dict


def test_negative_cash_is_refused_under_the_firms_rule(record, portfolio, chfx):
    LedgerSettings.objects.create(negative_cash=NegativeCash.REFUSE)
    record("deposit", DAY1, amount="1000")
    with pytest.raises(ValidationError) as info:
        record("buy", DAY1, instrument=chfx, quantity="10", price="80", fx_rate="1.25")
    assert "CHF cash would be -800" in info.value.message_dict["amount"][0]
    assert not portfolio.transactions.filter(kind="buy").exists()
    # settled from USD, the same buy is fine
    record("buy", DAY1, instrument=chfx, quantity="10", price="80", fx_rate="1.25", counter_currency="USD",
           counter_amount="1000")  # fmt: skip
    assert dict(CashBalance.objects.filter(portfolio=portfolio).values_list("currency", "amount")) == {}


def test_negative_cash_is_kept_and_shown_in_red_under_warn(record, portfolio, chfx, client_for, advisor):
    record("deposit", DAY1, amount="1000")
    record("buy", DAY1, instrument=chfx, quantity="10", price="80", fx_rate="1.25")
    assert CashBalance.objects.get(portfolio=portfolio, currency="CHF").amount == D(-800)
    page = client_for(advisor).get(f"/portfolios/{portfolio.pk}/").content.decode()
    assert "overdrawn" in page and "record a deposit or a currency conversion into CHF" in page
