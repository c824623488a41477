"""The valuation store: maintained from the earliest affected day, read by the analytics pages,
verified from scratch, isolated per firm."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from portfolios import analytics, selectors, services, valuation_services, valuations
from portfolios.market.services import prices_import
from portfolios.models import Transaction, Valuation, ValuationCurrency, ValuationState, ValuationStatus

from .factories import PortfolioFactory, add_fx, daily_prices, in_public

D = date
pytestmark = pytest.mark.django_db


@pytest.fixture
def book(portfolio, aapl, sap):
    """A year of daily closes, an FX pair, and a ledger with income, fees, a split and sells."""
    today = timezone.localdate()
    start = today - timedelta(days=400)
    daily_prices(aapl, start, [Decimal(100) + Decimal(i % 9) / 4 for i in range(401)])
    daily_prices(sap, start, [Decimal(50) + Decimal(i % 5) / 8 for i in range(401)])
    add_fx("EUR", "USD", {start + timedelta(days=i): f"1.{10 + i % 7}" for i in range(0, 401, 2)})
    record = services.transaction_record
    record(portfolio=portfolio, kind="deposit", trade_date=start, amount="20000")
    record(portfolio=portfolio, kind="buy", trade_date=start, instrument=aapl, quantity="50", price="100", fees="1")
    record(
        portfolio=portfolio, kind="buy", trade_date=start + timedelta(days=3), instrument=sap, quantity="40", price="50"
    )
    record(portfolio=portfolio, kind="dividend", trade_date=start + timedelta(days=40), instrument=aapl, amount="30")
    record(portfolio=portfolio, kind="split", trade_date=start + timedelta(days=100), instrument=aapl, quantity="2")
    record(
        portfolio=portfolio,
        kind="sell",
        trade_date=start + timedelta(days=200),
        instrument=aapl,
        quantity="30",
        price="51",
    )
    record(portfolio=portfolio, kind="fee", trade_date=start + timedelta(days=250), amount="12")
    record(portfolio=portfolio, kind="withdrawal", trade_date=start + timedelta(days=300), amount="1000")
    portfolio.benchmark = aapl
    portfolio.save()
    return portfolio


def _from_scratch(portfolio, start, end):
    loaded = selectors.portfolio_data(portfolio=portfolio, end=timezone.localdate())
    return analytics.performance(loaded.data, start, end, benchmark_prices=loaded.benchmark_prices or None)


def test_each_day_from_inception_to_today_is_stored_once(book):
    inception = Transaction.objects.filter(portfolio=book).order_by("trade_date").first().trade_date
    days = list(Valuation.objects.filter(portfolio=book).order_by("date").values_list("date", flat=True))
    assert days[0] == inception and days[-1] == timezone.localdate()
    assert len(days) == len(set(days)) == (days[-1] - days[0]).days + 1
    state = ValuationState.objects.get(portfolio=book)
    assert (state.status, state.valued_version, state.valued_through) == (
        ValuationStatus.CURRENT,
        state.ledger_version,
        timezone.localdate(),
    )
    assert ValuationCurrency.objects.filter(portfolio=book, currency="EUR").exists()
    assert valuation_services.valuations_verify(portfolio=book) == []


@pytest.mark.parametrize("preset", ["MTD", "QTD", "YTD", "1Y", "SI"])
def test_performance_from_the_store_equals_a_computation_from_the_ledger(book, preset):
    result = selectors.portfolio_performance(portfolio=book, preset=preset)
    p = result.performance
    expected = _from_scratch(book, p.start, p.end)
    assert p == expected  # every figure: series, TWR, MWR, benchmark, drawdown, volatility, totals
    assert p.summary.dividends == Decimal(30) or p.start > Transaction.objects.get(kind="dividend").trade_date


def test_explicit_ranges_and_the_value_series_come_from_the_store(book):
    today = timezone.localdate()
    start, end = today - timedelta(days=250), today - timedelta(days=20)
    p = selectors.portfolio_performance(portfolio=book, start=start, end=end).performance
    assert p == _from_scratch(book, start, end)
    series, index, bench = selectors.portfolio_value_series(portfolio=book, start=start, end=end)
    assert series == p.series and index == analytics.twr_index(p.series) and bench


def test_a_ledger_write_recomputes_from_its_date_only(book, aapl):
    today = timezone.localdate()
    day = today - timedelta(days=30)
    before = dict(Valuation.objects.filter(portfolio=book).values_list("date", "pk"))
    services.transaction_record(portfolio=book, kind="interest", trade_date=day, amount="7")
    after = dict(Valuation.objects.filter(portfolio=book).values_list("date", "pk"))
    assert set(after) == set(before)
    assert all(after[d] == before[d] for d in before if d < day)  # untouched rows
    assert all(after[d] != before[d] for d in before if d >= day)  # rewritten rows
    assert Valuation.objects.get(portfolio=book, date=day).interest == Decimal(7)
    assert valuation_services.valuations_verify(portfolio=book) == []


def test_edits_and_deletes_keep_the_store_equal_to_a_recomputation(book, aapl):
    today = timezone.localdate()
    txn = services.transaction_record(
        portfolio=book, kind="buy", trade_date=today - timedelta(days=10), instrument=aapl, quantity="3", price="52"
    )
    services.transaction_update(txn=txn, trade_date=today - timedelta(days=90))  # moved earlier
    assert valuation_services.valuations_verify(portfolio=book) == []
    services.transaction_update(txn=txn, quantity="4")
    assert valuation_services.valuations_verify(portfolio=book) == []
    services.transaction_delete(txn=Transaction.objects.get(pk=txn.pk))
    assert valuation_services.valuations_verify(portfolio=book) == []
    first = Transaction.objects.filter(portfolio=book).order_by("trade_date", "id").first()
    new_first = services.transaction_record(
        portfolio=book, kind="deposit", trade_date=first.trade_date - timedelta(days=5), amount="10"
    )
    assert Valuation.objects.filter(portfolio=book).order_by("date").first().date == new_first.trade_date
    services.transaction_delete(txn=new_first)  # the ledger starts later again: the early days go
    assert Valuation.objects.filter(portfolio=book).order_by("date").first().date == first.trade_date
    assert valuation_services.valuations_verify(portfolio=book) == []


def test_deleting_the_whole_ledger_empties_the_store(record, portfolio):
    t = record("deposit", D(2025, 1, 2), amount="100")
    assert Valuation.objects.filter(portfolio=portfolio).exists()
    services.transaction_delete(txn=t)
    assert not Valuation.objects.filter(portfolio=portfolio).exists()


def test_cost_grows_with_the_days_of_the_range_not_with_the_ledger(portfolio, aapl):
    today = timezone.localdate()
    start = today - timedelta(days=800)
    daily_prices(aapl, start, [100 + (i % 11) for i in range(801)])
    services.transaction_record(portfolio=portfolio, kind="deposit", trade_date=start, amount="1000000")

    def measure():
        with CaptureQueriesContext(connection) as ctx:
            result = selectors.portfolio_performance(portfolio=portfolio, preset="1Y")
        return ctx.captured_queries, len(result.performance.series.dates)

    services.transaction_record(
        portfolio=portfolio, kind="buy", trade_date=start, instrument=aapl, quantity="1", price="100"
    )
    few, days = measure()
    for i in range(1, 60):
        services.transaction_record(
            portfolio=portfolio,
            kind="buy",
            trade_date=start + timedelta(days=i * 13),
            instrument=aapl,
            quantity="1",
            price="100",
        )
    many, days_after = measure()
    assert len(many) == len(few) and days_after == days  # same queries, same days read, 60x the ledger
    sql = " ".join(q["sql"] for q in many)
    assert "market_price" not in sql  # no closes: the store holds the valuations
    # the ledger is touched once, for its first day, with LIMIT 1
    ledger_reads = [q["sql"] for q in many if "portfolios_transaction" in q["sql"]]
    assert len(ledger_reads) == 1 and "LIMIT 1" in ledger_reads[0]


def test_bulk_import_marks_figures_updating_until_its_job_has_run(
    portfolio, aapl, advisor, advisor_client, django_capture_on_commit_callbacks
):
    today = timezone.localdate()
    daily_prices(aapl, today - timedelta(days=30), [100 + i for i in range(31)])
    services.transaction_record(
        portfolio=portfolio, kind="deposit", trade_date=today - timedelta(days=30), amount="5000"
    )
    previous = list(Valuation.objects.filter(portfolio=portfolio).values_list("date", "value"))
    rows = [
        services.transaction_clean(
            portfolio=portfolio,
            data={
                "kind": "buy",
                "trade_date": today - timedelta(days=20 - i),
                "instrument": aapl,
                "quantity": "1",
                "price": str(110 + i),
            },
        )
        for i in range(3)
    ]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.transactions_bulk_record(portfolio=portfolio, rows=rows, created_by=advisor)
    assert valuations.valuation_status(portfolio=portfolio).updating
    assert (
        list(Valuation.objects.filter(portfolio=portfolio).values_list("date", "value")) == previous
    )  # not half-updated
    page = advisor_client.get(f"/portfolios/{portfolio.pk}/")
    assert b"Figures updating" in page.content
    # point 5 of the issue: a busy bar, and the page refreshes itself (no script) until it is done
    assert b"<progress data-valuation-progress" in page.content
    assert b'<meta http-equiv="refresh" content="3">' in page.content
    api = advisor_client.get(f"/api/v1/portfolios/{portfolio.pk}/performance/").json()
    assert api["valuation"]["updating"] is True
    for callback in callbacks:  # the job runs (eagerly here)
        callback()
    info = valuations.valuation_status(portfolio=portfolio)
    assert not info.updating and not info.failed
    assert valuation_services.valuations_verify(portfolio=portfolio) == []
    done = advisor_client.get(f"/portfolios/{portfolio.pk}/").content
    assert b"Figures updating" not in done and b"http-equiv" not in done and b"<progress" not in done
    assert b"Figures updated" in done  # the notice when it ends, once
    assert b"Figures updated" not in advisor_client.get(f"/portfolios/{portfolio.pk}/").content


def test_a_price_import_revalues_from_its_first_date(book, aapl, django_capture_on_commit_callbacks):
    day = timezone.localdate() - timedelta(days=5)
    before = dict(Valuation.objects.filter(portfolio=book).values_list("date", "pk"))
    value_before = Valuation.objects.get(portfolio=book, date=day).value
    csv = f"symbol,exchange,date,close\n{aapl.symbol},{aapl.exchange},{day},250\n"
    with django_capture_on_commit_callbacks(execute=True):
        in_public(prices_import, file=csv.encode(), kind="prices", overwrite=True)
    after = dict(Valuation.objects.filter(portfolio=book).values_list("date", "pk"))
    assert all(after[d] == before[d] for d in before if d < day)
    assert Valuation.objects.get(portfolio=book, date=day).value > value_before
    assert valuation_services.valuations_verify(portfolio=book) == []
    assert not valuations.valuation_status(portfolio=book).updating


def test_an_fx_import_revalues_the_portfolios_holding_the_currency(book, django_capture_on_commit_callbacks):
    day = timezone.localdate() - timedelta(days=3)
    csv = f"base,quote,date,rate\nEUR,USD,{day},2.5\n"
    with django_capture_on_commit_callbacks(execute=True):
        in_public(prices_import, file=csv.encode(), kind="fx", overwrite=True)
    parts = ValuationCurrency.objects.filter(portfolio=book, date=day).values_list("value_base", flat=True)
    assert abs(sum(parts, Decimal(0)) - Valuation.objects.get(portfolio=book, date=day).value) < Decimal("1e-12")
    assert ValuationCurrency.objects.get(portfolio=book, date=day, currency="EUR").fx_rate == Decimal("2.5")
    assert valuation_services.valuations_verify(portfolio=book) == []


def test_a_rebuild_that_races_a_ledger_write_ends_with_the_newest_ledger(book, aapl, monkeypatch):
    # The background rebuild computes from the ledger as it was; a write commits before the
    # rebuild writes its rows. The rebuild must notice (the ledger version moved) and start again.
    today = timezone.localdate()
    real = valuation_services.compute_from
    raced = []

    def compute_then_a_write_lands(**kwargs):
        result = real(**kwargs)
        if not raced:  # once: the write's own recomputation goes through here too
            raced.append(today)
            services.transaction_record(
                portfolio=book, kind="deposit", trade_date=today - timedelta(days=60), amount="777"
            )
        return result

    monkeypatch.setattr(valuation_services, "compute_from", compute_then_a_write_lands)
    valuation_services.valuations_mark_stale(portfolio_ids=[book.pk], since=today - timedelta(days=200))
    state = valuation_services.valuations_rebuild(portfolio=book)
    assert raced and state.valued_version == state.ledger_version and state.stale_from is None
    monkeypatch.setattr(valuation_services, "compute_from", real)
    assert valuation_services.valuations_verify(portfolio=book) == []  # the figures of the newest ledger
    assert Valuation.objects.get(portfolio=book, date=today - timedelta(days=60)).deposits == Decimal(777)


def test_a_rebuild_that_keeps_racing_gives_up_without_writing(book, monkeypatch):
    real = valuation_services.compute_from
    rows_before = list(Valuation.objects.filter(portfolio=book).values_list("pk", flat=True))

    def always_raced(**kwargs):
        result = real(**kwargs)
        ValuationState.objects.filter(portfolio=book).update(
            ledger_version=ValuationState.objects.get(portfolio=book).ledger_version + 1
        )
        return result

    monkeypatch.setattr(valuation_services, "compute_from", always_raced)
    with pytest.raises(valuation_services.ValuationRaced):
        valuation_services.valuations_rebuild(portfolio=book, since=timezone.localdate() - timedelta(days=10))
    assert list(Valuation.objects.filter(portfolio=book).values_list("pk", flat=True)) == rows_before


def test_a_failed_rebuild_keeps_the_previous_rows_and_tells_operators(book, aapl, caplog):
    rows_before = list(Valuation.objects.filter(portfolio=book).order_by("date").values_list("pk", "value"))
    with schema_context("public"):
        aapl.currency = "GBP"  # no GBP rate exists
        aapl.save()
    with caplog.at_level(logging.ERROR, logger="portfolios.valuation_services"):
        state = valuation_services.valuations_rebuild(portfolio=book, since=date.min)
    assert state.status == ValuationStatus.FAILED and "GBP" in state.error
    assert list(Valuation.objects.filter(portfolio=book).order_by("date").values_list("pk", "value")) == rows_before
    assert any("valuation rebuild failed" in r.getMessage() and "GBP" in r.getMessage() for r in caplog.records)
    info = valuations.valuation_status(portfolio=book)
    assert info.failed and "could not be updated" in info.message


def test_verify_command_reports_a_cent_and_exits_non_zero(book, capsys):
    call_command("valuations_verify", "--firm", "acme")
    assert "0 differ" in capsys.readouterr().out
    row = Valuation.objects.filter(portfolio=book).order_by("-date").first()
    Valuation.objects.filter(pk=row.pk).update(value=row.value + Decimal("0.01"))
    with pytest.raises(CommandError, match="1 differ"):
        call_command("valuations_verify", "--firm", "acme")
    out = capsys.readouterr().out
    assert f"{row.date} value: stored" in out and book.name in out
    with pytest.raises(CommandError, match="No firm"):
        call_command("valuations_verify", "--firm", "nope")


def test_daily_balances_cover_every_day(book):
    inception = Transaction.objects.filter(portfolio=book).order_by("trade_date").first().trade_date
    start, end = inception - timedelta(days=2), inception + timedelta(days=5)
    balances = valuations.portfolio_daily_balances(portfolio=book, start=start, end=end)
    assert [d for d, _ in balances] == [start + timedelta(days=i) for i in range(8)]
    assert balances[0][1] == balances[1][1] == 0
    stored = dict(Valuation.objects.filter(portfolio=book).values_list("date", "value"))
    assert all(v == stored[d] for d, v in balances[2:])
    rows = valuations.portfolio_valuations(portfolio=book, start=inception, end=end)
    assert [r.date for r in rows] == [inception + timedelta(days=i) for i in range(6)] and rows[0].deposits == 20000


def test_the_owner_reads_the_figures_and_another_firm_cannot(book, advisor_client, outsider_client, other_firm):
    ok = advisor_client.get(f"/api/v1/portfolios/{book.pk}/performance/")
    assert ok.status_code == 200 and ok.json()["valuation"]["failed"] is False
    assert outsider_client.get(f"/api/v1/portfolios/{book.pk}/performance/").status_code == 404
    assert outsider_client.get(f"/api/v1/portfolios/{book.pk}/value-series/").status_code == 404
    with schema_context(other_firm.schema_name):  # the rows live in the firm's own schema
        assert not Valuation.objects.filter(portfolio_id=book.pk).exists()


def test_extend_values_the_days_since_the_last_valuation(book, django_capture_on_commit_callbacks):
    today = timezone.localdate()
    Valuation.objects.filter(portfolio=book, date__gte=today - timedelta(days=3)).delete()
    ValuationState.objects.filter(portfolio=book).update(valued_through=today - timedelta(days=4))
    with django_capture_on_commit_callbacks(execute=True):
        assert valuation_services.valuations_extend_all() == [book.pk]
    assert not valuations.valuation_status(portfolio=book).updating
    assert valuation_services.valuations_verify(portfolio=book) == []
    assert ValuationState.objects.get(portfolio=book).valued_through == today


def test_since_inception_figures_of_many_portfolios_equal_the_performance_selector(book, record, portfolio):
    empty = PortfolioFactory(name="nothing yet", advisor=book.advisor)
    figures = selectors.portfolio_since_inception([book, empty])
    p = selectors.portfolio_performance(portfolio=book, preset="SI").performance
    assert (figures[book.pk].value, figures[book.pk].twr, figures[book.pk].mwr) == (p.end_value, p.twr, p.mwr)
    assert figures[empty.pk].value is None and "no transactions" in figures[empty.pk].error


@pytest.mark.parametrize(
    ("kind", "csv", "message"),
    [
        ("prices", "symbol,exchange,date,close\n{sym},XTST,{future},120\n", "is in the future"),
        ("prices", "symbol,exchange,date,close\n{sym},XTST,1899-12-31,120\n", "is before 1900-01-01"),
        ("prices", "symbol,exchange,date,close\nNOPE,XTST,{day},120\n", "unknown instrument NOPE"),
        (
            "prices",
            "symbol,exchange,date,close\n{sym},XTST,{day},120\n{sym},XTST,{day},121\n",
            "for the same instrument",
        ),
        ("prices", "symbol,exchange,date,close\n{sym},XTST,{day},999\n", "stored close is"),
        ("fx", "base,quote,date,rate\nEUR,USD,{future},1.2\n", "is in the future"),
        ("fx", "base,quote,date,rate\nEUR,USD,1850-01-01,1.2\n", "is before 1900-01-01"),
        ("fx", "base,quote,date,rate\nEUR,USD,{day},1.2\nEUR,USD,{day},1.3\n", "for the same pair"),
        ("fx", "base,quote,date,rate\nEUR,USD,{day},9.9\n", "stored rate is"),
    ],
)
def test_bad_market_data_is_refused_before_anything_is_written_or_revalued(
    book, aapl, kind, csv, message, django_capture_on_commit_callbacks
):
    from portfolios.market.models import FxRate, Price
    from portfolios.market.services import ImportRejected

    today = timezone.localdate()
    day = today - timedelta(days=10)
    text = csv.format(sym=aapl.symbol, future=today + timedelta(days=1), day=day)
    rows_before = list(Valuation.objects.filter(portfolio=book).values_list("pk", "value"))
    with schema_context("public"):
        counts = (Price.objects.count(), FxRate.objects.count())
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(ImportRejected) as exc:
        in_public(prices_import, file=text.encode(), kind=kind)
    issues = [str(i) for i in exc.value.result.errors + exc.value.result.conflicts]
    assert any(message in i for i in issues), issues
    assert callbacks == []  # nothing queued: no revaluation
    with schema_context("public"):
        assert (Price.objects.count(), FxRate.objects.count()) == counts
    assert list(Valuation.objects.filter(portfolio=book).values_list("pk", "value")) == rows_before
    assert not valuations.valuation_status(portfolio=book).updating


def test_rebuild_command_recomputes_from_inception(book, capsys):
    Valuation.objects.filter(portfolio=book).update(value=1)
    call_command("valuations_rebuild", "--firm", "acme", "--portfolio", str(book.pk))
    assert "1 portfolio(s) revalued, 0 failed." in capsys.readouterr().out
    assert valuation_services.valuations_verify(portfolio=book) == []


def test_summaries_from_the_store_equal_the_performance_figures(book):
    today = timezone.localdate()
    summary = selectors.portfolio_summaries([book], today=today)[book.pk]
    si = selectors.portfolio_performance(portfolio=book, preset="SI").performance
    ytd = selectors.portfolio_performance(portfolio=book, preset="YTD").performance
    assert summary.value == si.end_value and summary.since_inception == si.twr
    # YTD is the stored index's growth since the close before 1 January: the same chain
    assert summary.ytd.base_date == ytd.twr.base_date == date(today.year, 1, 1) - timedelta(days=1)
    assert abs(summary.ytd.cumulative - ytd.twr.cumulative) < Decimal("1e-24")


def _comparable(snap):
    return (
        snap.date,
        sorted(
            (
                h.instrument_id,
                h.currency,
                h.quantity,
                h.price,
                h.fx_rate,
                h.market_value_base,
                h.cost_local,
                h.cost_base,
                [(lot.lot_id, lot.acquired, lot.quantity, lot.cost_base, lot.market_value_base) for lot in h.lots],
            )
            for h in snap.holdings
        ),
        {c: a for c, a in snap.cash.items()},
        snap.cash_base,
    )


def _last_trade(portfolio):
    return valuations.valuation_status(portfolio=portfolio).last_trade


def test_the_portfolio_page_reads_holdings_from_the_derived_tables_equal_to_a_replay(book, aapl):
    from portfolios.selectors import stored_holdings_on

    today = timezone.localdate()
    replayed = analytics.holdings_on(selectors.portfolio_data(portfolio=book, end=today).data, today)
    stored, infos = stored_holdings_on(portfolio=book, on=today, last_trade=_last_trade(book))
    assert (
        _comparable(stored) == _comparable(replayed)
        and stored.holdings
        and set(infos) == {h.instrument_id for h in stored.holdings}
    )
    with CaptureQueriesContext(connection) as ctx:
        dash = selectors.portfolio_dashboard(portfolio=book, today=today)
    assert dash.loaded is None  # no ledger read
    assert not any('"portfolios_transaction"."kind"' in q["sql"] for q in ctx.captured_queries)  # no ledger read
    assert _comparable(dash.snapshot) == _comparable(replayed)


def test_holdings_fall_back_to_the_ledger_where_its_prices_are_needed(book, firm):
    from portfolios.selectors import stored_holdings_on

    from .factories import InstrumentFactory

    today = timezone.localdate()
    never_priced = InstrumentFactory(symbol="NOCLOSE", currency="USD")
    services.transaction_record(
        portfolio=book, kind="buy", trade_date=today, instrument=never_priced, quantity="2", price="12.5"
    )
    assert stored_holdings_on(portfolio=book, on=today, last_trade=today) is None  # at its trade price: the ledger's
    dash = selectors.portfolio_dashboard(portfolio=book, today=today)
    assert dash.loaded is not None
    held = {h.instrument_id: h for h in dash.snapshot.holdings}
    assert held[never_priced.pk].price == Decimal("12.5")
    # a day before the last ledger row: the derived tables (the whole ledger) cannot answer
    assert stored_holdings_on(portfolio=book, on=today - timedelta(days=1), last_trade=today) is None


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ("1899-12-31,buy,{sym},1,100", "trade_date", "must be on or after 1900-01-01"),  # before inception
        ("{future},buy,{sym},1,100", "trade_date", "is in the future"),
        ("{day},buy,NOPE,1,100", "symbol", "Unknown instrument"),
    ],
)
def test_bad_ledger_rows_are_refused_before_anything_is_written_or_revalued(
    book, aapl, line, field, message, django_capture_on_commit_callbacks
):
    """Issue 19's bad input, for transactions: the import (all or nothing) and a single entry."""
    from codex import imports as engine
    from portfolios.imports import TransactionImport
    from tests.portfolios.test_imports import upload

    today = timezone.localdate()
    good = f"{today - timedelta(days=5)},buy,{aapl.symbol},1,100"
    bad = line.format(sym=aapl.symbol, future=today + timedelta(days=1), day=today - timedelta(days=4))
    text = f"date,kind,symbol,quantity,price\n{good}\n{bad}\n"
    ledger_before = list(Transaction.objects.filter(portfolio=book).values_list("pk", flat=True))
    rows_before = list(Valuation.objects.filter(portfolio=book).values_list("pk", "value"))
    state_before = ValuationState.objects.filter(portfolio=book).values_list("ledger_version", "valued_version").get()
    job = TransactionImport.from_upload(portfolio=book, upload=upload(text))
    preview = job.preview()
    assert not preview.ok and [(e.row, e.field) for e in preview.errors] == [(3, field)], preview.errors
    assert message in preview.errors[0].message
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(engine.ImportRejected):
        job.commit()
    assert callbacks == []  # nothing queued: no revaluation
    if field == "trade_date":  # the same row entered by hand: a field error, nothing written
        with pytest.raises(ValidationError) as exc:
            services.transaction_record(
                portfolio=book,
                kind="buy",
                trade_date=date.fromisoformat(bad.split(",")[0]),
                instrument=aapl,
                quantity="1",
                price="100",
            )
        assert message in " ".join(exc.value.message_dict["trade_date"])
    assert list(Transaction.objects.filter(portfolio=book).values_list("pk", flat=True)) == ledger_before
    assert list(Valuation.objects.filter(portfolio=book).values_list("pk", "value")) == rows_before
    assert (
        ValuationState.objects.filter(portfolio=book).values_list("ledger_version", "valued_version").get()
        == state_before
    )
    assert not valuations.valuation_status(portfolio=book).updating


def test_a_ledger_row_imported_twice_is_reported_and_written_once(book, aapl, django_capture_on_commit_callbacks):
    from codex import imports as engine
    from portfolios.imports import TransactionImport
    from tests.portfolios.test_imports import upload

    first = Transaction.objects.filter(portfolio=book, kind="buy", instrument=aapl).get()
    already = f"{first.trade_date},buy,{aapl.symbol},{first.quantity},{first.price},{first.fees}"
    new = f"{timezone.localdate() - timedelta(days=3)},buy,{aapl.symbol},2,101,0"
    text = f"date,kind,symbol,quantity,price,fees\n{already}\n{new}\n{new}\n"
    count = Transaction.objects.filter(portfolio=book).count()
    rows_before = list(Valuation.objects.filter(portfolio=book).values_list("pk", "value"))
    job = TransactionImport.from_upload(portfolio=book, upload=upload(text))
    preview = job.preview()
    assert [(r.row, r.action) for r in preview.rows] == [(2, "skip"), (3, "create"), (4, "error")]
    assert [(e.row, e.message) for e in preview.errors] == [(4, "Duplicate of row 3 in this file.")]
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(engine.ImportRejected):
        job.commit()  # a row twice in one file: refused whole
    assert callbacks == [] and Transaction.objects.filter(portfolio=book).count() == count
    assert list(Valuation.objects.filter(portfolio=book).values_list("pk", "value")) == rows_before
    # the row already in the ledger is skipped (said in the report), the new one written once
    text = f"date,kind,symbol,quantity,price,fees\n{already}\n{new}\n"
    with django_capture_on_commit_callbacks(execute=True):
        report = TransactionImport.from_upload(portfolio=book, upload=upload(text)).commit()
    assert (report.created, report.skipped) == (1, 1)
    assert Transaction.objects.filter(portfolio=book).count() == count + 1
    assert valuation_services.valuations_verify(portfolio=book) == []
