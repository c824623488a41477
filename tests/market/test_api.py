"""Read API for instruments, prices and FX rates: filters, ordering, ranges, auth, query counts."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from .factories import FxRateFactory, InstrumentFactory, PriceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(firm):
    apple = InstrumentFactory(symbol="AAPL", exchange="XNAS", name="Apple Inc.", currency="USD")
    sap = InstrumentFactory(symbol="SAP", exchange="XETR", name="SAP SE", currency="EUR", country="DE")
    agg = InstrumentFactory(symbol="AGG", exchange="ARCX", name="US Aggregate Bond", asset_class="bond")
    for offset in range(5):
        PriceFactory(instrument=apple, date=date(2026, 1, 5) + timedelta(days=offset), close=Decimal(100 + offset))
    PriceFactory(instrument=sap, date=date(2026, 1, 5), close=Decimal("231.1"))
    return {"apple": apple, "sap": sap, "agg": agg}


def test_owner_lists_instruments_with_latest_close(owner_client, book):
    body = owner_client.get("/api/v1/instruments/").json()
    assert body["count"] == 3
    rows = {r["symbol"]: r for r in body["results"]}
    assert [r["symbol"] for r in body["results"]] == ["AAPL", "AGG", "SAP"]
    assert rows["AAPL"]["last_close"] == "104.000000" and rows["AAPL"]["last_date"] == "2026-01-09"
    assert rows["AGG"]["last_close"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("asset_class=bond", ["AGG"]),
        ("currency=eur", ["SAP"]),
        ("search=apple", ["AAPL"]),
        ("search=sap", ["SAP"]),
        ("ordering=-symbol", ["SAP", "AGG", "AAPL"]),
        ("ordering=name", ["AAPL", "SAP", "AGG"]),
    ],
)
def test_instrument_filters_search_and_ordering(viewer_client, book, query, expected):
    body = viewer_client.get(f"/api/v1/instruments/?{query}").json()
    assert [r["symbol"] for r in body["results"]] == expected


def test_bad_filter_value_is_a_400_naming_the_field(owner_client, book):
    response = owner_client.get("/api/v1/instruments/?asset_class=stocks")
    assert response.status_code == 400
    assert "asset_class" in response.json()["error"]["details"]


def test_instrument_detail_and_prices_in_a_range(advisor_client, book):
    apple = book["apple"]
    detail = advisor_client.get(f"/api/v1/instruments/{apple.pk}/").json()
    assert detail["name"] == "Apple Inc." and detail["currency"] == "USD"
    body = advisor_client.get(f"/api/v1/instruments/{apple.pk}/prices/?start=2026-01-06&end=2026-01-08").json()
    assert [(p["date"], p["close"]) for p in body["results"]] == [
        ("2026-01-06", "101.000000"),
        ("2026-01-07", "102.000000"),
        ("2026-01-08", "103.000000"),
    ]
    assert advisor_client.get(f"/api/v1/instruments/{apple.pk}/prices/").json()["count"] == 5
    bad = advisor_client.get(f"/api/v1/instruments/{apple.pk}/prices/?start=yesterday")
    assert bad.status_code == 400 and "start" in bad.json()["error"]["details"]
    assert advisor_client.get("/api/v1/instruments/999999/prices/").status_code == 404


def test_fx_rates_filtered_by_pair_and_range(owner_client, firm):
    for offset in range(3):
        FxRateFactory(date=date(2026, 1, 5) + timedelta(days=offset), rate=Decimal("1.1") + offset)
    FxRateFactory(base="GBP", quote="USD", date=date(2026, 1, 5), rate=Decimal("1.27"))
    body = owner_client.get("/api/v1/fx-rates/?base=EUR&quote=USD&start=2026-01-06").json()
    assert [(r["date"], r["rate"]) for r in body["results"]] == [
        ("2026-01-07", "3.1000000000"),
        ("2026-01-06", "2.1000000000"),
    ]


def test_read_key_reads_and_nobody_writes(firm, api_key_for, anon_client, owner_client, book):
    key = api_key_for(firm, "read")
    assert anon_client.get("/api/v1/instruments/").status_code == 401
    assert anon_client.get("/api/v1/instruments/", HTTP_X_API_KEY=key).json()["count"] == 3
    # a read key writes nothing; a write key may add a firm instrument (tests/market/test_firm_instruments.py)
    response = anon_client.post(
        "/api/v1/instruments/", {"symbol": "X"}, content_type="application/json", HTTP_X_API_KEY=key
    )
    assert response.status_code == 403
    write = api_key_for(firm, "write")
    response = anon_client.post(
        "/api/v1/instruments/",
        {"symbol": "X", "name": "Own", "asset_class": "fund", "currency": "USD"},
        content_type="application/json",
        HTTP_X_API_KEY=write,
    )
    assert response.status_code == 201 and response.json()["firm_instrument"] is True


def test_other_firm_reads_the_same_shared_instruments(outsider_client, owner_client, book):
    # Market data is shared by design (public schema): both firms see it.
    assert outsider_client.get("/api/v1/instruments/").json()["count"] == 3
    assert owner_client.get("/api/v1/instruments/").json()["count"] == 3


def _queries(client, url, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_list_query_counts_do_not_grow_with_rows(owner_client, firm, django_assert_max_num_queries):
    InstrumentFactory.create_batch(2)
    owner_client.get("/api/v1/instruments/")  # warm up: the first request also creates the session
    few = _queries(owner_client, "/api/v1/instruments/", django_assert_max_num_queries)
    instruments = InstrumentFactory.create_batch(20)
    for i in instruments:
        PriceFactory(instrument=i, date=date(2026, 1, 5))
    many = _queries(owner_client, "/api/v1/instruments/", django_assert_max_num_queries)
    assert few == many
    assert many <= 11  # session, user, API-usage metering and throttle (cache), count, page
    prices_few = _queries(owner_client, f"/api/v1/instruments/{instruments[0].pk}/prices/", None)
    for offset in range(1, 30):
        PriceFactory(instrument=instruments[0], date=date(2026, 1, 5) + timedelta(days=offset))
    assert _queries(owner_client, f"/api/v1/instruments/{instruments[0].pk}/prices/", None) == prices_few


def test_openapi_schema_documents_market_and_alert_endpoints(owner_client):
    schema = owner_client.get("/api/v1/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in (
        "/api/v1/instruments/",
        "/api/v1/instruments/{id}/",
        "/api/v1/instruments/{id}/prices/",
        "/api/v1/fx-rates/",
        "/api/v1/alerts/rules/",
        "/api/v1/alerts/events/unread-count/",
    ):
        assert path in text, path
