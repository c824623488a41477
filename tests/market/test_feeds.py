"""Market-data providers against recorded answers (tests/market/recorded/, written by hand in the
vendors' documented formats): no network. The HTTP door itself is tested on a local socket."""

from __future__ import annotations

import http.server
import threading
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from portfolios.market.feeds import alphavantage, ecb, runs, stooq
from portfolios.market.feeds.http import FeedError, HttpClient, Response
from portfolios.market.models import CorporateAction, FeedRun, FxRate, Price
from tenants.models import AuditEvent

from .factories import FxRateFactory, InstrumentFactory, PriceFactory

pytestmark = pytest.mark.django_db
RECORDED = Path(__file__).parent / "recorded"
END = date(2026, 12, 4)


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


class RecordedClient(HttpClient):
    """``HttpClient`` with its network part answered from a recorded file (or raising), logging the
    calls; ``get`` (the call records of the audit) is the real one."""

    def __init__(self, answers):
        super().__init__(name="recorded", timeout=1, retries=0, min_interval=0)
        self.answers = answers  # callable(url, params) -> Response | Exception
        self.calls: list[tuple[str, dict | None]] = []

    def request(self, url, params=None):
        self.calls.append((url, params))
        answer = self.answers(url, params)
        if isinstance(answer, Exception):
            raise answer
        return answer


def text(name: str, content_type: str = "text/plain") -> Response:
    return Response(200, content_type, recorded(name))


@pytest.fixture
def aapl(db):
    return InstrumentFactory(symbol="AAPL", exchange="XNAS", currency="USD")


def stooq_with(name, content_type="text/csv"):
    client = RecordedClient(lambda url, params: text(name, content_type))
    return stooq.StooqProvider(client=client), client


# --- ECB FX -----------------------------------------------------------------------------------------
def test_ecb_rates_are_stored_then_a_second_run_writes_nothing(settings):
    settings.MARKET_FEEDS_ALERT_EMAILS = ["ops@example.com"]
    client = RecordedClient(lambda url, params: text("ecb-hist-90d.xml", "text/xml"))
    provider = ecb.EcbProvider(client=client)
    run = runs.fx_fetch(provider=provider, end=END, since=date(2026, 12, 2))
    assert run.status == "ok", run.report
    assert run.written == 12
    assert FxRate.objects.get(base="EUR", quote="USD", date=END).rate == Decimal("1.0921")
    assert FxRate.objects.get(base="EUR", quote="JPY", date=date(2026, 12, 2)).rate == Decimal("160.12")
    assert FxRate.objects.filter(source="ecb").count() == 12
    again = runs.fx_fetch(provider=provider, end=END)
    assert (again.written, again.status) == (0, "ok")
    assert len(client.calls) == 1  # nothing missing: no second call
    assert AuditEvent.objects.filter(action="market.feed_fx", target="ecb").count() == 2
    assert mail.outbox == []


def test_ecb_bad_values_are_refused_per_currency_and_reported(settings, django_capture_on_commit_callbacks):
    settings.MARKET_FEEDS_ALERT_EMAILS = ["ops@example.com"]
    FxRateFactory(base="EUR", quote="USD", date=date(2026, 12, 3), rate=Decimal("1.09"))
    client = RecordedClient(lambda url, params: text("ecb-bad-values.xml", "text/xml"))
    with django_capture_on_commit_callbacks(execute=True):
        run = runs.fx_fetch(provider=ecb.EcbProvider(client=client), end=END, since=date(2026, 12, 4))
    report = {entry["key"]: entry for entry in run.report}
    assert run.status == "partial"
    assert "jumps more than" in report["USD"]["rejected"][0]["reason"]  # 109.21 after 1.09: a 100x jump
    assert "unknown currency" in report["XYZ"]["error"]
    assert "not positive" in report["CHF"]["rejected"][0]["reason"]
    assert "not a number" in report["GBP"]["rejected"][0]["reason"]
    assert report["JPY"]["written"] == 1
    stored = set(FxRate.objects.filter(date=END).values_list("quote", flat=True))
    assert stored == {"JPY"}  # nothing written for the refused currencies and day
    assert len(mail.outbox) == 1
    assert "USD" in mail.outbox[0].body and "XYZ" in mail.outbox[0].body


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda u, p: text("maintenance.html", "text/html"), "HTML"),
        (lambda u, p: Response(200, "text/xml", ""), "empty"),
        (lambda u, p: Response(200, "text/xml", "<<garbage"), "not the reference-rates XML"),
        (lambda u, p: FeedError("ecb: no answer within 20.0 s"), "no answer within"),
    ],
    ids=["html", "empty", "garbage", "timeout"],
)
def test_ecb_unusable_answer_fails_the_run_and_writes_nothing(
    answer, message, settings, django_capture_on_commit_callbacks
):
    settings.MARKET_FEEDS_ALERT_EMAILS = ["ops@example.com"]
    with django_capture_on_commit_callbacks(execute=True):
        run = runs.fx_fetch(provider=ecb.EcbProvider(client=RecordedClient(answer)), end=END, since=END)
    assert run.status == "failed"
    assert message in run.error
    assert not FxRate.objects.exists()
    assert len(mail.outbox) == 1 and "failed" in mail.outbox[0].subject


def test_ecb_picks_the_smallest_file_covering_the_gap():
    provider = ecb.EcbProvider(client=RecordedClient(lambda u, p: None))
    assert provider.file_for(END, END) == ecb.DAILY
    assert provider.file_for(date(2026, 10, 1), END) == ecb.HIST_90D
    assert provider.file_for(date(2025, 1, 1), END) == ecb.HIST


# --- Stooq (keyless CSV) ------------------------------------------------------------------------------
def test_stooq_closes_are_stored_and_the_gap_is_filled_from_the_last_date(aapl):
    PriceFactory(instrument=aapl, date=date(2026, 12, 1), close=Decimal("189.25"))
    provider, client = stooq_with("stooq-aapl.csv")
    run = runs.prices_fetch(providers=[provider], instruments=[aapl], end=END)
    assert run.status == "ok", run.report
    assert client.calls[0][1] == {"s": "aapl.us", "d1": "20261202", "d2": "20261204", "i": "d"}
    closes = dict(Price.objects.filter(instrument=aapl).values_list("date", "close"))
    assert closes[date(2026, 12, 4)] == Decimal("190.55")
    assert len(closes) == 4
    assert run.report[0]["written"] == 3
    assert Price.objects.get(instrument=aapl, date=END).source == "stooq"
    again = runs.prices_fetch(providers=[provider], instruments=[aapl], end=END)
    assert again.written == 0 and len(client.calls) == 1  # up to date: no call


def test_a_manually_corrected_price_is_kept_unless_overwrite(aapl):
    Price.objects.create(instrument=aapl, date=date(2026, 12, 3), close=Decimal("190.00"), source="manual")
    provider, _ = stooq_with("stooq-aapl.csv")
    run = runs.prices_fetch(providers=[provider], instruments=[aapl], end=END, since=date(2026, 12, 1))
    assert Price.objects.get(instrument=aapl, date=date(2026, 12, 3)).close == Decimal("190.00")
    assert run.report[0]["conflicts"] == [{"date": "2026-12-03", "reason": "stored 190, feed says 190.1"}]
    assert run.report[0]["written"] == 3
    forced = runs.prices_fetch(
        providers=[provider], instruments=[aapl], end=END, since=date(2026, 12, 1), overwrite=True
    )
    assert forced.report[0]["written"] == 1
    assert Price.objects.get(instrument=aapl, date=date(2026, 12, 3)).close == Decimal("190.1")
    assert AuditEvent.objects.filter(action="market.prices_overwritten").exists()


def test_stooq_bad_days_are_left_out_and_the_good_ones_stored(aapl, settings, django_capture_on_commit_callbacks):
    settings.MARKET_FEEDS_ALERT_EMAILS = ["ops@example.com"]
    provider, _ = stooq_with("stooq-aapl-bad-days.csv")
    with django_capture_on_commit_callbacks(execute=True):
        run = runs.prices_fetch(providers=[provider], instruments=[aapl], end=END, since=date(2026, 12, 1))
    reasons = {r["date"]: r["reason"] for r in run.report[0]["rejected"]}
    assert "not positive" in reasons["2026-12-02"]
    assert "jumps more than" in reasons["2026-12-03"]  # 19010 after 189.25: a 100x jump
    assert "not a number" in reasons["2026-12-04"]
    assert list(Price.objects.filter(instrument=aapl).values_list("date", flat=True)) == [date(2026, 12, 1)]
    assert run.status == "failed"  # the only instrument had failures
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    ("name", "content_type", "message"),
    [
        ("stooq-nodata.txt", "text/plain", "no data"),
        ("stooq-limit.txt", "text/plain", "daily request limit"),
        ("maintenance.html", "text/html", "HTML page"),
    ],
)
def test_stooq_failure_modes_write_nothing_and_are_reported(aapl, name, content_type, message):
    provider, _ = stooq_with(name, content_type)
    run = runs.prices_fetch(providers=[provider], instruments=[aapl], end=END)
    assert message in run.report[0]["error"]
    assert run.status == "failed"
    assert not Price.objects.filter(instrument=aapl).exists()


def test_an_unmapped_exchange_is_reported_not_guessed(db):
    odd = InstrumentFactory(symbol="ODD", exchange="XTST")
    provider, client = stooq_with("stooq-aapl.csv")
    run = runs.prices_fetch(providers=[provider], instruments=[odd], end=END)
    assert "no market mapped" in run.report[0]["error"]
    assert client.calls == []


# --- Alpha Vantage (API key, JSON) and the fallback ----------------------------------------------------
def av_with(name):
    client = RecordedClient(lambda url, params: text(name, "application/json"))
    return alphavantage.AlphaVantageProvider(client=client, api_key="demo-key"), client


def test_alphavantage_closes_and_corporate_actions(db):
    ibm = InstrumentFactory(symbol="IBM", exchange="XNYS", currency="USD")
    provider, client = av_with("alphavantage-ibm.json")
    run = runs.prices_fetch(providers=[provider], instruments=[ibm], end=END, since=date(2026, 12, 1))
    assert run.status == "ok", run.report
    assert client.calls[0][1]["symbol"] == "IBM" and client.calls[0][1]["outputsize"] == "compact"
    assert Price.objects.get(instrument=ibm, date=END).close == Decimal("226.40")  # unadjusted close
    action = CorporateAction.objects.get(instrument=ibm)
    assert (action.kind, action.date, action.value) == ("dividend", date(2026, 12, 3), Decimal("1.67"))


@pytest.mark.parametrize(
    ("name", "message"),
    [("alphavantage-note.json", "rate limit"), ("alphavantage-error.json", "Invalid API call")],
)
def test_alphavantage_errors_in_a_200_answer_are_failures(db, name, message):
    ibm = InstrumentFactory(symbol="IBM", exchange="XNYS", currency="USD")
    provider, _ = av_with(name)
    run = runs.prices_fetch(providers=[provider], instruments=[ibm], end=END)
    assert message in run.report[0]["error"]
    assert not Price.objects.filter(instrument=ibm).exists()


def test_alphavantage_without_a_key_is_not_configured(settings):
    settings.MARKET_FEEDS = {
        **settings.MARKET_FEEDS,
        "alphavantage": {**settings.MARKET_FEEDS["alphavantage"], "api_key": ""},
    }
    assert [p.name for p in runs.price_providers(["stooq", "alphavantage"])] == ["stooq"]
    with pytest.raises(ValueError, match="unknown price provider"):
        runs.price_providers(["yahoo"])


def test_the_second_provider_is_asked_when_the_first_fails(db):
    ibm = InstrumentFactory(symbol="IBM", exchange="XNYS", currency="USD")
    first, _ = stooq_with("stooq-limit.txt")
    second, _ = av_with("alphavantage-ibm.json")
    run = runs.prices_fetch(providers=[first, second], instruments=[ibm], end=END, since=date(2026, 12, 1))
    assert run.report[0]["written"] == 3 and run.report[0]["provider"] == "alphavantage"
    assert Price.objects.get(instrument=ibm, date=END).source == "alphavantage"


# --- command, stale since ------------------------------------------------------------------------------
def test_command_reports_per_instrument_and_fails_loudly(aapl, monkeypatch, capsys):
    provider, _ = stooq_with("stooq-nodata.txt")
    monkeypatch.setattr(runs, "price_providers", lambda names=None: [provider])
    with pytest.raises(CommandError, match="feed run failed"):
        call_command("fetch_market_data", "--prices")
    out = capsys.readouterr().out
    assert "AAPL.XNAS: 0 written, 0 unchanged; stooq: no data" in out
    assert FeedRun.objects.get().status == "failed"


def test_instrument_api_shows_price_stale_since(aapl, owner_client):
    PriceFactory(instrument=aapl, date=date(2025, 1, 6), close=Decimal("100"))
    body = owner_client.get(f"/api/v1/instruments/{aapl.pk}/").json()
    assert body["stale_since"] == "2025-01-06"


# --- the HTTP door: timeout and retries, on a local socket ----------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self):  # noqa: N802 (the stdlib's name)
        type(self).hits += 1
        if self.path.startswith("/slow"):
            threading.Event().wait(1.0)
        status = 503 if self.path.startswith("/down") else 200
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout case): that is what is tested

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    _Handler.hits = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_client_times_out_retries_and_reports(local_server):
    client = HttpClient(name="t", timeout=0.2, retries=0, min_interval=0, backoff=0)
    with pytest.raises(FeedError, match="no answer within|unreachable"):
        client.get(f"{local_server}/slow")
    retrying = HttpClient(name="t", timeout=2, retries=2, min_interval=0, backoff=0)
    _Handler.hits = 0
    with pytest.raises(FeedError, match="HTTP 503|unreachable"):
        retrying.get(f"{local_server}/down")
    assert _Handler.hits == 3  # the first call and two retries
    assert retrying.get(f"{local_server}/fine").text == "ok"
