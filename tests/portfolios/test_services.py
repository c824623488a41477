"""The ledger: holdings, lots and cash stay consistent with it; bad input writes nothing."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from billing.entitlements import PlanLimitExceeded
from portfolios import analytics, services
from portfolios.ledger import TXN_VALUES, txn_from_row
from portfolios.models import CashBalance, Holding, Lot, Portfolio, Transaction

from .factories import add_fx

D = date
pytestmark = pytest.mark.django_db


def holding(portfolio, instrument):
    return Holding.objects.filter(portfolio=portfolio, instrument=instrument).first()


def cash(portfolio):
    return {c.currency: c.amount for c in CashBalance.objects.filter(portfolio=portfolio)}


def assert_consistent(portfolio):
    """The derived tables equal a fresh replay of the ledger."""
    rows = Transaction.objects.filter(portfolio=portfolio).order_by("trade_date", "id").values(*TXN_VALUES)
    book = analytics.build_lots([txn_from_row(r) for r in rows], method=portfolio.lot_method)
    open_lots = {lot.lot_id: lot.quantity for lot in book.open_lots}
    assert {lot.opened_by_id: lot.quantity for lot in Lot.objects.filter(portfolio=portfolio, quantity__gt=0)} == (
        open_lots
    )
    per = {}
    for lot in book.open_lots:
        per[lot.instrument_id] = per.get(lot.instrument_id, 0) + lot.quantity
    assert {h.instrument_id: h.quantity for h in Holding.objects.filter(portfolio=portfolio)} == per
    assert cash(portfolio) == {c: a for c, a in book.cash.items() if a}


def test_buy_creates_holding_lot_and_cash(record, portfolio, aapl):
    record("deposit", D(2025, 1, 2), amount="10000")
    buy = record("buy", D(2025, 1, 3), instrument=aapl, quantity="10", price="150", fees="5")
    h = holding(portfolio, aapl)
    assert h.quantity == 10
    assert h.cost_local == Decimal("1505")
    lot = Lot.objects.get(opened_by=buy)
    assert (lot.quantity, lot.closed_on, lot.acquired_on) == (10, None, D(2025, 1, 3))
    assert cash(portfolio) == {"USD": Decimal("8495")}
    assert buy.currency == "USD" and buy.fx_rate == 1 and len(buy.fingerprint) == 64


def test_fifo_sell_closes_oldest_lot_first(record, portfolio, aapl):
    first = record("buy", D(2025, 1, 3), instrument=aapl, quantity="10", price="100")
    second = record("buy", D(2025, 2, 3), instrument=aapl, quantity="10", price="120")
    record("sell", D(2025, 3, 3), instrument=aapl, quantity="15", price="130")
    lots = {lot.opened_by_id: lot for lot in Lot.objects.filter(portfolio=portfolio)}
    assert lots[first.pk].quantity == 0 and lots[first.pk].closed_on == D(2025, 3, 3)
    assert lots[second.pk].quantity == 5 and lots[second.pk].cost_local == Decimal("600")
    assert holding(portfolio, aapl).quantity == 5
    assert_consistent(portfolio)


def test_specific_lot_sell_takes_the_named_lot(record, portfolio, aapl):
    first = record("buy", D(2025, 1, 3), instrument=aapl, quantity="10", price="100")
    second = record("buy", D(2025, 2, 3), instrument=aapl, quantity="10", price="120")
    record(
        "sell",
        D(2025, 3, 3),
        instrument=aapl,
        quantity="4",
        price="130",
        lots=[{"lot": second.pk, "quantity": "4"}],
    )
    lots = {lot.opened_by_id: lot.quantity for lot in Lot.objects.filter(portfolio=portfolio)}
    assert lots == {first.pk: 10, second.pk: 6}
    assert_consistent(portfolio)


def test_specific_lot_of_another_instrument_is_rejected(record, portfolio, aapl, sap):
    add_fx("EUR", "USD", {D(2025, 1, 1): "1.10"})
    other = record("buy", D(2025, 1, 3), instrument=sap, quantity="10", price="100")
    record("buy", D(2025, 1, 3), instrument=aapl, quantity="10", price="100")
    before = Transaction.objects.count()
    with pytest.raises(ValidationError) as exc:
        record("sell", D(2025, 3, 3), instrument=aapl, quantity="4", price="1", lots=[{"lot": other.pk, "quantity": 4}])
    assert "lots" in exc.value.message_dict
    assert Transaction.objects.count() == before


def test_sell_more_than_held_is_rejected_and_nothing_written(record, portfolio, aapl):
    record("buy", D(2025, 1, 3), instrument=aapl, quantity="10", price="100")
    with pytest.raises(ValidationError) as exc:
        record("sell", D(2025, 3, 3), instrument=aapl, quantity="11", price="130")
    assert "only 10 held" in exc.value.message_dict["quantity"][0]
    assert Transaction.objects.filter(portfolio=portfolio).count() == 1
    assert holding(portfolio, aapl).quantity == 10


def test_sell_before_the_buy_is_rejected(record, portfolio, aapl):
    record("buy", D(2025, 3, 3), instrument=aapl, quantity="10", price="100")
    with pytest.raises(ValidationError) as exc:
        record("sell", D(2025, 1, 3), instrument=aapl, quantity="1", price="130")
    assert "quantity" in exc.value.message_dict


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "buy", "trade_date": D(2026, 1, 5), "quantity": "1", "price": "1"}, "trade_date"),
        ({"kind": "buy", "trade_date": D(2025, 1, 5), "quantity": "1", "price": "-1"}, "price"),
        ({"kind": "buy", "trade_date": D(2025, 1, 5), "quantity": "-1", "price": "1"}, "quantity"),
        ({"kind": "buy", "trade_date": D(2025, 1, 5), "quantity": "1", "price": "1", "fees": "-2"}, "fees"),
        ({"kind": "buy", "trade_date": D(2025, 1, 5), "quantity": "1", "price": "1", "instrument": 0}, "instrument"),
        ({"kind": "buy", "trade_date": D(2025, 1, 5), "quantity": "1", "price": "1", "currency": "EUR"}, "currency"),
        ({"kind": "buy", "trade_date": "2025-13-01", "quantity": "1", "price": "1"}, "trade_date"),
        ({"kind": "buy", "trade_date": D(2025, 1, 5), "quantity": "abc", "price": "1"}, "quantity"),
        ({"kind": "explode", "trade_date": D(2025, 1, 5)}, "kind"),
        ({"kind": "deposit", "trade_date": D(2025, 1, 5)}, "amount"),
        ({"kind": "deposit", "trade_date": D(2025, 1, 5), "amount": "-5"}, "amount"),
        ({"kind": "deposit", "trade_date": D(2025, 1, 5), "amount": "5", "currency": "JPY"}, "fx_rate"),
        ({"kind": "deposit", "trade_date": D(2025, 1, 5), "amount": "5", "fx_rate": "2"}, "fx_rate"),
        ({"kind": "split", "trade_date": D(2025, 1, 5), "quantity": "2", "fees": "1"}, "fees"),
        ({"kind": "sell", "trade_date": D(2025, 1, 5), "quantity": "1", "price": "1", "lots": "x"}, "lots"),
        ({"kind": "buy", "trade_date": D(2025, 1, 5), "quantity": "1", "price": "1.0000001"}, "price"),
        ({"kind": "buy", "trade_date": D(2025, 1, 5), "quantity": "0.00000000001", "price": "1"}, "quantity"),
        (
            {"kind": "buy", "trade_date": D(2025, 1, 5), "quantity": "1", "price": "1", "acquired_on": "2024-1-1"},
            "acquired_on",
        ),
    ],
)
def test_bad_input_is_a_field_error_and_writes_nothing(portfolio, aapl, today, fields, field):
    fields = {"instrument": aapl, **fields}
    if fields["kind"] in ("deposit",):
        fields.pop("instrument")
    if fields.get("instrument") == 0:
        fields["instrument"] = 987654321
    with pytest.raises(ValidationError) as exc:
        services.transaction_record(portfolio=portfolio, today=today, **fields)
    assert field in exc.value.message_dict, exc.value.message_dict
    assert not Transaction.objects.filter(portfolio=portfolio).exists()
    assert not Holding.objects.filter(portfolio=portfolio).exists()


def test_foreign_currency_takes_the_market_rate(record, portfolio, sap):
    add_fx("EUR", "USD", {D(2025, 1, 1): "1.10", D(2025, 1, 10): "1.20"})
    buy = record("buy", D(2025, 1, 5), instrument=sap, quantity="10", price="100")
    assert buy.currency == "EUR" and buy.fx_rate == Decimal("1.10")
    assert holding(portfolio, sap).cost_base == Decimal("1100")


def test_inverse_fx_pair_is_used(record, portfolio, sap):
    add_fx("USD", "EUR", {D(2025, 1, 1): "0.80"})
    buy = record("buy", D(2025, 1, 5), instrument=sap, quantity="1", price="100")
    assert buy.fx_rate == Decimal("1.25")


def test_editing_a_past_buy_rebuilds_lots(record, portfolio, aapl):
    buy = record("buy", D(2025, 1, 3), instrument=aapl, quantity="10", price="100")
    record("sell", D(2025, 3, 3), instrument=aapl, quantity="4", price="130")
    services.transaction_update(txn=buy, quantity="20", today=D(2025, 12, 31))
    assert holding(portfolio, aapl).quantity == 16
    assert Lot.objects.get(opened_by=buy).quantity == 16
    assert_consistent(portfolio)


def test_edit_that_uncovers_a_later_sell_is_rejected(record, portfolio, aapl):
    buy = record("buy", D(2025, 1, 3), instrument=aapl, quantity="10", price="100")
    record("sell", D(2025, 3, 3), instrument=aapl, quantity="8", price="130")
    with pytest.raises(ValidationError) as exc:
        services.transaction_update(txn=buy, quantity="5", today=D(2025, 12, 31))
    assert "only 5 held" in exc.value.message_dict["quantity"][0]
    buy.refresh_from_db()
    assert buy.quantity == 10
    assert holding(portfolio, aapl).quantity == 2


def test_deleting_a_buy_under_a_sell_is_rejected(record, portfolio, aapl):
    buy = record("buy", D(2025, 1, 3), instrument=aapl, quantity="10", price="100")
    record("sell", D(2025, 3, 3), instrument=aapl, quantity="8", price="130")
    with pytest.raises(ValidationError):
        services.transaction_delete(txn=buy)
    assert Transaction.objects.filter(pk=buy.pk).exists()
    assert holding(portfolio, aapl).quantity == 2


def test_deleting_a_sell_restores_the_position(record, portfolio, aapl):
    buy = record("buy", D(2025, 1, 3), instrument=aapl, quantity="10", price="100")
    sell = record("sell", D(2025, 3, 3), instrument=aapl, quantity="10", price="130")
    assert holding(portfolio, aapl) is None
    assert Lot.objects.get(opened_by=buy).closed_on == D(2025, 3, 3)
    services.transaction_delete(txn=sell)
    assert holding(portfolio, aapl).quantity == 10
    assert Lot.objects.get(opened_by=buy).closed_on is None
    assert_consistent(portfolio)


def test_split_and_transfers_keep_the_ledger_consistent(record, portfolio, aapl):
    record("buy", D(2025, 1, 3), instrument=aapl, quantity="10", price="100")
    record("split", D(2025, 2, 3), instrument=aapl, quantity="2")
    t_in = record("transfer_in", D(2025, 2, 4), instrument=aapl, quantity="5", price="40", acquired_on=D(2020, 1, 1))
    record("transfer_out", D(2025, 3, 1), instrument=aapl, quantity="21")
    assert holding(portfolio, aapl).quantity == 4
    assert Lot.objects.get(opened_by=t_in).acquired_on == D(2020, 1, 1)
    assert_consistent(portfolio)


def test_lot_closed_by_transfer_out_has_its_close_date(record, portfolio, aapl):
    buy = record("buy", D(2025, 1, 3), instrument=aapl, quantity="10", price="100")
    record("transfer_out", D(2025, 3, 1), instrument=aapl, quantity="10")
    record("buy", D(2025, 4, 1), instrument=aapl, quantity="1", price="100")
    record("transfer_out", D(2025, 5, 1), instrument=aapl, quantity="1")
    assert Lot.objects.get(opened_by=buy).closed_on == D(2025, 3, 1)


def test_database_refuses_negative_quantity(portfolio, aapl):
    with pytest.raises(IntegrityError), transaction.atomic():
        Transaction.objects.create(
            portfolio=portfolio, kind="buy", trade_date=D(2025, 1, 1), instrument=aapl, quantity=-1, currency="USD"
        )


def test_database_refuses_security_row_without_instrument(portfolio):
    with pytest.raises(IntegrityError), transaction.atomic():
        Transaction.objects.create(
            portfolio=portfolio, kind="buy", trade_date=D(2025, 1, 1), quantity=1, currency="USD"
        )


def test_archived_portfolio_ledger_is_frozen(record, portfolio, aapl, advisor):
    services.portfolio_update(portfolio=portfolio, actor=advisor, archived=True)
    with pytest.raises(ValidationError) as exc:
        record("deposit", D(2025, 1, 2), amount="10")
    assert "portfolio" in exc.value.message_dict


def test_portfolio_create_checks_plan_limit(firm, advisor, monkeypatch):
    def refuse(*, tenant, resource, adding=1):
        raise PlanLimitExceeded("limit", limit=resource)

    monkeypatch.setattr(services.portfolio, "check_can_add", refuse)
    with pytest.raises(PlanLimitExceeded):
        services.portfolio_create(tenant=firm, actor=advisor, name="X", advisor=advisor)
    assert not Portfolio.objects.filter(name="X").exists()


def test_portfolio_create_by_advisor(firm, advisor, client_contact):
    p = services.portfolio_create(
        tenant=firm, actor=advisor, name="New", advisor=advisor, client=client_contact, base_currency="eur"
    )
    assert p.base_currency == "EUR" and p.client == client_contact


def test_advisor_cannot_create_for_someone_elses_client(firm, advisor, advisor2):
    from .factories import ContactFactory

    theirs = ContactFactory(owner=advisor2)
    with pytest.raises(ValidationError) as exc:
        services.portfolio_create(tenant=firm, actor=advisor, name="New", advisor=advisor2, client=theirs)
    assert set(exc.value.message_dict) == {"advisor", "client"}


def test_base_currency_is_fixed_once_the_ledger_exists(record, portfolio, advisor):
    record("deposit", D(2025, 1, 2), amount="10")
    with pytest.raises(ValidationError) as exc:
        services.portfolio_update(portfolio=portfolio, actor=advisor, base_currency="EUR")
    assert "base_currency" in exc.value.message_dict


def test_portfolio_with_ledger_cannot_be_deleted(record, portfolio):
    record("deposit", D(2025, 1, 2), amount="10")
    with pytest.raises(ValidationError):
        services.portfolio_delete(portfolio=portfolio)
    assert Portfolio.objects.filter(pk=portfolio.pk).exists()


def test_fingerprint_ignores_number_formatting():
    a = services.fingerprint_of(
        kind="buy",
        trade_date=D(2025, 1, 1),
        instrument_id=1,
        quantity=Decimal("10"),
        price=Decimal("1.50"),
        fees=Decimal(0),
        amount=None,
        currency="USD",
    )
    b = services.fingerprint_of(
        kind="buy",
        trade_date=D(2025, 1, 1),
        instrument_id=1,
        quantity=Decimal("10.000"),
        price=Decimal("1.5"),
        fees=Decimal("0.00"),
        amount=None,
        currency="USD",
    )
    c = services.fingerprint_of(
        kind="buy",
        trade_date=D(2025, 1, 1),
        instrument_id=1,
        quantity=Decimal("11"),
        price=Decimal("1.5"),
        fees=Decimal(0),
        amount=None,
        currency="USD",
    )
    assert a == b != c


def test_trailing_zeros_are_not_extra_decimal_places(record, portfolio, aapl):
    buy = record("buy", D(2025, 1, 3), instrument=aapl, quantity="10.000000000000", price="1.50000000")
    assert buy.quantity == 10 and buy.price == Decimal("1.5")


def test_bulk_record_writes_all_rows_with_specific_lots(record, portfolio, aapl, advisor, today):
    first = record("buy", D(2025, 1, 3), instrument=aapl, quantity="10", price="100")
    second = record("buy", D(2025, 1, 4), instrument=aapl, quantity="10", price="100")
    rows = [
        services.transaction_clean(
            portfolio=portfolio,
            today=today,
            data={
                "kind": "sell",
                "trade_date": D(2025, 2, 1),
                "instrument": aapl,
                "quantity": "3",
                "price": "120",
                "lots": [{"lot": second.pk, "quantity": "3"}],
            },
        ),
        services.transaction_clean(
            portfolio=portfolio, today=today, data={"kind": "deposit", "trade_date": D(2025, 2, 1), "amount": "50"}
        ),
    ]
    assert services.transactions_bulk_record(portfolio=portfolio, rows=rows, created_by=advisor) == 2
    sell = Transaction.objects.get(portfolio=portfolio, kind="sell")
    assert sell.lots == [{"lot": second.pk, "quantity": "3"}] and sell.created_by == advisor
    assert {lot.opened_by_id: lot.quantity for lot in Lot.objects.filter(portfolio=portfolio)} == {
        first.pk: 10,
        second.pk: 7,
    }
    assert_consistent(portfolio)


def test_bulk_record_that_oversells_writes_nothing(record, portfolio, aapl, today):
    record("buy", D(2025, 1, 3), instrument=aapl, quantity="10", price="100")
    rows = [
        services.transaction_clean(
            portfolio=portfolio,
            today=today,
            data={"kind": "sell", "trade_date": D(2025, 2, 1), "instrument": aapl, "quantity": "30", "price": "1"},
        )
    ]
    with pytest.raises(ValidationError):
        services.transactions_bulk_record(portfolio=portfolio, rows=rows)
    assert Transaction.objects.filter(portfolio=portfolio).count() == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_edits_and_deletes_keep_the_ledger_consistent(portfolio, aapl, sap, today, seed):
    """Random buys, sells (some specific-lot), splits, transfers, edits and deletes: after every
    accepted or refused operation the derived tables equal a fresh replay, and a refused one
    changed nothing."""
    import random

    add_fx("EUR", "USD", {D(2024, 1, 1): "1.10"})
    rng = random.Random(seed)
    instruments = [aapl, sap]

    def snapshot():
        return (
            sorted(Transaction.objects.filter(portfolio=portfolio).values_list("id", "quantity", "trade_date")),
            sorted(Lot.objects.filter(portfolio=portfolio).values_list("opened_by_id", "quantity")),
        )

    accepted = refused = 0
    for _ in range(30):
        before = snapshot()
        day = D(2024, 1, 1) + timedelta(days=rng.randrange(300))
        inst = rng.choice(instruments)
        txns = list(Transaction.objects.filter(portfolio=portfolio))
        op = rng.random()
        try:
            if op < 0.4 or not txns:
                services.transaction_record(
                    portfolio=portfolio,
                    today=today,
                    kind="buy",
                    trade_date=day,
                    instrument=inst,
                    quantity=str(rng.randint(1, 20)),
                    price="10",
                )
            elif op < 0.6:
                lots = list(Lot.objects.filter(portfolio=portfolio, instrument=inst, quantity__gt=0))
                qty = rng.randint(1, 15)
                pick = None
                if lots and rng.random() < 0.5:
                    lot = rng.choice(lots)
                    qty = min(qty, int(lot.quantity)) or 1
                    pick = [{"lot": lot.opened_by_id, "quantity": str(qty)}]
                services.transaction_record(
                    portfolio=portfolio,
                    today=today,
                    kind="sell",
                    trade_date=day,
                    instrument=inst,
                    quantity=str(qty),
                    price="12",
                    lots=pick,
                )
            elif op < 0.65:
                services.transaction_record(
                    portfolio=portfolio, today=today, kind="split", trade_date=day, instrument=inst, quantity="2"
                )
            elif op < 0.7:
                services.transaction_record(
                    portfolio=portfolio,
                    today=today,
                    kind="transfer_out",
                    trade_date=day,
                    instrument=inst,
                    quantity=str(rng.randint(1, 5)),
                )
            elif op < 0.85:
                t = rng.choice(txns)
                if t.kind in ("buy", "sell", "transfer_out"):
                    services.transaction_update(
                        txn=t, today=today, quantity=str(rng.randint(1, 20)), lots=None, trade_date=day
                    )
            else:
                services.transaction_delete(txn=rng.choice(txns))
        except ValidationError:
            refused += 1
            assert snapshot() == before
        else:
            accepted += 1
        assert_consistent(portfolio)
    assert accepted > 10 and refused > 0  # both paths were exercised
