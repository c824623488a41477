"""The market-data importer: formats, idempotency, conflicts, per-row errors, atomicity, speed."""

import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from portfolios.market.models import FxRate, Instrument, Price
from portfolios.market.services import ImportRejected, prices_import, prices_imported
from tenants.models import AuditEvent

from .factories import InstrumentFactory

pytestmark = pytest.mark.django_db
SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def aapl():
    return InstrumentFactory(symbol="AAPL", exchange="XNAS", currency="USD")


def test_documented_samples_import_in_order_then_reimport_changes_nothing():
    for kind in ("instruments", "prices", "fx"):
        result = prices_import(file=str(SAMPLES / f"{kind}.csv"), kind=kind)
        assert result.created > 0 and result.unchanged == 0
    assert Price.objects.filter(instrument__symbol="SAP").count() == 3
    assert Price.objects.get(instrument__symbol="AAPL", date=date(2026, 11, 17)).close == Decimal("230.02")
    assert FxRate.objects.get(date=date(2026, 11, 18)).rate == Decimal("1.1618")
    counts = (Instrument.objects.count(), Price.objects.count(), FxRate.objects.count())

    again = prices_import(file=str(SAMPLES / "prices.csv"))
    assert again.summary() == "0 new, 12 unchanged"
    assert prices_import(file=str(SAMPLES / "instruments.csv"), kind="instruments").summary() == "0 new, 4 unchanged"
    assert prices_import(file=str(SAMPLES / "fx.csv"), kind="fx").summary() == "0 new, 3 unchanged"
    assert (Instrument.objects.count(), Price.objects.count(), FxRate.objects.count()) == counts


def test_symbol_and_exchange_match_case_insensitively_and_trailing_zeros_are_equal(aapl):
    prices_import(file=csv_bytes("symbol,exchange,date,close", "aapl,xnas,2026-01-05,101.5"))
    result = prices_import(file=csv_bytes("Symbol,Exchange,Date,Close", "AAPL,XNAS,2026-01-05,101.500000"))
    assert result.summary() == "0 new, 1 unchanged"


def test_conflicting_close_is_reported_per_row_and_nothing_is_written(aapl):
    prices_import(file=csv_bytes("symbol,exchange,date,close", "AAPL,XNAS,2026-01-05,100", "AAPL,XNAS,2026-01-06,101"))
    with pytest.raises(ImportRejected) as caught:
        prices_import(
            file=csv_bytes(
                "symbol,exchange,date,close",
                "AAPL,XNAS,2026-01-05,100",  # unchanged
                "AAPL,XNAS,2026-01-06,111",  # conflict
                "AAPL,XNAS,2026-01-07,102",  # new, but the file is rejected
            )
        )
    result = caught.value.result
    assert [(c.row, c.field) for c in result.conflicts] == [(3, "close")]
    assert "stored close is 101" in result.conflicts[0].message and "111" in result.conflicts[0].message
    assert "overwrite" in str(caught.value)
    assert Price.objects.get(instrument=aapl, date=date(2026, 1, 6)).close == Decimal("101")
    assert not Price.objects.filter(date=date(2026, 1, 7)).exists()


def test_overwrite_replaces_conflicts_and_is_audited(aapl):
    prices_import(file=csv_bytes("symbol,exchange,date,close", "AAPL,XNAS,2026-01-06,101"))
    result = prices_import(
        file=csv_bytes("symbol,exchange,date,close", "AAPL,XNAS,2026-01-06,111", "AAPL,XNAS,2026-01-07,102"),
        overwrite=True,
        actor="ops@codex.test",
        filename="fix.csv",
    )
    assert result.summary() == "1 new, 0 unchanged, 1 overwritten"
    assert Price.objects.get(instrument=aapl, date=date(2026, 1, 6)).close == Decimal("111")
    event = AuditEvent.objects.get(action="market.prices_overwritten")
    assert event.actor == "ops@codex.test" and event.target == "fix.csv" and event.details["updated"] == 1


def test_row_errors_name_row_and_field_and_the_file_is_all_or_nothing(aapl):
    with pytest.raises(ImportRejected) as caught:
        prices_import(
            file=csv_bytes(
                "symbol,exchange,date,close,currency",
                "AAPL,XNAS,2026-01-05,100,USD",
                "AAPL,XNAS,05/01/2026,100,USD",
                "AAPL,XNAS,2026-01-07,-3,USD",
                "AAPL,XNAS,2026-01-08,abc,USD",
                "NOPE,XNAS,2026-01-09,1,USD",
                "AAPL,XNAS,2026-01-10,100,EUR",
                ",XNAS,2026-01-11,100,USD",
                "AAPL,XNAS,2026-01-12,1.1234567,USD",
                "AAPL,XNAS,2026-01-05,99,USD",
                "AAPL,XNAS,2999-01-01,99,USD",
            )
        )
    issues = [(e.row, e.field) for e in caught.value.result.errors]
    assert issues == [
        (3, "date"),
        (4, "close"),
        (5, "close"),
        (6, "symbol"),
        (7, "currency"),
        (8, "symbol"),
        (9, "close"),
        (10, "close"),
        (11, "date"),
    ]
    messages = [str(e) for e in caught.value.result.errors]
    assert "row 6, symbol: unknown instrument NOPE on XNAS; import it first" in messages
    assert "row 10, close: row 2 gives 100 for the same instrument and date" in messages
    assert "row 11, date: 2999-01-01 is in the future" in messages
    assert not Price.objects.exists()


def test_identical_duplicate_rows_are_counted_not_errors(aapl):
    result = prices_import(
        file=csv_bytes("symbol,exchange,date,close", "AAPL,XNAS,2026-01-05,100", "AAPL,XNAS,2026-01-05,100.0")
    )
    assert result.summary() == "1 new, 0 unchanged, 1 duplicate rows ignored"


def test_missing_column_rejects_the_file():
    with pytest.raises(ImportRejected, match="close"):
        prices_import(file=csv_bytes("symbol,exchange,date", "AAPL,XNAS,2026-01-05"))


def test_not_utf8_is_a_clear_error():
    import io

    with pytest.raises(ImportRejected, match="UTF-8"):
        prices_import(file=io.BytesIO("symbol,exchange,date,close\nÄ,X,2026-01-01,1\n".encode("latin-1")))


def test_instrument_conflicts_and_errors():
    prices_import(
        file=csv_bytes("symbol,exchange,name,asset_class,currency,sector,country", "ABC,XTST,Abc,equity,USD,,US"),
        kind="instruments",
    )
    with pytest.raises(ImportRejected) as caught:
        prices_import(
            file=csv_bytes(
                "symbol,exchange,name,asset_class,currency,sector,country",
                "ABC,XTST,Abc Corp,equity,USD,,US",
                "DEF,XTST,Def,stocks,USD,,US",
                "GHI,XTST,Ghi,equity,US,,US",
                "JKL,XTST,Jkl,equity,USD,,USA",
            ),
            kind="instruments",
        )
    result = caught.value.result
    assert [(e.row, e.field) for e in result.errors] == [(3, "asset_class"), (4, "currency"), (5, "country")]
    assert Instrument.objects.count() == 1

    with pytest.raises(ImportRejected) as caught:
        prices_import(
            file=csv_bytes("symbol,exchange,name,asset_class,currency", "ABC,XTST,Abc Corp,equity,USD"),
            kind="instruments",
        )
    assert [(c.row, c.field) for c in caught.value.result.conflicts] == [(2, "name")]
    result = prices_import(
        file=csv_bytes("symbol,exchange,name,asset_class,currency,country", "ABC,XTST,Abc Corp,equity,USD,US"),
        kind="instruments",
        overwrite=True,
    )
    assert result.updated == 1 and Instrument.objects.get(symbol="ABC").name == "Abc Corp"


def test_fx_conflicts_and_errors():
    prices_import(file=csv_bytes("base,quote,date,rate", "EUR,USD,2026-01-05,1.1"), kind="fx")
    with pytest.raises(ImportRejected) as caught:
        prices_import(
            file=csv_bytes(
                "base,quote,date,rate", "EUR,USD,2026-01-05,1.2", "EUR,EUR,2026-01-06,1", "GBP,USD,2026-01-06,0"
            ),
            kind="fx",
        )
    assert [(e.row, e.field) for e in caught.value.result.errors] == [(3, "quote"), (4, "rate")]
    with pytest.raises(ImportRejected) as caught:
        prices_import(file=csv_bytes("base,quote,date,rate", "EUR,USD,2026-01-05,1.2"), kind="fx")
    assert [(c.row, c.field) for c in caught.value.result.conflicts] == [(2, "rate")]


def test_import_signal_is_sent_on_commit_only_when_something_was_written(aapl, django_capture_on_commit_callbacks):
    received = []

    def listener(sender, kind, result, **kwargs):
        received.append((kind, result.created))

    prices_imported.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            prices_import(file=csv_bytes("symbol,exchange,date,close", "AAPL,XNAS,2026-01-05,100"))
        assert received == [("prices", 1)]
        with django_capture_on_commit_callbacks(execute=True):
            prices_import(file=csv_bytes("symbol,exchange,date,close", "AAPL,XNAS,2026-01-05,100"))
        assert received == [("prices", 1)]
    finally:
        prices_imported.disconnect(listener)


def test_100k_rows_import_in_a_few_seconds(tmp_path, django_assert_max_num_queries):
    instruments = [InstrumentFactory() for _ in range(40)]
    start = date(2016, 1, 1)
    lines = ["symbol,exchange,date,close"]
    for i in instruments:
        for d in range(2500):
            lines.append(f"{i.symbol},{i.exchange},{start + timedelta(days=d)},{100 + d % 50}.25")
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n")
    began = time.perf_counter()
    with django_assert_max_num_queries(40):
        result = prices_import(file=str(path))
    elapsed = time.perf_counter() - began
    assert result.created == 100_000
    assert elapsed < 15, elapsed  # about 3 s here; generous for a loaded CI machine
    began = time.perf_counter()
    assert prices_import(file=str(path)).summary() == "0 new, 100000 unchanged"
    print(f"100k rows: first import {elapsed:.2f}s, re-import {time.perf_counter() - began:.2f}s")


# --- the command ------------------------------------------------------------------------------------
def test_import_prices_command(tmp_path, aapl, capsys):
    path = tmp_path / "p.csv"
    path.write_text("symbol,exchange,date,close\nAAPL,XNAS,2026-01-05,100\n")
    call_command("import_prices", str(path))
    assert "p.csv (prices): 1 new, 0 unchanged" in capsys.readouterr().out
    call_command("import_prices", str(path), "--kind", "prices")
    assert "0 new, 1 unchanged" in capsys.readouterr().out

    path.write_text("symbol,exchange,date,close\nAAPL,XNAS,2026-01-05,120\n")
    with pytest.raises(CommandError, match="conflict"):
        call_command("import_prices", str(path))
    assert "row 2, close: stored close is 100" in capsys.readouterr().err
    call_command("import_prices", str(path), "--overwrite")
    assert Price.objects.get(instrument=aapl).close == Decimal("120")


def test_import_prices_command_missing_file():
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_prices", "/nonexistent.csv")
