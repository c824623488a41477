"""Every provider call audited (who, what, when, status, latency, rows; the key masked), and the
feeds' health: on the operators' platform status page and on the firm's own page (decision 1030)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from codex.status import checks
from portfolios.market.feeds import ecb, runs
from portfolios.market.feeds.http import FeedError, HttpClient, redacted_url
from portfolios.market.models import FeedRun, ProviderCall
from portfolios.market.selectors import feed_health
from tenants.models import AuditEvent

from .factories import InstrumentFactory, PriceFactory
from .test_feeds import END, RecordedClient, _Handler, av_with, local_server, stooq_with, text  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def aapl(db):
    return InstrumentFactory(symbol="AAPL", exchange="XNAS", currency="USD")


def test_every_provider_call_is_stored_with_who_what_when_status_latency_and_rows(aapl):
    provider, _client = stooq_with("stooq-aapl.csv")
    run = runs.prices_fetch(providers=[provider], instruments=[aapl], end=END, since=date(2026, 12, 1), actor="beat")
    [call] = ProviderCall.objects.all()
    assert call.run_id == run.pk
    assert (call.provider, call.actor, call.subject, call.status, call.error) == ("stooq", "beat", "AAPL.XNAS", 200, "")
    assert call.rows == 4  # the four days the answer held
    assert "s=aapl.us" in call.url and "d1=20261201" in call.url
    assert call.latency_ms >= 0 and call.started_at <= timezone.now()
    event = AuditEvent.objects.get(action="market.feed_prices", details__run=run.pk)
    assert event.details["calls"] == 1 and event.actor == "beat"


def test_the_api_key_never_reaches_the_stored_call(db):
    ibm = InstrumentFactory(symbol="IBM", exchange="XNYS", currency="USD")
    provider, _client = av_with("alphavantage-ibm.json")
    runs.prices_fetch(providers=[provider], instruments=[ibm], end=END, since=date(2026, 12, 1), actor="manage.py")
    call = ProviderCall.objects.get()
    assert "apikey=***" in call.url and "demo-key" not in call.url
    assert call.provider == "alphavantage" and call.actor == "manage.py" and call.rows > 0

    def unreachable(url, params):
        return FeedError(f"alphavantage: unreachable after retries (GET {url}?apikey={params['apikey']})")

    failing = av_with("alphavantage-ibm.json")[0]
    failing.client = RecordedClient(unreachable)
    ProviderCall.objects.all().delete()
    runs.prices_fetch(providers=[failing], instruments=[ibm], end=END, since=date(2026, 12, 1))
    call = ProviderCall.objects.get()
    assert call.status == 0 and "unreachable" in call.error
    assert "demo-key" not in call.error and "demo-key" not in call.url


def test_a_failed_call_and_the_fallback_are_both_recorded(db):
    ibm = InstrumentFactory(symbol="IBM", exchange="XNYS", currency="USD")
    first, _ = stooq_with("stooq-limit.txt")
    second, _ = av_with("alphavantage-ibm.json")
    runs.prices_fetch(providers=[first, second], instruments=[ibm], end=END, since=date(2026, 12, 1))
    calls = list(ProviderCall.objects.order_by("id").values_list("provider", "status", "rows", "error"))
    assert [c[0] for c in calls] == ["stooq", "alphavantage"]
    assert calls[0][1] == 200 and calls[0][2] == 0 and "daily request limit" in calls[0][3]
    assert calls[1][2] > 0 and calls[1][3] == ""


def test_an_fx_call_without_an_answer_is_recorded_with_status_zero(db):
    provider = ecb.EcbProvider(client=RecordedClient(lambda u, p: FeedError("ecb: no answer within 20.0 s")))
    run = runs.fx_fetch(provider=provider, end=END, since=END, actor="beat")
    call = ProviderCall.objects.get(run=run)
    assert (call.provider, call.status, call.rows) == ("ecb", 0, 0)
    assert "no answer within" in call.error and call.url.endswith("eurofxref-daily.xml")
    good = ecb.EcbProvider(client=RecordedClient(lambda u, p: text("ecb-hist-90d.xml", "text/xml")))
    ok_run = runs.fx_fetch(provider=good, end=END, since=date(2026, 11, 1))
    ok_call = ProviderCall.objects.get(run=ok_run)
    assert ok_call.status == 200 and ok_call.rows > 0 and ok_call.subject == "EUR/*"


def test_the_http_door_records_the_status_of_a_refusal(local_server):  # noqa: F811
    client = HttpClient(name="t", timeout=2, retries=0, min_interval=0, backoff=0)
    with pytest.raises(FeedError):
        client.get(f"{local_server}/down", {"token": "s3cret", "q": "x"})
    client.get(f"{local_server}/fine")
    refused, fine = client.drain()
    assert refused.status == 503 and "HTTP 503" in refused.error
    assert "token=***" in refused.url and "s3cret" not in refused.url and "q=x" in refused.url
    assert fine.status == 200 and fine.error == ""
    assert client.drain() == []


def test_redacted_url_masks_every_credential_parameter():
    url = redacted_url("https://x.test/q", {"apikey": "a", "API_KEY": "b", "symbol": "IBM"})
    assert url == "https://x.test/q?apikey=***&API_KEY=***&symbol=IBM"
    assert redacted_url("https://x.test/file.xml") == "https://x.test/file.xml"


# --- health ------------------------------------------------------------------------------------------------
def _run(provider="stooq", kind="prices", status="ok", age_hours=1, **extra):
    run = FeedRun.objects.create(provider=provider, kind=kind, status=status, **extra)
    FeedRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(hours=age_hours))
    return run


def test_feed_health_is_ok_before_any_feed_ran(db):
    health = feed_health()
    assert (health.state, health.detail) == ("ok", "no feed has run yet")


def test_feed_health_is_down_after_a_failed_run_and_degraded_when_partial_overdue_or_stale(db, settings):
    aapl = InstrumentFactory(symbol="AAPL", exchange="XNAS", currency="USD")
    PriceFactory(instrument=aapl, date=timezone.localdate(), close=Decimal("100"))
    _run(provider="ecb", kind="fx", status="ok")
    _run(status="ok")
    assert feed_health().state == "ok"
    _run(status="failed", error="stooq: HTTP 503")
    health = feed_health()
    assert health.state == "down" and "stooq prices: last run failed (stooq: HTTP 503)" in health.detail
    _run(status="partial", failures=2)
    assert feed_health().state == "degraded" and "partly failed (2 with problems)" in feed_health().detail
    FeedRun.objects.filter(provider="stooq").delete()  # its only run is now an old one
    _run(status="ok", age_hours=settings.MARKET_FEEDS_OVERDUE_HOURS + 1)
    assert feed_health().state == "degraded" and "stooq prices: no run since" in feed_health().detail
    _run(status="ok")
    stale = InstrumentFactory(symbol="OLD", exchange="XNAS", currency="USD")
    PriceFactory(instrument=stale, date=timezone.localdate() - timedelta(days=30), close=Decimal("5"))
    health = feed_health()
    assert health.state == "degraded" and health.stale_instruments == 1
    assert "1 shared instrument(s) without a close since" in health.detail


def test_feed_health_is_a_platform_status_check(db):
    _run(status="failed", error="stooq: HTTP 503")
    assert "market_feeds" in checks.LABELS
    by_service = {r.service: r for r in checks.run_all()}
    assert by_service["market_feeds"].state == "down"
    assert "last run failed" in by_service["market_feeds"].detail


def test_operators_see_feed_health_on_the_platform_status_page_and_each_call(db, monkeypatch, aapl):
    from django.conf import settings
    from django.test import Client
    from django_tenants.utils import schema_context

    from tenants.accounts.models import User

    provider, _client = stooq_with("stooq-nodata.txt")
    runs.prices_fetch(providers=[provider], instruments=[aapl], end=END, actor="beat")
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        operator = User.objects.create_superuser("ops@codex.test", "pw-ops-123456789")
    monkeypatch.setattr(settings, "CODEX_OPERATOR_REQUIRE_2FA", False)
    client = Client(HTTP_HOST=settings.CODEX_BASE_DOMAIN)
    client.force_login(operator)
    html = client.get("/admin/platform_status/servicecheck/").content.decode()
    assert "Market-data feeds" in html and "stooq prices: last run failed" in html
    calls = client.get("/admin/market/providercall/").content.decode()
    assert "AAPL.XNAS" in calls and "no data for this symbol" in calls


def test_firm_sees_its_feed_health_page_without_another_firms_instruments(
    owner_client, outsider_client, aapl, other_firm
):
    from django_tenants.utils import schema_context

    _run(status="partial", failures=1)
    PriceFactory(instrument=aapl, date=timezone.localdate() - timedelta(days=20), close=Decimal("100"))
    with schema_context(other_firm.schema_name):
        InstrumentFactory(symbol="GLOBEXFUND", exchange="", currency="EUR", owner=other_firm.schema_name)
    response = owner_client.get("/portfolios/feeds/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Partly failed" in html and "stooq" in html
    assert "AAPL.XNAS" in html and "price stale since" in html
    assert "GLOBEXFUND" not in html
    assert "GLOBEXFUND" in outsider_client.get("/portfolios/feeds/").content.decode()
