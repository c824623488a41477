"""seed_market, the provider interface and the operator upload page."""

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from portfolios.market import seed
from portfolios.market.models import FxRate, Instrument, Price
from portfolios.market.providers import FileProvider, PriceProvider, ProviderError, prices_refresh, provider_default
from portfolios.market.services import prices_import
from tenants.accounts.models import User
from tenants.models import AuditEvent

from .factories import InstrumentFactory

pytestmark = pytest.mark.django_db
SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"


# --- seed -------------------------------------------------------------------------------------------
def test_seed_generation_is_deterministic_and_appending_days_keeps_history():
    short = seed.price_rows(date(2025, 6, 30))
    assert short == seed.price_rows(date(2025, 6, 30))
    longer = seed.price_rows(date(2025, 7, 31))
    closes = {(r["symbol"], r["date"]): r["close"] for _, r in longer}
    assert all(closes[(r["symbol"], r["date"])] == r["close"] for _, r in short)
    assert seed.price_rows(date(2025, 6, 30), seed=1) != short
    assert seed.fx_rows(date(2025, 6, 30)) == seed.fx_rows(date(2025, 6, 30))


def test_seed_values_are_pinned():
    # Changing the generator would make re-seeding an existing database report conflicts:
    # these figures must only change together with a migration plan for seeded databases.
    closes = {(r["symbol"], r["date"]): r["close"] for _, r in seed.price_rows(date(2026, 11, 20))}
    assert closes[("AAPL", "2023-01-02")] == "123.8146"
    assert closes[("SAP", "2025-06-02")] == "76.4644"
    assert closes[("XEON", "2026-11-20")] == "153.0910"
    rates = {r["date"]: r["rate"] for _, r in seed.fx_rows(date(2026, 11, 20))}
    assert rates["2024-02-29"] == "1.015225"


def test_seed_covers_asset_classes_currencies_and_business_days_only():
    classes = {i.asset_class for i in seed.INSTRUMENTS}
    assert {"equity", "bond", "fund", "commodity", "real_estate", "cash"} <= classes
    assert {i.currency for i in seed.INSTRUMENTS} == {"USD", "EUR"}
    assert 18 <= len(seed.INSTRUMENTS) <= 25
    days = {date.fromisoformat(r["date"]) for _, r in seed.price_rows(date(2024, 3, 31))}
    assert all(d.weekday() < 5 for d in days)
    assert all(Decimal(r["close"]) > 0 for _, r in seed.price_rows(date(2026, 11, 20)))


def test_seed_market_command_loads_then_is_idempotent(capsys):
    call_command("seed_market", "--end", "2026-03-31")
    out = capsys.readouterr().out
    instruments = Instrument.objects.count()
    prices = Price.objects.count()
    assert instruments == len(seed.INSTRUMENTS)
    # 2023-01-02 .. 2026-03-31: 847 business days per instrument
    assert prices == 847 * instruments
    assert FxRate.objects.filter(base="EUR", quote="USD").count() == 847
    assert f"prices: {prices} new, 0 unchanged" in out

    call_command("seed_market", "--end", "2026-03-31")
    out = capsys.readouterr().out
    assert f"prices: 0 new, {prices} unchanged" in out
    assert "instruments: 0 new" in out and "fx: 0 new, 847 unchanged" in out
    assert Price.objects.count() == prices

    call_command("seed_market", "--end", "2026-04-01")
    assert f"prices: {instruments} new, {prices} unchanged" in capsys.readouterr().out


# --- provider ---------------------------------------------------------------------------------------
def test_provider_interface_is_abstract():
    with pytest.raises(TypeError):
        PriceProvider()


def test_file_provider_fetches_only_wanted_instruments_and_dates():
    prices_import(file=str(SAMPLES / "instruments.csv"), kind="instruments")
    aapl = Instrument.objects.get(symbol="AAPL")
    quotes = list(FileProvider(SAMPLES / "prices.csv").fetch([aapl], date(2026, 11, 17), date(2026, 11, 30)))
    assert [(q.symbol, q.date, q.close) for q in quotes] == [
        ("AAPL", date(2026, 11, 17), Decimal("230.02")),
        ("AAPL", date(2026, 11, 18), Decimal("226.75")),
    ]


def test_prices_refresh_stores_through_the_importer_idempotently():
    prices_import(file=str(SAMPLES / "instruments.csv"), kind="instruments")
    file_provider = FileProvider(SAMPLES / "prices.csv")
    instruments = list(Instrument.objects.all())
    result = prices_refresh(
        provider=file_provider, instruments=instruments, start=date(2026, 1, 1), end=date(2026, 12, 31)
    )
    assert result.created == 12
    assert Price.objects.filter(source="file").count() == 12
    again = prices_refresh(
        provider=file_provider, instruments=instruments, start=date(2026, 1, 1), end=date(2026, 12, 31)
    )
    assert again.summary() == "0 new, 12 unchanged"


def test_file_provider_reports_unreadable_rows(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("symbol,exchange,date,close\nAAPL,XNAS,yesterday,1\n")
    aapl = InstrumentFactory(symbol="AAPL", exchange="XNAS")
    with pytest.raises(ProviderError, match="row 2"):
        list(FileProvider(path).fetch([aapl], date(2026, 1, 1), date(2026, 12, 31)))


# --- admin upload -----------------------------------------------------------------------------------
@pytest.fixture
def operator_client(public_client, settings):
    settings.CODEX_OPERATOR_REQUIRE_2FA = False  # the second factor is tested by the platform's tests
    operator = User.objects.create_superuser("ops-market@codex.test", "Sturdy-pass-123")
    public_client.force_login(operator)
    return public_client


def upload(client, name: str, content: bytes, kind: str = "prices", overwrite: bool = False):
    data = {"kind": kind, "file": SimpleUploadedFile(name, content, content_type="text/csv")}
    if overwrite:
        data["overwrite"] = "on"
    return client.post("/admin/market/instrument/upload/", data, follow=True)


def test_operator_uploads_instruments_then_prices_and_reupload_is_a_no_op(operator_client):
    assert operator_client.get("/admin/market/instrument/").content.decode().count("/admin/market/instrument/upload/")
    page = operator_client.get("/admin/market/instrument/upload/")
    assert page.status_code == 200 and b'enctype="multipart/form-data"' in page.content

    response = upload(operator_client, "instruments.csv", (SAMPLES / "instruments.csv").read_bytes(), "instruments")
    assert "instruments.csv: 4 new, 0 unchanged." in response.content.decode().lower()
    response = upload(operator_client, "prices.csv", (SAMPLES / "prices.csv").read_bytes())
    assert "prices.csv: 12 new, 0 unchanged." in response.content.decode().lower()
    response = upload(operator_client, "prices.csv", (SAMPLES / "prices.csv").read_bytes())
    assert "prices.csv: 0 new, 12 unchanged." in response.content.decode().lower()
    assert Price.objects.count() == 12


def test_operator_upload_shows_row_errors_and_writes_nothing(operator_client):
    InstrumentFactory(symbol="AAPL", exchange="XNAS")
    response = upload(
        operator_client, "bad.csv", b"symbol,exchange,date,close\nAAPL,XNAS,2026-01-05,1\nAAPL,XNAS,2026-13-01,2\n"
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Nothing imported: 1 row error(s)" in html
    assert "<td>3</td><td>date</td>" in html
    assert not Price.objects.exists()


def test_operator_upload_conflict_then_overwrite_is_audited(operator_client):
    aapl = InstrumentFactory(symbol="AAPL", exchange="XNAS")
    upload(operator_client, "a.csv", b"symbol,exchange,date,close\nAAPL,XNAS,2026-01-05,1\n")
    html = upload(operator_client, "b.csv", b"symbol,exchange,date,close\nAAPL,XNAS,2026-01-05,2\n").content.decode()
    assert "stored close is 1, the file says 2" in html
    assert Price.objects.get(instrument=aapl).close == 1
    html = upload(operator_client, "b.csv", b"symbol,exchange,date,close\nAAPL,XNAS,2026-01-05,2\n", overwrite=True)
    assert "b.csv: 0 new, 0 unchanged, 1 overwritten." in html.content.decode().lower()
    assert Price.objects.get(instrument=aapl).close == 2
    assert AuditEvent.objects.filter(action="market.prices_overwritten", actor="ops-market@codex.test").exists()


def test_upload_page_is_for_operators_only(public_client, firm):
    response = public_client.get("/admin/market/instrument/upload/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_default_provider_is_the_file_provider(settings, tmp_path):
    settings.CODEX_PRICE_PROVIDER_OPTIONS = {"path": str(tmp_path / "feed.csv")}
    provider = provider_default()
    assert isinstance(provider, FileProvider) and provider.path == tmp_path / "feed.csv"


def test_misconfigured_provider_is_a_clear_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.CODEX_PRICE_PROVIDER_OPTIONS = {}
    with pytest.raises(ImproperlyConfigured, match="path"):
        provider_default()


@pytest.mark.parametrize(
    ("name", "content", "content_type", "message"),
    [
        ("prices.xlsx", b"PK\x03\x04 a spreadsheet", "application/vnd.ms-excel", "Upload a .csv or .txt file."),
        ("prices.csv", b"PK\x03\x04\x00\x00 binary", "text/csv", "This is a binary file, not text."),
        ("prices.csv", b"symbol,exchange,date,close\n", "image/png", "A CSV file was expected, not image/png."),
    ],
)
def test_operator_upload_refuses_a_file_of_the_wrong_type(operator_client, name, content, content_type, message):
    InstrumentFactory(symbol="AAPL", exchange="XNAS")
    data = {"kind": "prices", "file": SimpleUploadedFile(name, content, content_type=content_type)}
    html = operator_client.post("/admin/market/instrument/upload/", data, follow=True).content.decode()
    assert message in html
    assert not Price.objects.exists()


def test_operator_upload_refuses_a_file_over_the_size_limit(operator_client, monkeypatch):
    from portfolios.market import admin as market_admin

    InstrumentFactory(symbol="AAPL", exchange="XNAS")
    content = b"symbol,exchange,date,close\nAAPL,XNAS,2026-01-05,1\n"
    form = market_admin.MarketUploadForm
    validator = form.base_fields["file"].validators[0]
    monkeypatch.setattr(validator, "max_bytes", len(content) - 1)
    html = upload(operator_client, "prices.csv", content).content.decode()
    assert "The file must be at most" in html
    assert not Price.objects.exists()
    # positive control: the same file within the limit is imported
    monkeypatch.setattr(validator, "max_bytes", len(content))
    assert "prices.csv: 1 new, 0 unchanged." in upload(operator_client, "prices.csv", content).content.decode().lower()
